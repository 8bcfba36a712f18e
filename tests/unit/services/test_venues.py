"""The venue book and the failover policy, wired by the production bootstrap, never started:
each test records tickers itself and moves the price service's clock by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.helpers import FakeClock, in_memory_settings
from tokenpulse.bootstrap import Container
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.runtime import create_runtime
from tokenpulse.services.ltp.feeds import Failover
from tokenpulse.services.ltp.venues import AGGREGATE, VenueBook, venue_of

BTC = Pair("BTC", "USD")
START = 1_800_000_000.0


@pytest.fixture
async def container() -> AsyncIterator[Container]:
    settings = in_memory_settings(
        sources="kraken,coinbase,binance",
        quote_equivalents="USDT=USD",
        pair_lists_fetch=False,
        stale_after="10s",
    )
    runtime = create_runtime(settings)
    runtime.container.prices.clock = FakeClock(START)
    try:
        yield runtime.container
    finally:
        await runtime.stop()


def book_of(container: Container) -> VenueBook:
    assert container.supervisor is not None
    assert container.supervisor.book is not None
    return container.supervisor.book


def tick(source: str, price: str, volume: str, at: float) -> Ticker:
    return Ticker(
        pair=BTC,
        last=Decimal(price),
        source=source,
        received_at=datetime.fromtimestamp(at, UTC),
        volume_24h=Decimal(volume),
    )


def test_feed_names_map_to_their_venue() -> None:
    assert venue_of("coinbase_ws") == venue_of("coinbase_rest") == "coinbase"
    assert venue_of("replay") == "replay"


async def test_the_book_keeps_each_venue_and_its_aggregate(container: Container) -> None:
    book = book_of(container)
    assert book.venues == ["kraken", "coinbase", "binance"]
    assert book.symbols["binance"][BTC] == "BTCUSDT"
    for source, price, volume in (
        ("kraken_ws", "100", "1"),
        ("coinbase_rest", "102", "1"),
        ("binance_ws", "104", "2"),
    ):
        assert book.record(tick(source, price, volume, START)) == venue_of(source)
    result, view = book.refresh_aggregate(BTC, START + 1)
    assert result.price == Decimal("102.5")  # (100 + 102 + 2*104) / 4
    assert view is not None
    assert view.ticker.source == AGGREGATE
    assert book.view("coinbase", BTC) is not None
    # the same price again: the same view (nothing new to publish)
    assert book.refresh_aggregate(BTC, START + 2)[1] is view

    # 11 s later only binance spoke again: the others are stale and left out
    book.record(tick("binance_ws", "105", "2", START + 11))
    later, newer = book.refresh_aggregate(BTC, START + 11)
    assert [(v.quote.venue, v.reason) for v in later.venues] == [
        ("kraken", "stale"),
        ("coinbase", "stale"),
        ("binance", None),
    ]
    assert newer is not None
    assert newer.ticker.last == Decimal("105")


async def test_failover_targets_the_aggregate_only_with_a_fresh_value(
    container: Container,
) -> None:
    book = book_of(container)
    prices = container.prices
    failover = Failover(book, prices, "kraken", "aggregate")
    book.record(tick("kraken_ws", "100", "1", START))
    assert failover.primary_fresh(BTC)
    assert failover.target(BTC) == AGGREGATE  # kraken itself still counts in the aggregate
    prices.clock.advance(11)  # type: ignore[attr-defined]
    assert not failover.primary_fresh(BTC)
    assert failover.target(BTC) is None  # nobody fresh: nothing to fail over to
    book.record(tick("coinbase_ws", "101", "1", START + 11))
    assert failover.target(BTC) == AGGREGATE
    to_venue = Failover(book, prices, "kraken", "coinbase")
    assert to_venue.target(BTC) == "coinbase"
    assert Failover(book, prices, "kraken", "binance").target(BTC) is None
    assert Failover(book, prices, "kraken", "none").target(BTC) is None
