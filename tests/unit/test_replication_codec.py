"""What the ingest leader publishes, a replica reads back unchanged."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from tokenpulse.data import known_tokens
from tokenpulse.domain.identity import IdentityRegistry
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.quality import build_snapshot
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.time import parse_iso
from tokenpulse.domain.velocity import VelocityPolicy
from tokenpulse.sources.replay.tokens import MarketReplaySource
from tokenpulse.wire.ltp import LtpView, ticker_from_json, ticker_to_json
from tokenpulse.wire.tokens import TokenView, snapshot_from_json, snapshot_to_json


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
    exact = orjson.loads(orjson.dumps(ticker_to_json(ticker, strings=True)))
    assert ticker_from_json(exact) == ticker
    numbers = ticker_to_json(ticker)
    assert numbers["volume_24h"] == 1234567890.1234567  # the nearest float64
    assert {k for k, v in numbers.items() if isinstance(v, str)} == {
        "pair",
        "timestamp",
        "source",
        "as_of",
        "received_at",
    }
    view = LtpView.of(ticker)
    replica = LtpView.from_body(view.body)
    assert replica.ticker == ticker
    assert replica.body is view.body  # a replica serves the leader's bytes as they are
    assert replica.render(12, False) == view.render(12, False)
    assert replica.render_strings(12, False) == view.render_strings(12, False)
    # Bytes in the number form (an older writer) are read too, and re-serialised.
    older = LtpView.from_body(orjson.dumps(numbers))
    assert older.render(12, False) == view.render(12, False)


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


def test_the_published_token_body_reads_back_as_the_snapshot() -> None:
    quotes = MarketReplaySource(
        sink=lambda q: None, interval=60, speed=60, metrics=None
    ).next_batch()
    registry = IdentityRegistry(known_tokens())
    for quote in quotes[:10]:
        snapshot = build_snapshot(
            registry.identify(quote), quote, VelocityPolicy(), now=quote.received_at
        )
        view = TokenView.of(snapshot)
        back = snapshot_from_json(orjson.loads(view.body))
        again = TokenView.of(back)  # received_at keeps milliseconds, so compare the JSON
        assert (again.body, again.basic_head, again.quality_stale) == (
            view.body,
            view.basic_head,
            view.quality_stale,
        )
        # The body is the full snapshot minus its freshness, as rendered at receipt.
        rendered = orjson.loads(view.strings.render(0, False))
        assert {k: v for k, v in rendered.items() if k not in {"age_ms", "stale"}} == (
            orjson.loads(view.body)
        )


def test_a_malformed_number_is_a_value_error() -> None:
    body = ticker_to_json(
        Ticker(Pair("BTC", "USD"), Decimal(1), "kraken_ws", parse_iso("2026-02-14T10:21:07Z"))
    )
    with pytest.raises(ValueError, match="not a number"):
        ticker_from_json({**body, "bid": "lots"})
