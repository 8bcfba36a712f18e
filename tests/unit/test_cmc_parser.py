"""Golden tests for the sans-I/O CoinMarketCap parsers, over every recorded CMC answer."""

from __future__ import annotations

import contextlib
import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import ANY_JSON, RECEIVED, recorded_loader
from tokenpulse.domain.errors import ParseError
from tokenpulse.sources.coinmarketcap.client import (
    CmcStatus,
    parse_listings,
    parse_quotes_v2,
    parse_status,
)

TOP100 = "listings_latest_2021-08-31_top100.json"
THREE = "listings_latest_2019-02-08_3coins.json"
BY_ID = "quotes_latest_v2_by_id_btc_2022-06-16.json"
BY_SLUG = "quotes_latest_v2_by_slug_btc_2022-06-16.json"
BY_SYMBOL = "quotes_latest_v2_by_symbol_btc_2022-06-16.json"
KEY_MISSING = "error_http401_code1002_api_key_missing_2020-03-23.json"
PLAN = "error_http403_code1006_plan_not_authorized_2022-03-09.json"

load = recorded_loader("coinmarketcap")


def test_top100_listing_keeps_every_digit_and_field() -> None:
    result = parse_listings(load(TOP100), received_at=RECEIVED)

    assert result.bad_entries == []
    assert len(result.quotes) == 100
    btc = result.quotes[0]
    assert btc.source == "coinmarketcap"
    assert (btc.symbol, btc.name, btc.cmc_id, btc.cmc_slug, btc.rank) == (
        "BTC",
        "Bitcoin",
        1,
        "bitcoin",
        1,
    )
    assert str(btc.price_usd) == "47765.48645352477"
    assert str(btc.market_cap_usd) == "898114141453.8834"
    assert str(btc.volume_24h_usd) == "33513004644.55817"
    assert btc.circulating_supply == btc.total_supply == Decimal(18802575)
    assert btc.max_supply == Decimal(21000000)
    assert str(btc.percent_change_1h) == "-0.46474154"
    assert str(btc.percent_change_24h) == "0.14617244"
    assert str(btc.percent_change_7d) == "-1.57905816"
    assert btc.as_of == datetime(2021, 8, 31, 13, 36, 29, tzinfo=UTC)
    assert btc.received_at == RECEIVED
    assert btc.coingecko_id is None
    assert [quote.rank for quote in result.quotes] == list(range(1, 101))


def test_top100_listing_status_and_nulls() -> None:
    payload = load(TOP100)
    result = parse_listings(payload, received_at=RECEIVED)

    assert result.status == CmcStatus(
        error_code=0,
        error_message=None,
        credit_count=1,
        elapsed=36,
        timestamp=datetime(2021, 8, 31, 13, 40, 36, 153000, tzinfo=UTC),
        notice=None,
        total_count=6265,
    )
    assert result.status.ok
    # 38 coins have no max_supply in the recording: null stays None, nothing is invented
    assert sum(quote.max_supply is None for quote in result.quotes) == 38
    # last_updated varies 13:36:19-13:37:20 within one answer; each coin keeps its own
    stamps = sorted(quote.as_of for quote in result.quotes if quote.as_of is not None)
    assert stamps[0] == datetime(2021, 8, 31, 13, 36, 19, tzinfo=UTC)
    assert stamps[-1] == datetime(2021, 8, 31, 13, 37, 20, tzinfo=UTC)
    assert all(quote.symbol == quote.symbol.upper() for quote in result.quotes)


def test_2019_listing_without_notice_or_total_count() -> None:
    result = parse_listings(load(THREE), received_at=RECEIVED)

    assert result.status.notice is None
    assert result.status.total_count is None
    assert result.status.credit_count == 1
    assert [quote.symbol for quote in result.quotes] == ["BTC", "XRP", "ETH"]
    xrp = result.quotes[1]
    assert (xrp.cmc_id, xrp.cmc_slug) == (52, "ripple")
    assert str(xrp.price_usd) == "0.299183586734"
    assert str(xrp.market_cap_usd) == "12317149537.980232"
    assert xrp.total_supply == Decimal(99991704087)
    assert xrp.as_of == datetime(2019, 2, 8, 12, 28, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "price", "market_cap", "minute"),
    [
        (BY_ID, "21864.74930690019", "416935209390.64685", 18),
        (BY_SLUG, "21847.757042255787", "416611186767.83545", 22),
        (BY_SYMBOL, "21871.88352845583", "417071250655.8079", 10),
    ],
)
def test_v2_quotes_by_id_slug_and_symbol(
    name: str, price: str, market_cap: str, minute: int
) -> None:
    result = parse_quotes_v2(load(name), received_at=RECEIVED)

    assert result.bad_entries == []
    assert len(result.quotes) == 1
    btc = result.quotes[0]
    assert (btc.cmc_id, btc.symbol, btc.cmc_slug, btc.rank) == (1, "BTC", "bitcoin", 1)
    assert str(btc.price_usd) == price
    assert str(btc.market_cap_usd) == market_cap
    assert btc.circulating_supply == Decimal(19068831)
    assert btc.max_supply == Decimal(21000000)
    assert btc.as_of == datetime(2022, 6, 16, 7, minute, tzinfo=UTC)
    assert result.status.credit_count == 1
    assert result.status.notice is None


def test_v2_by_symbol_keeps_every_coin_that_shares_the_symbol() -> None:
    payload = load(BY_SYMBOL)
    impostor = copy.deepcopy(payload["data"]["BTC"][0])
    impostor.update(id=99999, name="Bitcoin Impostor", slug="bitcoin-impostor", cmc_rank=None)
    impostor["quote"]["USD"]["market_cap"] = 0
    payload["data"]["BTC"].append(impostor)

    result = parse_quotes_v2(payload, received_at=RECEIVED)

    assert [(quote.cmc_id, quote.name) for quote in result.quotes] == [
        (1, "Bitcoin"),
        (99999, "Bitcoin Impostor"),
    ]
    assert result.quotes[1].rank is None
    assert result.quotes[1].market_cap_usd == Decimal(0)


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        (KEY_MISSING, 1002, "API key missing."),
        (PLAN, 1006, "Your API Key subscription plan doesn't support this endpoint."),
    ],
)
def test_recorded_error_bodies(name: str, code: int, message: str) -> None:
    payload = load(name)

    status = parse_status(payload)
    listing = parse_listings(payload, received_at=RECEIVED)
    quotes = parse_quotes_v2(payload, received_at=RECEIVED)

    assert (status.error_code, status.error_message, status.credit_count) == (code, message, 0)
    assert not status.ok
    assert status.elapsed == 0
    assert listing.quotes == quotes.quotes == []
    assert listing.status == quotes.status == status


def entry_with(**quote_fields: object) -> dict[str, Any]:
    payload = load(THREE)
    entry: dict[str, Any] = payload["data"][0]
    for key, value in quote_fields.items():
        if value is _ABSENT:
            entry["quote"]["USD"].pop(key)
        else:
            entry["quote"]["USD"][key] = value
    return {"status": payload["status"], "data": [entry]}


_ABSENT = object()


@pytest.mark.parametrize(
    ("market_cap", "expected"),
    [
        (0, Decimal(0)),  # zero stays zero: the domain derives or flags it
        (Decimal("0.0"), Decimal("0.0")),
        (None, None),
        (_ABSENT, None),
        ("60532447523.518745", Decimal("60532447523.518745")),  # a string-encoded number
    ],
)
def test_zero_missing_and_string_market_caps(market_cap: object, expected: Decimal | None) -> None:
    result = parse_listings(entry_with(market_cap=market_cap), received_at=RECEIVED)

    assert result.bad_entries == []
    assert result.quotes[0].market_cap_usd == expected
    if expected is not None:
        assert str(result.quotes[0].market_cap_usd) == str(expected)


def test_null_price_and_volume_are_kept_as_none() -> None:
    result = parse_listings(entry_with(price=None, volume_24h=None), received_at=RECEIVED)

    assert result.quotes[0].price_usd is None
    assert result.quotes[0].volume_24h_usd is None


def test_a_malformed_coin_is_dropped_and_the_others_kept() -> None:
    payload = load(THREE)
    payload["data"][1]["quote"]["USD"]["price"] = "not a number"
    del payload["data"][2]["quote"]["USD"]
    payload["data"].append(copy.deepcopy(payload["data"][0]))  # BTC again
    payload["data"].append({"id": True, "symbol": "X", "name": "x", "quote": {"USD": {}}})
    payload["data"].append("garbage")

    result = parse_listings(payload, received_at=RECEIVED)

    assert [quote.symbol for quote in result.quotes] == ["BTC"]
    assert [error.kind for error in result.bad_entries] == [
        "cmc_bad_number",
        "cmc_entry",
        "cmc_duplicate_id",
        "cmc_bad_number",
        "cmc_entry",
    ]
    assert "not a number" in str(result.bad_entries[0])


def test_quote_last_updated_falls_back_to_the_coin_last_updated() -> None:
    result = parse_listings(entry_with(last_updated=_ABSENT), received_at=RECEIVED)

    assert result.quotes[0].as_of == datetime(2019, 2, 8, 12, 28, 26, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ([], "cmc_body"),
        ({"data": []}, "cmc_status"),
        ({"status": "ok"}, "cmc_status"),
        ({"status": {"error_code": "x"}}, "cmc_status"),
        ({"status": {"error_code": 0, "credit_count": 1}, "data": {"1": {}}}, "cmc_data"),
    ],
)
def test_whole_body_problems_raise(payload: object, kind: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_listings(payload, received_at=RECEIVED)
    assert caught.value.kind == kind


def test_quotes_data_must_be_an_object() -> None:
    payload = {"status": {"error_code": 0, "credit_count": 1}, "data": []}
    with pytest.raises(ParseError) as caught:
        parse_quotes_v2(payload, received_at=RECEIVED)
    assert caught.value.kind == "cmc_data"


def test_informational_status_fields_never_fail_a_body() -> None:
    status = parse_status(
        {"status": {"error_code": 0, "credit_count": 2, "timestamp": "yesterday", "elapsed": "x"}}
    )
    assert (status.error_code, status.credit_count) == (0, 2)
    assert status.timestamp is None
    assert status.elapsed is None


# --------------------------------------------------------------------------- hypothesis

JSON = ANY_JSON
FIELDS = (
    "id",
    "symbol",
    "name",
    "slug",
    "cmc_rank",
    "circulating_supply",
    "total_supply",
    "max_supply",
    "last_updated",
    "quote",
)
QUOTE_FIELDS = (
    "price",
    "market_cap",
    "volume_24h",
    "percent_change_1h",
    "percent_change_24h",
    "percent_change_7d",
    "last_updated",
)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_any_json_raises_nothing_but_parse_error(payload: object) -> None:
    for parse in (parse_listings, parse_quotes_v2):
        with contextlib.suppress(ParseError):
            parse(payload, received_at=RECEIVED)
    with contextlib.suppress(ParseError):
        parse_status({"status": payload})


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(FIELDS + QUOTE_FIELDS), st.booleans(), JSON),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_recorded_coins_never_raise(mutations: list[tuple[str, bool, object]]) -> None:
    payload = load(THREE)
    entry = payload["data"][0]
    usd = entry["quote"]["USD"]
    for key, in_quote, value in mutations:
        (usd if in_quote and key in QUOTE_FIELDS else entry)[key] = value

    result = parse_listings(payload, received_at=RECEIVED)

    assert len(result.quotes) + len(result.bad_entries) == 3
