"""Pair parsing and every provider alias, resolved in one place."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenpulse.data import kraken_pair_registry
from tokenpulse.domain.errors import InvalidParameter, UnsupportedPair
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.pairs import (
    Pair,
    parse_pair_list,
    parse_quote_equivalents,
    venue_symbol,
    venue_symbols,
)
from tokenpulse.wire.numbers import market_number, market_string

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
    ("text", "number", "string"),
    [
        ("52609.60000", 52609.6, "52609.60000"),
        ("0.10035", 0.10035, "0.10035"),
        ("68923.4", 68923.4, "68923.4"),
        ("1.3954418147213393e-06", 1.3954418147213393e-06, "0.0000013954418147213393"),
        ("123456789012345", 123456789012345.0, "123456789012345"),
        ("1234567890.123456789", 1234567890.1234567, "1234567890.123456789"),
        ("0.5141886150364228", 0.5141886150364228, "0.5141886150364228"),
        ("1E-400", 0.0, "1E-400"),  # below float64: the nearest float64 is 0.0
        ("1E+400", None, "1E+400"),  # above float64: no float64 holds it
    ],
)
def test_market_values_are_numbers_or_exact_strings(
    text: str, number: float | None, string: str
) -> None:
    value = parse_decimal(text, field="x")
    assert market_number(value) == number
    assert market_string(value) == string
    assert Decimal(string) == value


@given(
    st.decimals(
        allow_nan=False,
        allow_infinity=False,
        places=8,
        min_value=Decimal("-1e12"),
        max_value=Decimal("1e12"),
    )
)
def test_market_forms_keep_the_value(value: Decimal) -> None:
    number = market_number(value)
    assert isinstance(number, float)
    assert number == float(value)  # the float64 nearest the decimal
    text = market_string(value)
    assert text is not None
    assert Decimal(text) == value  # the exact digits


@pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", "", True, None, [1]])
def test_bad_numbers_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="x"):
        parse_decimal(bad, field="x")


# -- other venues ----------------------------------------------------------------------------


def test_venue_spellings() -> None:
    assert venue_symbol("coinbase", Pair("BTC", "USD")) == "BTC-USD"
    assert venue_symbol("binance", Pair("BTC", "USDT")) == "BTCUSDT"
    with pytest.raises(ValueError, match="no symbol mapping"):
        venue_symbol("nosuch", Pair("BTC", "USD"))


def test_usdt_is_not_usd_unless_configured() -> None:
    btc_usd, eth_eur = Pair("BTC", "USD"), Pair("ETH", "EUR")
    plain = venue_symbols("binance", [btc_usd, eth_eur], listed=None, equivalents={})
    assert plain == {eth_eur: "ETHEUR"}  # Binance has no USD markets
    usdt = parse_quote_equivalents(["usdt=usd"])
    assert usdt == {"USDT": "USD"}
    assert venue_symbols("binance", [btc_usd], listed=None, equivalents=usdt) == {
        btc_usd: "BTCUSDT"
    }
    listed = {btc_usd, Pair("SOL", "USDT")}
    sol = Pair("SOL", "USD")
    assert venue_symbols("coinbase", [btc_usd, sol], listed=listed, equivalents={}) == {
        btc_usd: "BTC-USD"
    }
    assert venue_symbols("coinbase", [sol], listed=listed, equivalents=usdt) == {sol: "SOL-USDT"}


@pytest.mark.parametrize("item", ["USDT", "USDT=USDT", "=USD", "US DT=USD", "USDT=USD=EUR"])
def test_bad_quote_equivalents_are_refused(item: str) -> None:
    with pytest.raises(ValueError, match="ALIAS=QUOTE"):
        parse_quote_equivalents([item])
