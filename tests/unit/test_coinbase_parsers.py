"""Golden tests of the Coinbase sans-I/O parsers over the recorded Exchange feed session."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.events import TickerUpdated
from tokenpulse.domain.pairs import Pair
from tokenpulse.sources._feed import FeedAck, FeedAlive, FeedFrame
from tokenpulse.sources.coinbase.rest_parser import parse_product_ticker
from tokenpulse.sources.coinbase.ws_parser import (
    PARSE_ERROR_KINDS,
    parse_coinbase_ws,
    subscribe_message,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "coinbase"
SESSION = (FIXTURES / "ws_exchange_ticker_cryptofeed_2021-04-17.txt").read_text("utf-8")
RECEIVED = [
    line.partition(": ")[2]
    for line in SESSION.splitlines()
    if line.partition(": ")[1] and " " not in line.partition(": ")[0]
]
PRODUCTS = {
    f"{base}-{quote}": Pair(base, quote)
    for base, quote in (
        ("SKL", "USD"), ("SKL", "BTC"), ("SKL", "GBP"), ("BAND", "GBP"), ("BAND", "BTC"),
        ("NMR", "EUR"), ("YFI", "BTC"), ("DASH", "BTC"), ("NU", "GBP"), ("CRV", "EUR"),
    )
}  # fmt: skip
AT = datetime(2021, 4, 17, 16, 43, 37, tzinfo=UTC)
# Not recorded: written from the Exchange WebSocket docs (docs.cdp.coinbase.com).
DOCS_HEARTBEAT = (
    '{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"SKL-USD",'
    '"time":"2014-11-07T08:19:28.464459Z"}'
)
DOCS_ERROR = (
    '{"type":"error","message":"Failed to subscribe","reason":"XYZ-USD is not a valid product"}'
)


def parse(raw: str | bytes) -> FeedFrame:
    return parse_coinbase_ws(raw, source="coinbase_ws", received_at=AT, products=PRODUCTS)


def test_the_recording_has_what_the_shared_readme_says() -> None:
    kinds = [json.loads(frame)["type"] for frame in RECEIVED]
    assert kinds.count("ticker") == 107
    assert kinds.count("subscriptions") == 3


def test_every_recorded_frame_parses_without_error() -> None:
    tickers = 0
    for frame in RECEIVED:
        result = parse(frame)
        assert result.errors == ()
        tickers += sum(isinstance(m, TickerUpdated) for m in result.messages)
    assert tickers == 107


def test_first_recorded_ticker_golden() -> None:
    first = next(f for f in RECEIVED if '"type":"ticker"' in f)
    (message,) = parse(first).messages
    assert isinstance(message, TickerUpdated)
    ticker = message.ticker
    assert ticker.pair == Pair("BAND", "GBP")
    assert ticker.last == Decimal("14.7775")
    assert ticker.bid == Decimal("14.7550")
    assert ticker.ask == Decimal("14.8060")
    assert ticker.volume_24h == Decimal("94381.28000000")
    assert str(ticker.volume_24h) == "94381.28000000"  # every digit kept
    assert ticker.as_of == datetime(2021, 4, 17, 16, 43, 30, 244075, tzinfo=UTC)
    assert ticker.received_at == AT
    assert ticker.source == "coinbase_ws"
    assert parse(first).sequence == 333938798  # drops late tickers (the socket loop)


def test_subscriptions_ack_names_the_ticker_products() -> None:
    ack_frame = next(f for f in RECEIVED if '"name":"ticker"' in f)
    (ack,) = parse(ack_frame).messages
    assert isinstance(ack, FeedAck)
    assert ack.success
    assert set(ack.symbols) == set(PRODUCTS)


def test_a_subscriptions_ack_without_ticker_names_nothing() -> None:
    level2_only = next(f for f in RECEIVED if '"subscriptions"' in f and '"ticker"' not in f)
    (ack,) = parse(level2_only).messages
    assert isinstance(ack, FeedAck)
    assert ack.symbols == ()


def test_heartbeat_and_error() -> None:
    assert parse(DOCS_HEARTBEAT).messages == (FeedAlive(),)
    (error,) = parse(DOCS_ERROR).messages
    assert isinstance(error, FeedAck)
    assert not error.success
    assert error.error is not None
    assert "XYZ-USD is not a valid product" in error.error


def test_other_channels_are_ignored_not_errors() -> None:
    result = parse('{"type":"l2update","product_id":"SKL-USD","changes":[]}')
    assert result.ignored
    assert result.messages == ()


def test_subscribe_message() -> None:
    assert json.loads(subscribe_message(["BTC-USD", "ETH-USD"])) == {
        "type": "subscribe",
        "product_ids": ["BTC-USD", "ETH-USD"],
        "channels": ["ticker", "heartbeat"],
    }


# -- malformed and truncated variants of recorded frames -------------------------------------

FIRST_TICKER = next(f for f in RECEIVED if '"type":"ticker"' in f)


def _variant(**changes: object) -> str:
    frame = json.loads(FIRST_TICKER)
    for key, value in changes.items():
        if value is ...:
            frame.pop(key)
        else:
            frame[key] = value
    return json.dumps(frame)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (FIRST_TICKER[: len(FIRST_TICKER) // 2], "invalid_json"),
        (FIRST_TICKER[:-1], "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        ("[1,2]", "not_an_object"),
        ('{"product_id":"SKL-USD"}', "unknown_message"),
        ('{"type":7}', "bad_field"),
        ('{"type":"nosuch"}', "unknown_message"),
        (_variant(price=...), "missing_field"),
        (_variant(price="abc"), "bad_number"),
        (_variant(price="-1"), "bad_number"),
        (_variant(price="0"), "bad_number"),
        (_variant(price=None), "bad_number"),
        (_variant(best_bid="NaN"), "bad_number"),
        (_variant(product_id="BTC-USD"), "unknown_symbol"),
        (_variant(product_id=5), "bad_field"),
        (_variant(time="yesterday"), "bad_timestamp"),
        (_variant(time=1618677810), "bad_timestamp"),
        ('{"type":"subscriptions","channels":{}}', "bad_field"),
    ],
)
def test_malformed_frames_raise_parse_error_of_a_known_kind(raw: str | bytes, kind: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(raw)
    assert info.value.kind == kind
    assert kind in PARSE_ERROR_KINDS


def test_optional_fields_may_be_absent() -> None:
    (message,) = parse(_variant(best_bid=..., best_ask=..., volume_24h=..., time=...)).messages
    assert isinstance(message, TickerUpdated)
    assert message.ticker.bid is None
    assert message.ticker.as_of is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
frames = st.fixed_dictionaries(
    {"type": st.sampled_from(["ticker", "heartbeat", "subscriptions", "error"]) | json_values},
    optional={
        "product_id": st.sampled_from(list(PRODUCTS)) | json_values,
        "price": st.decimals(allow_nan=False, allow_infinity=False).map(str) | json_values,
        "best_bid": json_values,
        "volume_24h": json_values,
        "time": st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()) | json_values,
        "channels": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.text() | st.binary() | json_values.map(json.dumps) | frames.map(json.dumps))
def test_arbitrary_input_only_raises_parse_error(raw: str | bytes) -> None:
    kinds: set[str] = set()
    try:
        result = parse(raw)
    except ParseError as exc:
        kinds.add(exc.kind)
    else:
        kinds.update(error.kind for error in result.errors)
    assert kinds <= PARSE_ERROR_KINDS


# -- REST ------------------------------------------------------------------------------------


def test_rest_product_ticker_golden() -> None:
    payload = json.loads(
        (FIXTURES / "rest_exchange_ticker_btc-usdt_2024-03-13_ccxt.json").read_text("utf-8")
    )
    ticker = parse_product_ticker(
        payload, pair=Pair("BTC", "USDT"), source="coinbase_rest", received_at=AT
    )
    assert ticker.last == Decimal("73367.8")
    assert ticker.bid == Decimal("73360.34")
    assert ticker.ask == Decimal("73369.19")
    assert ticker.volume_24h == Decimal("1207.50668151")
    assert ticker.as_of == datetime(2024, 3, 13, 11, 10, 41, 270099, tzinfo=UTC)


@pytest.mark.parametrize(
    "payload", [[], {"message": "NotFound"}, {"price": "x"}, {"price": "0"}, {"bid": "1"}]
)
def test_rest_malformed_answers_raise_parse_error(payload: object) -> None:
    with pytest.raises(ParseError):
        parse_product_ticker(payload, pair=Pair("BTC", "USD"), source="c", received_at=AT)
