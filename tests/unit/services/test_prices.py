"""PriceService through the bootstrap's wiring: what an accepted ticker does to the bus and
the cache, and what a rejected one does not do."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal

import orjson

from tests.helpers import RECEIVED
from tests.unit.services.conftest import BusRecorder
from tokenpulse.bootstrap import Container
from tokenpulse.bus.topics import LTP_TOPIC
from tokenpulse.data import kraken_pair_registry
from tokenpulse.domain.errors import StoreError
from tokenpulse.domain.ticker import Ticker
from tokenpulse.services.ltp.prices import CACHE_KEY_PREFIX
from tokenpulse.wire.ltp import ticker_to_json

REGISTRY = kraken_pair_registry()


def ticker(pair: str = "BTC/USD", last: str = "69767.6", **fields: object) -> Ticker:
    return Ticker(
        pair=REGISTRY.resolve(pair),
        last=Decimal(last),
        source="kraken_ws",
        received_at=RECEIVED,
        **fields,  # type: ignore[arg-type]
    )


async def test_an_accepted_ticker_is_published_cached_and_served(
    container: Container, bus_events: BusRecorder
) -> None:
    reading = ticker(bid=Decimal("69767.5"), ask=Decimal("69767.6"))

    assert await container.prices.accept(reading)

    (published,) = bus_events.on(LTP_TOPIC)
    assert orjson.loads(published) == ticker_to_json(reading, strings=True)
    cached = await container.cache.get(CACHE_KEY_PREFIX + "BTC/USD")
    assert cached is not None
    assert orjson.loads(cached) == ticker_to_json(reading, strings=True)
    view = container.prices.view(reading.pair)
    assert view is not None
    assert view.ticker == reading


async def test_unsupported_pairs_and_non_positive_prices_go_nowhere(
    container: Container, bus_events: BusRecorder
) -> None:
    rejected = [ticker("DOGE/USD"), ticker(last="0"), ticker(last="-1")]

    for reading in rejected:
        assert not await container.prices.accept(reading)

    assert bus_events.events == []
    assert await container.cache.scan(CACHE_KEY_PREFIX) == {}
    assert container.prices.views() == {}


async def test_each_pair_keeps_its_latest_value_and_the_bus_sees_every_one_in_order(
    container: Container, bus_events: BusRecorder
) -> None:
    readings = [
        ticker("BTC/USD", "69000.1"),
        ticker("ETH/USD", "2084.53"),
        ticker("BTC/USD", "69001.2", as_of=RECEIVED - timedelta(seconds=1)),
    ]
    for reading in readings:
        assert await container.prices.accept(reading)

    # The bus and the cache carry exact decimals (strings), so replicas keep every digit.
    assert [orjson.loads(p)["amount"] for p in bus_events.on(LTP_TOPIC)] == [
        "69000.1",
        "2084.53",
        "69001.2",
    ]
    cached = await container.cache.scan(CACHE_KEY_PREFIX)
    assert amounts(cached) == {"ltp:BTC/USD": "69001.2", "ltp:ETH/USD": "2084.53"}


async def test_a_cache_outage_loses_neither_the_value_nor_the_update(
    container: Container, bus_events: BusRecorder
) -> None:
    class BrokenCache:
        """The cache port, down: every write fails the way the Redis adapter fails."""

        async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
            raise StoreError("cache is down")

    container.prices.cache = BrokenCache()  # type: ignore[assignment]
    reading = ticker()

    assert await container.prices.accept(reading)

    assert len(bus_events.on(LTP_TOPIC)) == 1
    view = container.prices.view(reading.pair)
    assert view is not None
    assert view.ticker.last == Decimal("69767.6")


async def test_a_failing_subscriber_does_not_stop_the_others_or_the_service(
    container: Container, bus_events: BusRecorder
) -> None:
    def broken(topic: str, payload: bytes) -> None:
        raise RuntimeError("subscriber bug")

    container.bus.subscribe(LTP_TOPIC, broken)
    late = BusRecorder()
    container.bus.subscribe(LTP_TOPIC, late)

    assert await container.prices.accept(ticker())

    assert len(bus_events.on(LTP_TOPIC)) == len(late.on(LTP_TOPIC)) == 1
    handler_errors = container.metrics.registry.get_sample_value(
        "tokenpulse_bus_handler_errors_total", {"topic": LTP_TOPIC}
    )
    assert handler_errors == 1.0  # a subscriber's bug, not a failed publish
    publish_failures = container.metrics.registry.get_sample_value(
        "tokenpulse_bus_publish_failures_total", {"topic": LTP_TOPIC}
    )
    assert not publish_failures


def amounts(entries: Mapping[str, bytes]) -> dict[str, object]:
    """``{key: amount}`` of cached LTP entries."""
    return {key: orjson.loads(value)["amount"] for key, value in entries.items()}
