"""Golden tests of the Kraken WS v2 parser over the docs examples and recorded values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenpulse.data import kraken_pair_registry
from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.events import TickerUpdated
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.sources.kraken.ws_parser import (
    PARSE_ERROR_KINDS,
    Heartbeat,
    ParseResult,
    Pong,
    StatusUpdate,
    SubscribeAck,
    parse_ws_v2,
    ping_message,
    subscribe_message,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kraken"
DOCS = (FIXTURES / "ws_v2_ticker_protocol_examples.jsonl").read_text("utf-8").splitlines()
RECORDED = (FIXTURES / "ws_v2_ticker_from_recorded_values.jsonl").read_text("utf-8").splitlines()
V1_CAPTURE = (FIXTURES / "ws_v1_ticker_cryptofeed_2021-04-17.txt").read_text("utf-8").splitlines()

REGISTRY = kraken_pair_registry()
RECEIVED_AT = datetime(2026, 2, 14, 12, 0, 0, 123456, tzinfo=UTC)
SOURCE = "kraken_ws"

# Docs session order: subscribe request, status, snapshot, heartbeat, ping, pong, unsubscribe.
DOCS_STATUS, DOCS_SNAPSHOT, DOCS_HEARTBEAT, DOCS_PONG = DOCS[1], DOCS[2], DOCS[3], DOCS[5]
DOCS_CLIENT_REQUESTS = [DOCS[0], DOCS[4], DOCS[6]]

# Subscribe acks in the shape of docs.kraken.com/api/docs/websocket-v2/ticker "Subscribe Ack".
ACK_SUCCESS = (
    '{"method":"subscribe","req_id":42,"result":{"channel":"ticker","event_trigger":"trades",'
    '"snapshot":true,"symbol":"ALGO/USD"},"success":true,'
    '"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}'
)
ACK_ERROR = (
    '{"error":"Currency pair not supported ABC/DEF","method":"subscribe","req_id":43,'
    '"success":false,"symbol":"ABC/DEF",'
    '"time_in":"2023-09-25T09:04:31.742599Z","time_out":"2023-09-25T09:04:31.742648Z"}'
)

# The recorded REST Ticker values the v2 frames were written from
# (shared/fixtures/kraken/rest_ticker_16pairs_2026-02-14_a.json): c[0], b[0], a[0], v[1], p[1].
RECORDED_REST = {
    "BTC/USD": ("69767.60000", "69767.50000", "69767.60000", "2253.24157305", "69514.55995"),
    "ETH/USD": ("2084.53000", "2084.14000", "2084.38000", "10741.29881614", "2072.43343"),
    "LTC/USD": ("56.13000", "56.04000", "56.06000", "63760.95789993", "55.64061"),
    "XRP/USD": ("1.49407000", "1.49345000", "1.49368000", "15966487.31781903", "1.44505041"),
    "DOGE/USD": ("0.108361200", "0.108245300", "0.108282200", "93657145.11533068", "0.102233583"),
}


def parse(raw: str | bytes) -> ParseResult:
    return parse_ws_v2(raw, source=SOURCE, received_at=RECEIVED_AT, registry=REGISTRY)


def tickers(result: ParseResult) -> list[Ticker]:
    return [m.ticker for m in result.messages if isinstance(m, TickerUpdated)]


def parse_error(raw: str | bytes) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse(raw)
    assert info.value.kind in PARSE_ERROR_KINDS
    return info.value


def ticker_frame(*entries: object, kind: str = "update") -> str:
    return json.dumps({"channel": "ticker", "type": kind, "data": list(entries)}, default=float)


def recorded_entry(symbol: str) -> dict[str, Any]:
    for line in RECORDED:
        frame = json.loads(line, parse_float=Decimal)
        if frame["type"] == "snapshot" and frame["data"][0]["symbol"] == symbol:
            entry: dict[str, Any] = frame["data"][0]
            return entry
    raise LookupError(symbol)


def encode(entry: dict[str, Any]) -> str:
    """JSON text for an entry whose Decimals stay numbers with the same digits."""
    return json.dumps({k: (float(v) if isinstance(v, Decimal) else v) for k, v in entry.items()})


# -- docs examples: every message kind -------------------------------------------------------


def test_status_frame() -> None:
    assert parse(DOCS_STATUS).messages == (
        StatusUpdate(system="online", api_version="v2", connection_id=13834774380200032777),
    )


def test_docs_snapshot_keeps_every_digit_and_both_times() -> None:
    result = parse(DOCS_SNAPSHOT)

    assert result.errors == ()
    [ticker] = tickers(result)
    assert ticker.pair == Pair("ALGO", "USD")
    assert ticker.source == SOURCE
    assert ticker.received_at == RECEIVED_AT
    assert (str(ticker.last), str(ticker.bid), str(ticker.ask)) == ("0.10035", "0.10025", "0.10036")
    assert ticker.volume_24h == Decimal("997038.98383185")
    assert str(ticker.vwap) == "0.10148"
    assert ticker.as_of == datetime(2023, 9, 25, 9, 4, 31, 742648, tzinfo=UTC)
    assert ticker.as_of is not None
    assert ticker.as_of.utcoffset() == timedelta(0)


def test_heartbeat() -> None:
    assert parse(DOCS_HEARTBEAT).messages == (Heartbeat(),)


def test_pong() -> None:
    assert parse(DOCS_PONG).messages == (Pong(req_id=101),)


def test_subscribe_ack_success() -> None:
    assert parse(ACK_SUCCESS).messages == (
        SubscribeAck(req_id=42, symbol="ALGO/USD", success=True, error=None),
    )


def test_subscribe_ack_error_keeps_krakens_message() -> None:
    assert parse(ACK_ERROR).messages == (
        SubscribeAck(
            req_id=43,
            symbol="ABC/DEF",
            success=False,
            error="Currency pair not supported ABC/DEF",
        ),
    )


def test_error_ack_without_symbol_or_req_id() -> None:
    raw = '{"error":"Exceeded msg rate","method":"subscribe","success":false}'
    assert parse(raw).messages == (
        SubscribeAck(req_id=None, symbol=None, success=False, error="Exceeded msg rate"),
    )


@pytest.mark.parametrize("raw", DOCS_CLIENT_REQUESTS)
def test_client_requests_are_not_server_frames(raw: str) -> None:
    assert parse_error(raw).kind in {"missing_field", "unknown_method"}


def test_bytes_frame_is_parsed_like_text() -> None:
    assert parse(DOCS_SNAPSHOT.encode()) == parse(DOCS_SNAPSHOT)


# -- frames written from recorded values -----------------------------------------------------


@pytest.mark.parametrize("line", RECORDED, ids=lambda line: line[30:60])
def test_recorded_values_come_out_digit_for_digit(line: str) -> None:
    result = parse(line)

    assert result.errors == ()
    [ticker] = tickers(result)
    last, bid, ask, volume, vwap = RECORDED_REST[str(ticker.pair)]
    assert str(ticker.last) == last
    assert (str(ticker.bid), str(ticker.ask)) == (bid, ask)
    assert (str(ticker.volume_24h), str(ticker.vwap)) == (volume, vwap)
    assert ticker.as_of is not None
    assert ticker.as_of.tzinfo is UTC


def test_doge_symbol_resolves_to_the_canonical_pair() -> None:
    [ticker] = tickers(parse(ticker_frame(json.loads(RECORDED[4])["data"][0])))
    assert ticker.pair == Pair("DOGE", "USD")


# -- one bad entry does not lose the others --------------------------------------------------


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"last": "abc"}, "bad_number"),
        ({"last": None}, "bad_number"),
        ({"last": True}, "bad_number"),
        ({"last": [1]}, "bad_number"),
        ({"last": -1.5}, "bad_number"),
        ({"bid": "n/a"}, "bad_number"),
        ({"symbol": "ABC/DEF"}, "unknown_symbol"),
        ({"symbol": "no pair at all"}, "unknown_symbol"),
        ({"symbol": 7}, "bad_field"),
        ({"timestamp": "yesterday"}, "bad_timestamp"),
        ({"timestamp": 1695632671}, "bad_timestamp"),
    ],
)
def test_bad_entry_is_reported_and_the_good_ones_kept(change: dict[str, Any], kind: str) -> None:
    btc, eth = recorded_entry("BTC/USD"), recorded_entry("ETH/USD")
    bad = {**recorded_entry("LTC/USD"), **change}
    raw = (
        f'{{"channel":"ticker","type":"update","data":[{encode(btc)},{encode(bad)},{encode(eth)}]}}'
    )

    result = parse(raw)

    assert [str(t.pair) for t in tickers(result)] == ["BTC/USD", "ETH/USD"]
    [error] = result.errors
    assert error.kind == kind
    assert "data[1]" in str(error)


@pytest.mark.parametrize(
    ("entry", "kind"),
    [("BTC/USD", "not_an_object"), ({"symbol": "BTC/USD"}, "missing_field"), ({}, "missing_field")],
)
def test_entry_shape_errors(entry: object, kind: str) -> None:
    result = parse(ticker_frame(entry, recorded_entry("BTC/USD") | {"last": 1}))
    assert [e.kind for e in result.errors] == [kind]
    assert len(tickers(result)) == 1


def test_optional_fields_may_be_absent() -> None:
    [ticker] = tickers(parse(ticker_frame({"symbol": "BTC/USD", "last": 69767.6})))
    assert ticker.last == Decimal("69767.6")
    assert (ticker.bid, ticker.ask, ticker.volume_24h, ticker.vwap, ticker.as_of) == (None,) * 5


def test_empty_data_is_an_empty_result() -> None:
    assert parse(ticker_frame(kind="snapshot")) == ParseResult()


# -- frames broken as a whole ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("{not json", "invalid_json"),
        ("", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        ("NaN", "invalid_json"),
        (
            '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","last":NaN}]}',
            "invalid_json",
        ),
        ("[" * 100_000, "invalid_json"),
        ("42", "not_an_object"),
        ('"heartbeat"', "not_an_object"),
        ("null", "not_an_object"),
        ('{"channel":"book","type":"snapshot","data":[]}', "unknown_channel"),
        ('{"channel":7}', "bad_field"),
        ('{"method":"add_order","success":true}', "unknown_method"),
        ('{"method":["subscribe"]}', "bad_field"),
        ('{"hello":"world"}', "unknown_message"),
        ('{"channel":"ticker","data":[]}', "missing_field"),
        ('{"channel":"ticker","type":"update"}', "missing_field"),
        ('{"channel":"ticker","type":"update","data":{"symbol":"BTC/USD"}}', "bad_field"),
        ('{"channel":"ticker","type":"partial","data":[]}', "unknown_type"),
        ('{"channel":"ticker","type":["update"],"data":[]}', "unknown_type"),
        ('{"channel":"status","type":"update","data":[]}', "bad_field"),
        ('{"channel":"status","type":"update","data":[{"api_version":"v2"}]}', "missing_field"),
        ('{"method":"subscribe","success":"yes"}', "bad_field"),
        ('{"method":"subscribe","success":true,"req_id":1}', "missing_field"),
        ('{"method":"pong","req_id":"101"}', "bad_field"),
        ('{"method":"pong","req_id":true}', "bad_field"),
    ],
)
def test_malformed_frames_raise_a_stable_kind(raw: str | bytes, kind: str) -> None:
    assert parse_error(raw).kind == kind


def _v1_frames() -> list[str]:
    """Frames received in the cryptofeed v1 capture (``<unix_ts>: <json>`` lines)."""
    frames = []
    for line in V1_CAPTURE:
        head, sep, body = line.partition(": ")
        if sep and " " not in head:  # skip "<url> <-> …" and "<url> <- …" lines
            frames.append(body)
    return frames


V1_FRAMES = _v1_frames()


def test_v1_capture_has_every_kind_of_v1_frame() -> None:
    assert len(V1_FRAMES) == 1 + 10 + 18 + 31  # systemStatus, subscriptionStatus, ticker, heartbeat


@pytest.mark.parametrize("raw", V1_FRAMES, ids=lambda raw: raw[:40])
def test_v1_frames_are_rejected_not_misparsed(raw: str) -> None:
    assert parse_error(raw).kind == "v1_frame"


# -- requests we send ------------------------------------------------------------------------


def test_subscribe_message() -> None:
    message = json.loads(subscribe_message(["BTC/USD", "ETH/USD"], 7))
    assert message == {
        "method": "subscribe",
        "params": {
            "channel": "ticker",
            "symbol": ["BTC/USD", "ETH/USD"],
            "event_trigger": "trades",
            "snapshot": True,
        },
        "req_id": 7,
    }


def test_ping_message() -> None:
    assert json.loads(ping_message(101)) == {"method": "ping", "req_id": 101}


# -- never anything but ParseError -----------------------------------------------------------


def json_values_of(*, finite: bool) -> st.SearchStrategy[object]:
    """Any JSON value; with ``finite=False`` floats may be NaN or Infinity (not JSON at all)."""
    leaves = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=not finite, allow_infinity=not finite)
        | st.text(max_size=20)
    )
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=10), children, max_size=4)
        ),
        max_leaves=20,
    )


json_values = json_values_of(finite=True)
any_json_values = json_values_of(finite=False)
symbols = st.sampled_from(["BTC/USD", "XBT/USD", "ETH/USD", "ABC/DEF", "", "btc usd"]) | json_values
numbers = st.decimals(allow_nan=False, allow_infinity=False).map(str) | json_values
timestamps = st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()) | json_values
entries = (
    st.fixed_dictionaries(
        {"symbol": symbols, "last": numbers},
        optional={
            "bid": numbers,
            "ask": numbers,
            "volume": numbers,
            "vwap": numbers,
            "timestamp": timestamps,
        },
    )
    | json_values
)
frames = st.fixed_dictionaries(
    {
        "channel": st.sampled_from(["ticker", "status", "heartbeat", "book"]) | json_values,
        "type": st.sampled_from(["snapshot", "update"]) | json_values,
        "data": st.lists(entries, max_size=4) | any_json_values,
    }
) | st.fixed_dictionaries(
    {
        "method": st.sampled_from(["subscribe", "pong", "ping"]) | json_values,
        "success": st.booleans() | json_values,
        "req_id": st.integers() | json_values,
        "symbol": symbols,
        "error": any_json_values,
        "result": st.fixed_dictionaries({"symbol": symbols}) | json_values,
    }
)


def _error_kinds(raw: str | bytes) -> set[str]:
    """The ParseError kinds ``raw`` produced (raised or reported); anything else propagates."""
    try:
        result = parse(raw)
    except ParseError as exc:
        return {exc.kind}
    return {error.kind for error in result.errors}


@settings(max_examples=300, deadline=None)
@given(st.text() | st.binary())
def test_arbitrary_text_only_raises_parse_error(raw: str | bytes) -> None:
    assert _error_kinds(raw) <= PARSE_ERROR_KINDS


@settings(max_examples=300, deadline=None)
@given(any_json_values | frames)
def test_arbitrary_json_only_raises_parse_error(value: object) -> None:
    assert _error_kinds(json.dumps(value)) <= PARSE_ERROR_KINDS


@settings(max_examples=200, deadline=None)
@given(st.lists(entries, max_size=5))
def test_every_ticker_entry_is_either_a_ticker_or_an_error(data: list[object]) -> None:
    result = parse(ticker_frame(*data))
    assert len(result.messages) + len(result.errors) == len(data)
