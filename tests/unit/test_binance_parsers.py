"""Golden tests of the Binance sans-I/O parsers over recorded combined-stream frames."""

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
from tokenpulse.sources._feed import FeedAck, FeedFrame
from tokenpulse.sources.binance.rest_parser import parse_ticker_24hr
from tokenpulse.sources.binance.ws_parser import (
    PARSE_ERROR_KINDS,
    parse_binance_ws,
    stream_name,
    subscribe_message,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "binance"
TICKER_LINES = (FIXTURES / "ws_24hrticker_spot_2022-05-29.jsonl").read_text("utf-8").splitlines()
ETHUSDT_FRAME = TICKER_LINES[0]
ARRAY_FRAME = TICKER_LINES[1]
OTHER_STREAMS = [
    line.partition(": ")[2]
    for line in (FIXTURES / "ws_combined_streams_cryptofeed_2021-10-12.txt")
    .read_text("utf-8")
    .splitlines()[1:]
    if line.strip()
]
SYMBOLS = {"ETHUSDT": Pair("ETH", "USD"), "BTCUSDT": Pair("BTC", "USD")}
AT = datetime(2022, 5, 29, 8, 24, 11, tzinfo=UTC)


def parse(raw: str | bytes) -> FeedFrame:
    return parse_binance_ws(raw, source="binance_ws", received_at=AT, symbols=SYMBOLS)


def test_recorded_ticker_golden() -> None:
    (message,) = parse(ETHUSDT_FRAME).messages
    assert isinstance(message, TickerUpdated)
    ticker = message.ticker
    assert ticker.pair == Pair("ETH", "USD")  # through the configured USDT=USD mapping
    assert ticker.last == Decimal("1792.84000000")
    assert str(ticker.last) == "1792.84000000"
    assert ticker.bid == Decimal("1792.83000000")
    assert ticker.ask == Decimal("1792.84000000")
    assert ticker.volume_24h == Decimal("471703.53110000")  # v: base volume
    assert ticker.vwap == Decimal("1781.16275609")
    assert ticker.as_of == datetime(2022, 5, 29, 8, 24, 10, 349000, tzinfo=UTC)
    assert ticker.source == "binance_ws"


def test_all_market_array_and_other_recorded_streams_are_ignored() -> None:
    assert parse(ARRAY_FRAME).ignored
    assert len(OTHER_STREAMS) > 200
    for frame in OTHER_STREAMS:
        result = parse(frame)
        assert result.ignored
        assert result.messages == ()
        assert result.errors == ()


def test_subscribe_answers() -> None:
    (ok,) = parse('{"result":null,"id":3}').messages
    assert ok == FeedAck(3, ())
    (error,) = parse('{"error":{"code":2,"msg":"Invalid request"},"id":4}').messages
    assert isinstance(error, FeedAck)
    assert error.req_id == 4
    assert error.error == "2: Invalid request"


def test_subscribe_message() -> None:
    assert stream_name("BTCUSDT") == "btcusdt@ticker"
    assert json.loads(subscribe_message(["BTCUSDT", "ETHUSDT"], 7)) == {
        "method": "SUBSCRIBE",
        "params": ["btcusdt@ticker", "ethusdt@ticker"],
        "id": 7,
    }


def _variant(**changes: object) -> str:
    frame = json.loads(ETHUSDT_FRAME)
    for key, value in changes.items():
        if value is ...:
            frame["data"].pop(key)
        else:
            frame["data"][key] = value
    return json.dumps(frame)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (ETHUSDT_FRAME[: len(ETHUSDT_FRAME) // 2], "invalid_json"),
        (ETHUSDT_FRAME[:-2], "invalid_json"),
        ("7", "not_an_object"),
        ("{}", "unknown_message"),
        ('{"stream":1}', "bad_field"),
        ('{"stream":"ethusdt@ticker"}', "missing_field"),
        ('{"stream":"ethusdt@ticker","data":[]}', "not_an_object"),
        (_variant(e="kline"), "unknown_event"),
        (_variant(c=...), "missing_field"),
        (_variant(c="1,5"), "bad_number"),
        (_variant(c="0.00000000"), "bad_number"),
        (_variant(b=-1), "bad_number"),
        (_variant(s="DOGEUSDT"), "unknown_symbol"),
        (_variant(s=None), "bad_field"),
        (_variant(E="now"), "bad_timestamp"),
    ],
)
def test_malformed_frames_raise_parse_error_of_a_known_kind(raw: str, kind: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(raw)
    assert info.value.kind == kind
    assert kind in PARSE_ERROR_KINDS


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
datas = st.fixed_dictionaries(
    {"e": st.just("24hrTicker") | json_values},
    optional={
        "s": st.sampled_from(list(SYMBOLS)) | json_values,
        "c": st.decimals(allow_nan=False, allow_infinity=False).map(str) | json_values,
        "b": json_values,
        "v": json_values,
        "E": st.integers() | json_values,
    },
)
frames = st.fixed_dictionaries(
    {"stream": st.sampled_from(["ethusdt@ticker", "x@bookTicker"]) | json_values, "data": datas}
) | st.fixed_dictionaries({"id": json_values, "result": json_values, "error": json_values})


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

REST = json.loads(
    (FIXTURES / "rest_ticker_24hr_binanceus_btcusdt_2024-03-13_ccxt.json").read_text()
)


def test_rest_24hr_golden_single_object_and_array() -> None:
    for payload in (REST, [REST]):
        result = parse_ticker_24hr(payload, symbols=SYMBOLS, source="binance_rest", received_at=AT)
        assert result.bad_entries == []
        assert result.errors == []
        (ticker,) = result.tickers
        assert ticker.pair == Pair("BTC", "USD")
        assert ticker.last == Decimal("73346.14000000")
        assert ticker.bid == Decimal("73267.15000000")
        assert ticker.ask == Decimal("73345.89000000")
        assert ticker.volume_24h == Decimal("129.21293000")
        assert ticker.as_of == datetime(2024, 3, 13, 11, 10, 44, 727000, tzinfo=UTC)


def test_rest_bad_entries_are_kept_aside() -> None:
    payload = [REST, {**REST, "lastPrice": "x"}, {**REST, "symbol": "NOPE"}, 5]
    result = parse_ticker_24hr(payload, symbols=SYMBOLS, source="b", received_at=AT)
    assert len(result.tickers) == 1
    assert [e.kind for e in result.bad_entries] == ["bad_number", "rest_unknown_pair", "rest_entry"]


def test_rest_error_answer() -> None:
    result = parse_ticker_24hr(
        {"code": -1121, "msg": "Invalid symbol."}, symbols=SYMBOLS, source="b", received_at=AT
    )
    assert result.tickers == []
    assert result.errors == ["-1121: Invalid symbol."]
    with pytest.raises(ParseError):
        parse_ticker_24hr("x", symbols=SYMBOLS, source="b", received_at=AT)
