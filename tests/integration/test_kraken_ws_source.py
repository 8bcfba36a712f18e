"""KrakenWsSource against FakeKrakenWs: a real WebSocket v2 server on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.fakes._loopback import free_port
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.helpers import wait_for
from tokenpulse.data import kraken_pair_registry
from tokenpulse.domain.events import DomainEvent, SourceHeartbeat, TickerUpdated
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._health import EventSink
from tokenpulse.sources.kraken.ws import KrakenWsSource, PairFeedState

BTC, ETH, LTC, XRP, DOGE = (Pair(b, "USD") for b in ("BTC", "ETH", "LTC", "XRP", "DOGE"))
ALL_FIVE = [BTC, ETH, LTC, XRP, DOGE]
NAME = "kraken_ws"
V1_CAPTURE = (
    Path(__file__).resolve().parent.parent
    / "fixtures/kraken/ws_v1_ticker_cryptofeed_2021-04-17.txt"
)


class Harness:
    """A source wired to a list sink and its own metrics registry."""

    def __init__(
        self, url: str, pairs: Sequence[Pair], sink: EventSink | None = None, **overrides: Any
    ) -> None:
        self.events: list[DomainEvent] = []
        self.metrics = Metrics()
        options: dict[str, Any] = {
            "idle_timeout": 2.0,
            "max_pairs_per_connection": 50,
            "subscribe_batch_size": 20,
            "backoff_initial": 0.01,
            "backoff_max": 0.05,
            **overrides,
        }
        self.source = KrakenWsSource(
            url=url,
            pairs=pairs,
            registry=kraken_pair_registry(),
            sink=sink or self.events.append,
            metrics=self.metrics,
            **options,
        )

    def tickers(self, pair: Pair | None = None) -> list[Ticker]:
        return [
            e.ticker
            for e in self.events
            if isinstance(e, TickerUpdated) and (pair is None or e.ticker.pair == pair)
        ]

    def last(self, pair: Pair) -> Decimal | None:
        found = self.tickers(pair)
        return found[-1].last if found else None

    def heartbeats(self) -> int:
        return sum(isinstance(e, SourceHeartbeat) for e in self.events)

    def subscribed(self, pairs: Sequence[Pair]) -> bool:
        return all(self.source.pair_state(p).subscribed for p in pairs)

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, {"source": NAME, **labels})
        return value or 0.0

    @asynccontextmanager
    async def running(self) -> AsyncIterator[asyncio.Task[None]]:
        task = asyncio.create_task(self.source.run())
        try:
            yield task
            assert not task.done(), "run() returned or raised on its own"
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


def symbols_requested(requests: Sequence[dict[str, Any]]) -> list[str]:
    return [symbol for request in requests for symbol in request["params"]["symbol"]]


async def test_last_value_seen_is_the_last_trade_sent() -> None:
    async with FakeKrakenWs(heartbeat_interval=0.05) as fake:
        h = Harness(fake.url, [BTC, ETH])
        async with h.running():
            await wait_for(lambda: h.last(BTC) and h.last(ETH), message="snapshots of both")
            # the snapshot carries the recorded value, digit for digit
            assert str(h.tickers(BTC)[0].last) == "69767.60000"
            assert str(h.tickers(ETH)[0].last) == "2084.53000"

            trades = ["69770.1", "69771.25", "69768.00001"]
            for price in trades:
                assert await fake.send_ticker("BTC/USD", last=price) == 1
            await wait_for(lambda: h.last(BTC) == Decimal(trades[-1]), message="last trade")

            assert [str(t.last) for t in h.tickers(BTC)] == ["69767.60000", *trades]
            latest = h.tickers(BTC)[-1]
            assert latest.source == NAME
            assert latest.received_at.utcoffset() is not None
            assert latest.as_of is not None
            assert latest.as_of.utcoffset() is not None
            assert h.source.health.connected
            assert h.source.health.detail == "1/1 connections, 2/2 pairs subscribed"
            assert h.metric("tokenpulse_source_connected") == 1.0
            assert h.metric("tokenpulse_source_messages_total", kind="ticker") >= 5
            state = h.source.pair_state(BTC)
            assert state.connected
            assert state.subscribed
            assert state.silent_for is not None
            assert state.silent_for < 1.0
            assert h.source.pair_state(LTC) == PairFeedState(False, False, None)
        assert not h.source.health.connected
        assert not h.source.pair_state(BTC).connected


async def test_subscribe_request_asks_for_trades_and_every_pair() -> None:
    async with FakeKrakenWs() as fake:
        h = Harness(fake.url, [BTC, ETH, DOGE])
        async with h.running():
            await wait_for(lambda: h.subscribed([BTC, ETH, DOGE]), message="all subscribed")

    [request] = fake.subscribe_requests
    assert request["method"] == "subscribe"
    assert isinstance(request["req_id"], int)
    assert request["params"] == {
        "channel": "ticker",
        "symbol": ["BTC/USD", "ETH/USD", "DOGE/USD"],
        "event_trigger": "trades",
        "snapshot": True,
    }


async def test_malformed_frames_are_counted_and_the_feed_goes_on() -> None:
    v1_ticker = next(line for line in V1_CAPTURE.read_text().splitlines() if ": [" in line)
    async with FakeKrakenWs(heartbeat_interval=0.05) as fake:
        h = Harness(fake.url, [BTC, ETH])
        async with h.running():
            await wait_for(lambda: h.subscribed([BTC, ETH]), message="subscribed")
            await fake.send_raw("{not json")
            await fake.send_raw(v1_ticker.partition(": ")[2])
            await fake.send_raw(
                '{"channel":"ticker","type":"update","data":['
                '{"symbol":"BTC/USD","last":"abc"},{"symbol":"ETH/USD","last":2090.57}]}'
            )
            await fake.send_ticker("BTC/USD", last="70000.1")
            await wait_for(lambda: h.last(BTC) == Decimal("70000.1"), message="trade after junk")

            errors = "tokenpulse_source_parse_errors_total"
            assert h.metric(errors, kind="invalid_json") == 1
            assert h.metric(errors, kind="v1_frame") == 1
            assert h.metric(errors, kind="bad_number") == 1
            # the good entry of the half-bad frame was kept, exactly
            assert str(h.last(ETH)) == "2090.57"
            assert fake.total_connections == 1
            assert h.source.health.errors["parse:invalid_json"] == 1


async def test_dropped_connection_reconnects_and_resubscribes_every_pair() -> None:
    pairs = [BTC, ETH, LTC]
    async with FakeKrakenWs(heartbeat_interval=0.05) as fake:
        h = Harness(fake.url, pairs)
        async with h.running():
            await wait_for(lambda: h.subscribed(pairs), message="subscribed")
            before = len(fake.subscribe_requests)

            await fake.drop_all()
            await wait_for(
                lambda: fake.total_connections == 2 and h.subscribed(pairs),
                message="reconnected and resubscribed",
            )

            assert sorted(symbols_requested(fake.subscribe_requests[before:])) == sorted(
                str(p) for p in pairs
            )
            assert h.metric("tokenpulse_source_reconnects_total") >= 1
            assert h.metric("tokenpulse_source_errors_total", kind="connection_closed") == 1
            await fake.send_ticker("LTC/USD", last="57.01")
            await wait_for(lambda: h.last(LTC) == Decimal("57.01"), message="trade after reconnect")
            assert h.source.health.connected


async def test_silent_socket_is_closed_and_reconnected_within_idle_timeout() -> None:
    idle = 0.3
    async with FakeKrakenWs(heartbeat_interval=0.05) as fake:
        h = Harness(fake.url, [BTC, ETH], idle_timeout=idle)
        async with h.running():
            await wait_for(lambda: h.subscribed([BTC, ETH]), message="subscribed")
            # heartbeats for longer than idle_timeout keep the connection
            await wait_for(lambda: h.heartbeats() >= 12, message="heartbeats")
            assert fake.total_connections == 1
            assert h.metric("tokenpulse_source_errors_total", kind="idle_timeout") == 0

            fake.silence()
            elapsed = await wait_for(
                lambda: fake.total_connections == 2, timeout=idle + 2, message="reconnect"
            )

            assert idle - 0.1 <= elapsed <= idle + 1.0
            assert h.metric("tokenpulse_source_errors_total", kind="idle_timeout") == 1
            assert h.metric("tokenpulse_source_reconnects_total") == 1
            await wait_for(lambda: h.subscribed([BTC, ETH]), message="resubscribed")
            await fake.send_ticker("ETH/USD", last="2100.01")
            await wait_for(lambda: h.last(ETH) == Decimal("2100.01"), message="trade")


@pytest.mark.parametrize(
    ("max_per_connection", "batch", "connections", "request_sizes"),
    [
        (2, 1, 3, [1, 1, 1, 1, 1]),
        (2, 2, 3, [1, 2, 2]),
        (5, 2, 1, [1, 2, 2]),
    ],
)
async def test_pairs_are_sharded_and_subscribed_in_batches(
    max_per_connection: int, batch: int, connections: int, request_sizes: list[int]
) -> None:
    async with FakeKrakenWs(heartbeat_interval=0.05) as fake:
        h = Harness(
            fake.url,
            ALL_FIVE,
            max_pairs_per_connection=max_per_connection,
            subscribe_batch_size=batch,
        )
        async with h.running():
            await wait_for(
                lambda: fake.connections == connections and h.subscribed(ALL_FIVE),
                message=f"{connections} connections, all subscribed",
            )
            assert h.source.connection_count == connections
            per_connection = fake.requested_symbols_per_connection()
            assert all(len(symbols) <= max_per_connection for symbols in per_connection)
            assert sorted(s for symbols in per_connection for s in symbols) == sorted(
                str(p) for p in ALL_FIVE
            )
            sizes = [len(r["params"]["symbol"]) for r in fake.subscribe_requests]
            assert sorted(sizes) == request_sizes
            assert len({r["req_id"] for r in fake.subscribe_requests}) == len(sizes)
            assert h.source.health.connected
            assert (
                h.source.health.detail
                == f"{connections}/{connections} connections, 5/5 pairs subscribed"
            )
            for pair in ALL_FIVE:
                await fake.send_ticker(str(pair), last="1.5")
            await wait_for(
                lambda: all(h.last(p) == Decimal("1.5") for p in ALL_FIVE), message="all shards"
            )


async def test_rejected_symbol_is_counted_and_the_other_pairs_are_served() -> None:
    ada = Pair("ADA", "USD")  # known to Kraken's pair list, absent from the fake's table
    async with FakeKrakenWs(heartbeat_interval=0.05) as fake:
        h = Harness(fake.url, [BTC, ada])
        async with h.running():
            await wait_for(
                lambda: (
                    h.metric("tokenpulse_source_errors_total", kind="subscribe_rejected") == 1
                    and h.subscribed([BTC])
                ),
                message="one rejection, BTC subscribed",
            )
            ada_state = h.source.pair_state(ada)
            assert (ada_state.connected, ada_state.subscribed) == (True, False)
            assert "Currency pair not supported ADA/USD" in (h.source.health.last_error or "")
            assert h.source.health.detail == "1/1 connections, 1/2 pairs subscribed, 1 rejected"

            for price in ("69800.5", "69801.5"):
                await fake.send_ticker("BTC/USD", last=price)
            await wait_for(lambda: h.last(BTC) == Decimal("69801.5"), message="BTC served")
            await wait_for(lambda: h.heartbeats() >= 5, message="connection lives on")
            # not retried in a loop: one request for ADA on the one connection
            assert symbols_requested(fake.subscribe_requests).count("ADA/USD") == 1
            assert fake.total_connections == 1


async def test_server_down_at_start_keeps_retrying_then_connects() -> None:
    port = free_port()
    h = Harness(f"ws://127.0.0.1:{port}/v2", [BTC, ETH])
    async with h.running():
        await wait_for(
            lambda: h.metric("tokenpulse_source_errors_total", kind="connect") >= 3,
            message="several failed connects",
        )
        assert not h.source.health.connected
        assert h.source.health.state == "reconnecting"
        assert h.source.pair_state(BTC) == PairFeedState(False, False, None)

        async with FakeKrakenWs(port=port, heartbeat_interval=0.05) as fake:
            await wait_for(lambda: h.last(BTC) and h.last(ETH), timeout=5, message="data")
            assert h.source.health.connected
            assert h.source.health.state == "connected"
            assert h.metric("tokenpulse_source_reconnects_total") >= 3
            assert fake.total_connections == 1


async def test_a_failing_sink_does_not_stop_the_feed() -> None:
    seen: list[DomainEvent] = []

    def flaky_sink(event: DomainEvent) -> None:
        if not seen:
            seen.append(event)
            raise RuntimeError("consumer bug")
        seen.append(event)

    async with FakeKrakenWs(heartbeat_interval=0.05) as fake:
        h = Harness(fake.url, [BTC], sink=flaky_sink)
        async with h.running():
            await wait_for(lambda: h.source.pair_state(BTC).subscribed, message="subscribed")
            await fake.send_ticker("BTC/USD", last="69999.9")
            await wait_for(
                lambda: any(
                    isinstance(e, TickerUpdated) and e.ticker.last == Decimal("69999.9")
                    for e in seen
                ),
                message="trade after the sink failed",
            )
            assert h.metric("tokenpulse_source_errors_total", kind="sink") == 1
            assert fake.total_connections == 1


async def test_a_slow_frame_is_not_silence() -> None:
    """The idle watchdog counts time spent waiting for a frame, not time spent on one: a
    consumer that holds the reader past ``idle_timeout`` once does not cost a reconnect."""
    slow: list[DomainEvent] = []

    def slow_sink(event: DomainEvent) -> None:
        if isinstance(event, TickerUpdated) and not slow:
            slow.append(event)
            busy_until = time.monotonic() + 0.6  # a consumer bug: 0.6 s of work on one tick
            while time.monotonic() < busy_until:
                pass

    async with FakeKrakenWs(heartbeat_interval=0.05) as fake:
        h = Harness(fake.url, [BTC], sink=slow_sink, idle_timeout=0.4)
        async with h.running():
            await wait_for(lambda: h.source.pair_state(BTC).subscribed, message="subscribed")
            await fake.send_ticker("BTC/USD", last="69999.9")
            await wait_for(lambda: bool(slow), message="the slow tick")
            heard = h.source.health.messages
            await wait_for(lambda: h.source.health.messages >= heard + 20, message="heartbeats")
            assert h.metric("tokenpulse_source_errors_total", kind="idle_timeout") == 0
            assert fake.total_connections == 1


async def test_backoff_grows_while_the_server_is_down() -> None:
    port = free_port()
    h = Harness(f"ws://127.0.0.1:{port}/v2", [BTC], backoff_initial=0.02, backoff_max=0.16)
    async with h.running():
        start = time.monotonic()
        await wait_for(
            lambda: h.metric("tokenpulse_source_errors_total", kind="connect") >= 6,
            message="six failed connects",
        )
        # five waits of at least 0.01, 0.02, 0.04, 0.08, 0.08 s (cap 0.16, jitter down to half)
        assert time.monotonic() - start >= 0.2


async def test_backoff_resets_once_a_connection_has_been_healthy() -> None:
    port = free_port()
    h = Harness(f"ws://127.0.0.1:{port}/v2", [BTC], backoff_initial=0.01, backoff_max=0.8)
    async with h.running():
        # seven failures: the next wait is drawn from [0.4, 0.8] s
        await wait_for(
            lambda: h.metric("tokenpulse_source_errors_total", kind="connect") >= 7,
            message="seven failed connects",
        )
        async with FakeKrakenWs(port=port, heartbeat_interval=0.05) as fake:
            await wait_for(lambda: h.last(BTC), timeout=3, message="connected and served")
            await fake.drop_all()
            elapsed = await wait_for(
                lambda: fake.total_connections == 2, timeout=3, message="reconnected"
            )
            # back to backoff_initial (0.005-0.01 s), not the 0.4 s the failures had reached
            assert elapsed < 0.3
