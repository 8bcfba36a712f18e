"""Ingestion applies what the readers queued a batch at a time: the newest value per pair
within a second (latest wins for the cache and the bus), but the last value of every second
still reaches history (SPEC §5.2: one LTP sample per pair per second, the last one wins)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import orjson

from tests.helpers import RECEIVED
from tests.unit.services.conftest import BusRecorder
from tokenpulse.bootstrap import Container
from tokenpulse.bus.topics import LTP_TOPIC
from tokenpulse.data import kraken_pair_registry
from tokenpulse.domain.events import TickerUpdated
from tokenpulse.domain.ticker import Ticker, sample_second
from tokenpulse.services.ltp.supervisor import buffer_sink
from tokenpulse.sources._health import LatestValueBuffer
from tokenpulse.wire.ltp import LtpView

REGISTRY = kraken_pair_registry()


def tick(pair: str, last: str, seconds: float, source: str = "kraken_ws") -> Ticker:
    moment = RECEIVED + timedelta(seconds=seconds)
    return Ticker(
        pair=REGISTRY.resolve(pair), last=Decimal(last), source=source, received_at=moment
    )


def test_the_buffer_conflates_within_a_period_and_keeps_each_period_s_last_value() -> None:
    buffer: LatestValueBuffer[str, tuple[int, str]] = LatestValueBuffer(
        epoch=lambda value: value[0]
    )
    for value in [(10, "a"), (10, "b"), (11, "c"), (11, "d"), (12, "e")]:
        buffer.put("BTC/USD", value)
    buffer.put("ETH/USD", (10, "x"))

    assert len(buffer) == 4
    assert buffer.drain_nowait() == [(10, "b"), (11, "d"), (12, "e"), (10, "x")]
    assert buffer.conflated == 2
    assert len(buffer) == 0


def test_without_an_epoch_only_the_newest_value_is_kept() -> None:
    buffer: LatestValueBuffer[str, tuple[int, str]] = LatestValueBuffer()
    for value in [(10, "a"), (11, "b"), (12, "c")]:
        buffer.put("BTC/USD", value)
    assert buffer.drain_nowait() == [(12, "c")]
    assert buffer.conflated == 2


def test_earlier_periods_are_bounded_and_the_oldest_dropped_is_counted() -> None:
    dropped: list[int] = []
    buffer: LatestValueBuffer[str, int] = LatestValueBuffer(
        max_keys=2, epoch=lambda value: value, on_dropped=lambda: dropped.append(1)
    )
    for value in range(5):
        buffer.put("BTC/USD", value)
    assert buffer.drain_nowait() == [2, 3, 4]
    assert buffer.dropped == len(dropped) == 2


def test_sample_second_is_the_exchange_time_floored_else_the_receive_time() -> None:
    reading = tick("BTC/USD", "1", 0.999999)
    assert sample_second(reading) == int(RECEIVED.timestamp())
    later = Ticker(
        pair=reading.pair,
        last=reading.last,
        source=reading.source,
        received_at=RECEIVED,
        as_of=RECEIVED + timedelta(seconds=3),
    )
    assert sample_second(later) == int(RECEIVED.timestamp()) + 3


async def test_a_batch_is_published_once_and_history_gets_every_second_s_last_value(
    container: Container, bus_events: BusRecorder
) -> None:
    supervisor = container.supervisor
    assert supervisor is not None
    batches: list[list[str]] = []

    async def history(views: Sequence[LtpView]) -> None:
        batches.append(
            [f"{v.ticker.pair} {v.ticker.last} {sample_second(v.ticker)}" for v in views]
        )

    container.prices.add_publisher(history)
    sink = buffer_sink(supervisor.buffer, container.prices)
    start = int(RECEIVED.timestamp())
    stream = supervisor.streams[0].name  # a primary source: what it reads is served
    for pair, last, seconds in [
        ("BTC/USD", "100.1", 0.2),
        ("BTC/USD", "100.2", 0.7),  # the last value of its second
        ("ETH/USD", "2000.5", 0.5),
        ("BTC/USD", "100.3", 1.1),
        ("BTC/USD", "100.4", 1.4),  # the newest: served
    ]:
        sink(TickerUpdated(tick(pair, last, seconds, stream)))

    await supervisor.stop()  # applies what is queued: one batch

    assert batches == [
        [f"BTC/USD 100.2 {start}", f"BTC/USD 100.4 {start + 1}", f"ETH/USD 2000.5 {start}"]
    ]
    published = [orjson.loads(body)["amount"] for body in bus_events.on(LTP_TOPIC)]
    assert published == ["100.2", "100.4", "2000.5"]
    served = container.prices.view(REGISTRY.resolve("BTC/USD"))
    assert served is not None
    assert served.ticker.last == Decimal("100.4")
