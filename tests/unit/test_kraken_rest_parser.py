"""Golden tests for the sans-I/O Kraken REST Ticker parser, over recorded responses."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenpulse.data import data_path, kraken_pair_registry
from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.sources.kraken.rest_parser import (
    RestTickerResult,
    is_retryable_kraken_error,
    parse_ticker_response,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kraken" / "rest"
RECEIVED = datetime(2026, 2, 14, 12, 0, 0, tzinfo=UTC)
BTC_USD = Pair("BTC", "USD")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def parse(payload: object) -> RestTickerResult:
    return parse_ticker_response(
        payload, registry=kraken_pair_registry(), source="kraken_rest", received_at=RECEIVED
    )


def test_docs_example_maps_every_field_with_exact_digits() -> None:
    result = parse(load("rest_ticker_xxbtzusd_docs_example.json"))

    assert result.errors == []
    assert result.bad_entries == []
    [ticker] = result.tickers
    assert ticker.pair == BTC_USD
    assert str(ticker.last) == "3537.50000"  # c[0], trailing zeros kept
    assert str(ticker.bid) == "3537.40000"  # b[0]
    assert str(ticker.ask) == "3537.50000"  # a[0]
    assert str(ticker.volume_24h) == "4009.69918350"  # v[1], last 24 hours, not today's
    assert str(ticker.vwap) == "3535.79747"  # p[1]
    assert ticker.as_of is None  # Ticker carries no exchange time
    assert ticker.received_at == RECEIVED
    assert ticker.source == "kraken_rest"


def test_xbtusdt_capture_keeps_exact_digits() -> None:
    result = parse(load("rest_ticker_xbtusdt_2024-03-13_ccxt.json"))

    [ticker] = result.tickers
    assert ticker.pair == Pair("BTC", "USDT")
    assert ticker.last == Decimal("73380.60000")
    assert ticker.last.as_tuple() == Decimal("73380.60000").as_tuple()
    assert ticker.bid == Decimal("73380.60000")
    assert ticker.ask == Decimal("73380.70000")
    assert ticker.volume_24h == Decimal("598.03698452")
    assert ticker.vwap == Decimal("71501.57520")


def test_16_pair_capture_keeps_result_next_to_error() -> None:
    result = parse(load("rest_ticker_16pairs_2026-02-14_a.json"))

    assert result.errors == ["EQuery:Unknown asset pair"]
    by_pair = result.by_pair()
    newer = {Pair(b, "USD") for b in ("AVAX", "BNB", "INJ", "NEAR", "SOL", "SUI")}
    assert set(by_pair) == {
        Pair("ADA", "USD"),
        Pair("ATOM", "USD"),
        Pair("DOT", "USD"),
        Pair("ETH", "USD"),
        Pair("LINK", "USD"),
        Pair("LTC", "USD"),
        BTC_USD,
        Pair("DOGE", "USD"),
        Pair("XLM", "USD"),
        Pair("XRP", "USD"),
        *newer,  # the bundled list knows this capture's pairs (SOL/USD validates offline)
    }
    assert result.bad_entries == []
    assert by_pair[BTC_USD].last == Decimal("69767.60000")
    assert str(by_pair[Pair("ETH", "USD")].last) == "2084.53000"  # XETHZUSD
    assert str(by_pair[Pair("DOGE", "USD")].last) == "0.108361200"  # XDGUSD: XDG -> DOGE
    assert str(by_pair[Pair("XRP", "USD")].vwap) == "1.44505041"
    # With the 2021 AssetPairs list alone, the newer pairs are dropped entries, not a crash.
    old_list = json.loads(data_path("kraken_assetpairs.json").read_text(encoding="utf-8"))
    older = parse_ticker_response(
        load("rest_ticker_16pairs_2026-02-14_a.json"),
        registry=PairRegistry.from_kraken_asset_pairs(old_list),
        source="kraken_rest",
        received_at=RECEIVED,
    )
    assert {error.kind for error in older.bad_entries} == {"rest_unknown_pair"}
    assert len(older.bad_entries) == len(newer)
    assert any("'SUIUSD'" in str(error) for error in older.bad_entries)


def test_error_without_result_is_not_a_parse_error() -> None:
    result = parse({"error": ["EQuery:Unknown asset pair"]})
    assert result == RestTickerResult(errors=["EQuery:Unknown asset pair"])


def test_empty_result_is_fine() -> None:
    assert parse({"error": [], "result": {}}) == RestTickerResult()


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ([], "rest_body"),
        ("EService:Unavailable", "rest_body"),
        (None, "rest_body"),
        ({"error": "EService:Unavailable", "result": {}}, "rest_error_field"),
        ({"error": [1], "result": {}}, "rest_error_field"),
        ({"error": []}, "rest_no_result"),
        ({}, "rest_no_result"),
        ({"error": [], "result": []}, "rest_result_field"),
    ],
)
def test_malformed_body_raises_parse_error(payload: object, kind: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(payload)
    assert caught.value.kind == kind


def _with_btc(entry: object) -> dict[str, Any]:
    good = load("rest_ticker_xbtusdt_2024-03-13_ccxt.json")["result"]["XBTUSDT"]
    return {"error": [], "result": {"XBTUSDT": good, "XXBTZUSD": entry}}


def _entry(**changes: object) -> dict[str, Any]:
    entry: dict[str, Any] = copy.deepcopy(
        load("rest_ticker_xxbtzusd_docs_example.json")["result"]["XXBTZUSD"]
    )
    for key, value in changes.items():
        if value is None:
            del entry[key]
        else:
            entry[key] = value
    return entry


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        ("3537.5", "rest_entry"),
        (_entry(c=None), "rest_entry"),
        (_entry(c=[]), "rest_entry"),
        (_entry(c="3537.5"), "rest_entry"),
        (_entry(c=["abc", "1"]), "rest_bad_number"),
        (_entry(c=["NaN", "1"]), "rest_bad_number"),
        (_entry(c=[True, "1"]), "rest_bad_number"),
        (_entry(c=["0.00000", "1"]), "rest_bad_price"),
        (_entry(c=["-1.5", "1"]), "rest_bad_number"),
        (_entry(b=["-3537.4", "1", "1.000"]), "rest_bad_number"),
        (_entry(v=["2945.40515179"]), "rest_entry"),
        (_entry(p={"today": "1"}), "rest_entry"),
    ],
)
def test_malformed_entry_is_dropped_and_the_others_kept(entry: object, kind: str) -> None:
    result = parse(_with_btc(entry))

    assert [ticker.pair for ticker in result.tickers] == [Pair("BTC", "USDT")]
    [error] = result.bad_entries
    assert error.kind == kind
    assert "XXBTZUSD" in str(error)


def test_optional_arrays_may_be_absent() -> None:
    result = parse({"error": [], "result": {"XXBTZUSD": {"c": ["3537.50000", "0.25"]}}})
    [ticker] = result.tickers
    assert ticker.last == Decimal("3537.50000")
    assert (ticker.bid, ticker.ask, ticker.volume_24h, ticker.vwap) == (None, None, None, None)


def test_numbers_sent_as_json_numbers_keep_their_digits() -> None:
    result = parse(json.loads('{"error":[],"result":{"XXBTZUSD":{"c":[3537.5,"1"]}}}'))
    assert result.tickers[0].last == Decimal("3537.5")


def test_a_pair_listed_twice_is_kept_once() -> None:
    entry = _entry()
    result = parse({"error": [], "result": {"XXBTZUSD": entry, "XBTUSD": entry}})
    assert len(result.tickers) == 1
    assert [error.kind for error in result.bad_entries] == ["rest_duplicate_pair"]


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        ("EAPI:Rate limit exceeded", True),
        ("EService:Unavailable", True),
        ("EService:Busy", True),
        ("EGeneral:Internal error", True),
        ("EQuery:Unknown asset pair", False),
        ("EGeneral:Invalid arguments", False),
        ("EGeneral:Temporary lockout", False),
    ],
)
def test_retryable_kraken_errors(error: str, retryable: bool) -> None:
    assert is_retryable_kraken_error(error) is retryable


# -- property: anything at all in, a result or a ParseError out --------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["3537.5", "0", "-1", "1e400", "NaN", "Infinity", "XXBTZUSD", "abc"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["a", "b", "c", "v", "p", "error", "result", "XXBTZUSD", "x"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


def _check(payload: object) -> None:
    try:
        result = parse(payload)
    except ParseError:
        return
    for ticker in result.tickers:
        assert ticker.last > 0
        assert ticker.last.is_finite()
    assert all(isinstance(error, str) for error in result.errors)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_gives_a_result_or_a_parse_error(payload: object) -> None:
    _check(payload)


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(["a", "b", "c", "v", "p", "t", "o"]),
    value=json_values,
    errors=st.lists(st.text(max_size=30), max_size=2),
)
def test_mutated_recorded_entry_gives_a_result_or_a_parse_error(
    field: str, value: object, errors: list[str]
) -> None:
    payload = load("rest_ticker_16pairs_2026-02-14_a.json")
    payload["error"] = errors
    payload["result"]["XXBTZUSD"][field] = value
    _check(payload)
