"""What the ingest leader publishes, a replica reads back unchanged."""

from __future__ import annotations

from decimal import Decimal

import orjson

from tokenpulse.data import known_tokens
from tokenpulse.domain.identity import IdentityRegistry
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.quality import build_snapshot
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.time import parse_iso
from tokenpulse.domain.velocity import VelocityPolicy
from tokenpulse.services.replication import snapshot_from_json, ticker_from_json
from tokenpulse.sources.replay.tokens import MarketReplaySource
from tokenpulse.wire.tokens import snapshot_to_json


def test_ticker_round_trips_digit_for_digit() -> None:
    ticker = Ticker(
        pair=Pair("BTC", "USD"),
        last=Decimal("73380.60000"),
        source="kraken_ws",
        received_at=parse_iso("2026-02-14T10:21:07.151Z"),
        as_of=parse_iso("2026-02-14T10:21:07.123Z"),
        bid=Decimal("0.10025"),
        ask=None,
        volume_24h=Decimal("1234567890.123456789"),  # more digits than a float holds
        vwap=Decimal("72647.97204"),
    )
    back = ticker_from_json(orjson.loads(orjson.dumps(ticker.to_json())))
    assert back == ticker


def test_snapshot_round_trips_through_the_published_json() -> None:
    quotes = MarketReplaySource(
        sink=lambda q: None, interval=60, speed=60, metrics=None
    ).next_batch()
    registry = IdentityRegistry(known_tokens())
    for quote in quotes[:30]:
        identity = registry.identify(quote)
        snapshot = build_snapshot(identity, quote, VelocityPolicy(), now=quote.received_at)
        published = snapshot_to_json(snapshot, now=quote.received_at, stale_after=60)
        back = snapshot_from_json(orjson.loads(orjson.dumps(published)))
        assert back.identity == identity
        assert back.velocity == snapshot.velocity
        assert back.market_cap_used == snapshot.market_cap_used
        assert back.flags == snapshot.flags
        assert back.quote.price_usd == quote.price_usd
        assert back.quote.received_at == quote.received_at.replace(
            microsecond=quote.received_at.microsecond // 1000 * 1000
        )
        assert snapshot_to_json(back, now=quote.received_at, stale_after=60) == published
