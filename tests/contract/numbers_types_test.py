"""One JSON type per field, always (SPEC §4.6), as a property over the recorded data.

Hypothesis draws recorded token quotes (the bundled CoinGecko replay, through the real
parsers) and recorded Kraken WS v2 prices — with provider decimals of any length swapped in —
and checks every served form: the REST JSON of a ticker and of a token in both number forms,
and every stream message (snapshot, delta, bulk) in both forms. The same census runs over a
real server's responses and real clients' stream messages in ``numbers_e2e_test.py``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokenpulse.data
from tests.contract._types import Census
from tokenpulse.api.streams.hub import StreamHub, StreamLimits
from tokenpulse.bus.topics import pair_key, token_key
from tokenpulse.data import known_tokens
from tokenpulse.domain.errors import InvalidParameter
from tokenpulse.domain.identity import IdentityRegistry
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.quality import build_snapshot
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.time import parse_iso
from tokenpulse.domain.tokens import TokenQuote
from tokenpulse.domain.velocity import VelocityPolicy
from tokenpulse.sources.replay.tokens import MarketReplaySource
from tokenpulse.wire.ltp import LtpView
from tokenpulse.wire.numbers import parse_numbers
from tokenpulse.wire.tokens import TokenView, snapshot_to_json

REPLAY = Path(tokenpulse.data.__file__).parent / "replay_kraken_ws_v2.jsonl"
RECEIVED = parse_iso("2026-02-14T10:21:07.151Z")


def _recorded_prices() -> list[tuple[str, Decimal]]:
    prices: list[tuple[str, Decimal]] = []
    for line in REPLAY.read_text().splitlines():
        if not line.startswith("{"):
            continue
        frame = json.loads(json.loads(line)["frame"])
        if frame.get("channel") != "ticker":
            continue
        for entry in frame["data"]:
            prices.append((entry["symbol"], parse_decimal(entry["last"], field="last")))
    return prices


def _recorded_quotes() -> list[TokenQuote]:
    source = MarketReplaySource(sink=lambda q: None, interval=60, speed=60, metrics=None)
    return [quote for _ in range(3) for quote in source.next_batch()]


PRICES = _recorded_prices()
QUOTES = _recorded_quotes()
REGISTRY = IdentityRegistry(known_tokens())
POLICY = VelocityPolicy()
#: Provider decimals of any length: 1 to 30 significant digits, tiny to huge.
DECIMALS = st.builds(
    lambda digits, exponent: Decimal(f"{digits}E{exponent}"),
    st.integers(min_value=1, max_value=10**30 - 1),
    st.integers(min_value=-40, max_value=10),
)
MAYBE = st.none() | DECIMALS | st.sampled_from([p for _, p in PRICES])
QUOTE_FIELDS = (
    "price_usd",
    "market_cap_usd",
    "volume_24h_usd",
    "circulating_supply",
    "total_supply",
    "max_supply",
    "percent_change_24h",
)


@st.composite
def tickers(draw: st.DrawFn) -> Ticker:
    symbol, last = draw(st.sampled_from(PRICES))
    base, quote = symbol.split("/")
    return Ticker(
        pair=Pair(base, quote),
        last=draw(st.just(last) | DECIMALS),
        source="kraken_ws",
        received_at=RECEIVED,
        as_of=RECEIVED - timedelta(milliseconds=draw(st.integers(0, 5000))),
        bid=draw(MAYBE),
        ask=draw(MAYBE),
        volume_24h=draw(MAYBE),
        vwap=draw(MAYBE),
    )


@st.composite
def quotes(draw: st.DrawFn) -> TokenQuote:
    quote = draw(st.sampled_from(QUOTES))
    swapped = draw(st.lists(st.sampled_from(QUOTE_FIELDS), unique=True, max_size=3))
    return replace(quote, **{name: draw(MAYBE) for name in swapped})


def served(view_json: bytes) -> Any:
    """What a client reads (strict JSON: no NaN or Infinity)."""
    return json.loads(view_json.decode())


@settings(max_examples=150, deadline=None)
@given(st.lists(tickers(), min_size=1, max_size=6), st.lists(quotes(), min_size=1, max_size=6))
def test_every_served_form_has_one_json_type_per_field(
    ticker_list: list[Ticker], quote_list: list[TokenQuote]
) -> None:
    for strings in (False, True):
        census = Census()
        for ticker in ticker_list:
            view = LtpView.of(ticker)
            rendered = view.render_strings(5, False) if strings else view.render(5, False)
            census.add(served(rendered), "ltp[]")
            replica = LtpView.from_body(view.body)  # what another instance serves
            again = replica.render_strings(5, True) if strings else replica.render(5, True)
            assert served(again) == {**served(rendered), "stale": True}
            census.add(served(again), "ltp[]")
        for quote in quote_list:
            snapshot = build_snapshot(REGISTRY.identify(quote), quote, POLICY, now=RECEIVED)
            view = TokenView.of(snapshot)
            for basic in (False, True):
                body = view.render_at(RECEIVED.timestamp(), 60, basic=basic, strings=strings)
                census.add(served(body), "data[]")
            direct = snapshot_to_json(snapshot, now=RECEIVED, stale_after=60, strings=strings)
            census.add(orjson.loads(orjson.dumps(direct)), "data[]")
        census.check(strings=strings)
        assert census.paths("amount")
        assert census.paths("symbol")  # tokens were seen too


@settings(max_examples=60, deadline=None)
@given(st.lists(tickers(), min_size=2, max_size=8), st.lists(quotes(), min_size=2, max_size=8))
async def test_every_stream_message_has_one_json_type_per_field(
    ticker_list: list[Ticker], quote_list: list[TokenQuote]
) -> None:
    hub = StreamHub(limits=StreamLimits(bulk_interval=0.0), stale_after=60.0)
    explicit = hub.open("test", lambda: None)
    bulk = hub.open("test", lambda: None)
    bulk.subscribe_prefix("pair:", bulk=True)
    bulk.subscribe_prefix("token:", bulk=True)
    messages = []
    for ticker in ticker_list:
        key = pair_key(str(ticker.pair))
        explicit.subscribe([key], 0)
        hub.publish(key, orjson.loads(LtpView.of(ticker).body))  # the bus's bytes
        messages += explicit.take() + bulk.take()
    for quote in quote_list:
        snapshot = build_snapshot(REGISTRY.identify(quote), quote, POLICY, now=RECEIVED)
        key = token_key(snapshot.id)
        explicit.subscribe([key], 0)
        hub.publish(key, orjson.loads(TokenView.of(snapshot).body))
        messages += explicit.take() + bulk.take()
    assert {m.kind for m in messages} >= {"snapshot"}
    for strings in (False, True):
        census = Census()
        for message in messages:
            payload = message.payload(1_771_064_467_151, strings=strings)
            census.add(served(orjson.dumps([message.event, payload]))[1], message.event)
        census.check(strings=strings)
    hub.close(explicit)
    hub.close(bulk)


@pytest.mark.parametrize(
    ("text", "strings"),
    [(None, False), ("", False), ("number", False), (" String ", True), ("string", True)],
)
def test_the_numbers_parameter(text: str | None, strings: bool) -> None:
    assert parse_numbers(text) is strings


@pytest.mark.parametrize("bad", ["str", "float", "1", "strings", ["string"]])
def test_a_bad_numbers_value_is_a_clear_error(bad: object) -> None:
    with pytest.raises(InvalidParameter, match="numbers must be one of number, string") as err:
        parse_numbers(bad)
    assert err.value.details["parameter"] == "numbers"
