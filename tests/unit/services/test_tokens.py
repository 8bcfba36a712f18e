"""TokenService through the bootstrap's wiring: served snapshots go onto the bus with their
id and become what the token API answers; quotes without numbers go nowhere."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import orjson
import pytest

from tests.unit.services.conftest import BusRecorder
from tokenpulse.bootstrap import Container
from tokenpulse.bus.topics import TOKENS_TOPIC
from tokenpulse.domain.tokens import TokenQuote
from tokenpulse.sources.replay.tokens import MarketReplaySource


@pytest.fixture
def quotes() -> list[TokenQuote]:
    """The first ten quotes of the bundled market replay (recorded CoinGecko answers)."""
    source = MarketReplaySource(sink=lambda _: None, interval=60, speed=60, metrics=None)
    return source.next_batch()[:10]


async def test_served_snapshots_are_published_with_their_id_and_listed(
    container: Container, bus_events: BusRecorder, quotes: list[TokenQuote]
) -> None:
    served = await container.tokens.accept(quotes)

    assert len(served) == len(quotes)
    published = [orjson.loads(payload) for payload in bus_events.on(TOKENS_TOPIC)]
    assert [token["id"] for token in published] == [snapshot.id for snapshot in served]
    bitcoin = next(token for token in published if token["id"] == "bitcoin")
    assert bitcoin["symbol"] == "BTC"
    assert Decimal(str(bitcoin["price_usd"])) == next(
        q.price_usd for q in quotes if q.symbol == "BTC"
    )
    assert {view.snapshot.id for view in container.tokens.views()} == {s.id for s in served}


async def test_a_quote_without_price_or_market_cap_is_neither_served_nor_published(
    container: Container, bus_events: BusRecorder, quotes: list[TokenQuote]
) -> None:
    empty = replace(quotes[0], price_usd=None, market_cap_usd=None)

    assert await container.tokens.accept([empty]) == []

    assert bus_events.on(TOKENS_TOPIC) == []
    assert len(container.tokens) == 0


async def test_one_update_per_accepted_quote_and_the_latest_is_served(
    container: Container, bus_events: BusRecorder, quotes: list[TokenQuote]
) -> None:
    first = quotes[0]
    later = replace(first, price_usd=first.price_usd * Decimal("1.01"))  # type: ignore[operator]

    await container.tokens.accept([first])
    await container.tokens.accept([later])

    prices = [orjson.loads(p)["price_usd"] for p in bus_events.on(TOKENS_TOPIC)]
    assert [Decimal(str(p)) for p in prices] == [first.price_usd, later.price_usd]
    (token_id,) = {orjson.loads(p)["id"] for p in bus_events.on(TOKENS_TOPIC)}
    view = container.tokens.view(token_id)
    assert view is not None
    assert view.snapshot.quote.price_usd == later.price_usd
