"""Pair parsing and every provider alias, resolved in one place."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenpulse.data import kraken_pair_registry
from tokenpulse.domain.errors import InvalidParameter, UnsupportedPair
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.pairs import Pair, parse_pair_list
from tokenpulse.wire.numbers import json_number

REGISTRY = kraken_pair_registry()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BTC/USD", "BTC/USD"),
        (" btc/usd ", "BTC/USD"),
        ("btc-usd", "BTC/USD"),
        ("btcusd", "BTC/USD"),
        ("XBT/USD", "BTC/USD"),
        ("XBTUSD", "BTC/USD"),
        ("XXBTZUSD", "BTC/USD"),
        ("XETHZUSD", "ETH/USD"),
        ("XDG/USD", "DOGE/USD"),
        ("XDGUSD", "DOGE/USD"),
        ("DOGE/USD", "DOGE/USD"),
        ("BTCUSDT", "BTC/USDT"),
        ("XBTUSDT", "BTC/USDT"),
        ("xrp_usd", "XRP/USD"),
    ],
)
def test_aliases_resolve_to_the_canonical_pair(text: str, expected: str) -> None:
    assert str(REGISTRY.resolve(text)) == expected


@pytest.mark.parametrize("text", ["", "   ", "BTC/", "/USD", "BTC/USD/EUR", "BTC$USD", "b t c"])
def test_malformed_pairs_are_invalid_parameters(text: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        REGISTRY.resolve(text)
    assert caught.value.code in {"INVALID_PARAMETER", "UNSUPPORTED_PAIR"}
    assert caught.value.details["parameter"] == "pair"


@pytest.mark.parametrize("text", ["DOGE/MOON", "FOOBAR", "ABC-DEF"])
def test_well_formed_unknown_pairs_are_unsupported(text: str) -> None:
    with pytest.raises(UnsupportedPair):
        REGISTRY.resolve(text)


def test_kraken_names_for_a_pair() -> None:
    info = REGISTRY.info(Pair("BTC", "USD"))
    assert (info.rest_key, info.altname, info.wsname, info.ws_v2_symbol) == (
        "XXBTZUSD",
        "XBTUSD",
        "XBT/USD",
        "BTC/USD",
    )
    assert REGISTRY.by_rest_key("XXBTZUSD") == Pair("BTC", "USD")
    assert REGISTRY.by_rest_key("XDGUSD") == Pair("DOGE", "USD")


def test_dark_pool_pairs_are_not_known() -> None:
    assert all(".d" not in info.rest_key for info in REGISTRY.kraken.values())


def test_pair_lists_keep_order_and_drop_duplicates() -> None:
    assert [str(p) for p in parse_pair_list("eth/usd, XBTUSD,btc-usd,,ETH/USD", REGISTRY)] == [
        "ETH/USD",
        "BTC/USD",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("52609.60000", 52609.6),
        ("0.10035", 0.10035),
        ("68923.4", 68923.4),
        ("1.3954418147213393e-06", "0.0000013954418147213393"),
        ("123456789012345", 123456789012345.0),
        ("1234567890.123456789", "1234567890.123456789"),
        ("1E-400", "0." + "0" * 399 + "1"),  # below float64: would read as 0.0
        ("1E+400", "1" + "0" * 400),  # above float64: would read as Infinity
    ],
)
def test_numbers_come_out_digit_for_digit(text: str, expected: float | str) -> None:
    assert json_number(parse_decimal(text, field="x")) == expected


@given(
    st.decimals(
        allow_nan=False,
        allow_infinity=False,
        places=8,
        min_value=Decimal("-1e12"),
        max_value=Decimal("1e12"),
    )
)
def test_json_number_never_changes_the_value(value: Decimal) -> None:
    out = json_number(value)
    assert Decimal(str(out) if isinstance(out, str) else repr(out)) == value


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", "", True, None, [1]])
def test_bad_numbers_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="x"):
        parse_decimal(bad, field="x")
