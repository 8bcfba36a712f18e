"""Golden tests for the sans-I/O CoinGecko parsers, over every recorded CoinGecko answer."""

from __future__ import annotations

import contextlib
import copy
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import ANY_JSON, RECEIVED, recorded_loader
from tokenpulse.domain.errors import ParseError
from tokenpulse.sources.coingecko.client import (
    key_header_for,
    parse_market_chart,
    parse_markets,
)
from tokenpulse.sources.coingecko.parser import error_message

TOP100 = "coins_markets_usd_2021-06-24_top100.json"
OLD_SHAPE = "coins_markets_usd_2018-08-28_1coin_pycoingecko.json"
BTC_CHART = "market_chart_bitcoin_usd_7d_hourly_2023-10-10.json"
LUNA_CHART = "market_chart_terra-luna_usd_max_daily_2022-07-06.json"
RATE_LIMIT = "error_http429_rate_limit_2022-09-29.json"

load = recorded_loader("coingecko")


def test_top100_markets_exact_digits_and_ids() -> None:
    result = parse_markets(load(TOP100), received_at=RECEIVED)

    assert result.bad_entries == []
    assert len(result.quotes) == 100
    btc, eth = result.quotes[0], result.quotes[1]
    assert btc.source == "coingecko"
    assert (btc.coingecko_id, btc.symbol, btc.name, btc.rank) == ("bitcoin", "BTC", "Bitcoin", 1)
    assert btc.cmc_id is None
    assert str(btc.price_usd) == "32797"  # an integer in the JSON, still exact
    assert btc.market_cap_usd == Decimal(613445605654)
    assert btc.volume_24h_usd == Decimal(34555888553)
    assert str(btc.circulating_supply) == "18741512.0"
    assert str(btc.max_supply) == "21000000.0"
    assert str(btc.percent_change_24h) == "-3.15532"
    assert str(eth.price_usd) == "1913.88"
    ranks = [quote.rank for quote in result.quotes]
    # ranks are kept as sent, even where the array order disagrees (computed minutes apart)
    assert sorted(rank for rank in ranks if rank is not None) == list(range(1, 101))
    assert ranks[20:23] == [21, 23, 22]


def test_top100_nulls_stay_none_and_unasked_windows_are_none() -> None:
    result = parse_markets(load(TOP100), received_at=RECEIVED)

    counts: Counter[str] = Counter()
    for quote in result.quotes:
        counts["max_supply"] += quote.max_supply is None
        counts["total_supply"] += quote.total_supply is None
        counts["1h"] += quote.percent_change_1h is None
        counts["7d"] += quote.percent_change_7d is None
    # the recording was made with price_change_percentage=1y: no 1h/7d fields at all
    assert counts == {"max_supply": 65, "total_supply": 9, "1h": 100, "7d": 100}
    eth = result.quotes[1]
    assert eth.max_supply is None


def test_top100_keeps_each_coins_own_last_updated_as_as_of() -> None:
    payload = load(TOP100)
    result = parse_markets(payload, received_at=RECEIVED)

    stamps = [quote.as_of for quote in result.quotes]
    assert all(stamp is not None and stamp.tzinfo is not None for stamp in stamps)
    assert min(s for s in stamps if s) == datetime(2021, 6, 24, 2, 57, 23, 417000, tzinfo=UTC)
    assert max(s for s in stamps if s) == datetime(2021, 6, 24, 3, 32, 25, 643000, tzinfo=UTC)
    assert all(quote.received_at == RECEIVED for quote in result.quotes)


def test_2018_shape_reads_string_encoded_numbers_digit_for_digit() -> None:
    result = parse_markets(load(OLD_SHAPE), received_at=RECEIVED)

    assert result.bad_entries == []
    (btc,) = result.quotes
    assert str(btc.circulating_supply) == "17236100.0"  # "17236100.0" in the JSON
    assert str(btc.percent_change_24h) == "4.46323343521924"  # also a string there
    assert str(btc.price_usd) == "7015.11823787848"
    assert str(btc.market_cap_usd) == "120934444800.105"
    assert btc.total_supply is None  # the 2018 shape has no total_supply
    # a stale last_updated is the provider's time: kept, never replaced by the receive time
    assert btc.as_of == datetime(2018, 8, 28, 12, 12, 53, 390000, tzinfo=UTC)
    assert btc.received_at == RECEIVED


def test_in_currency_24h_change_is_preferred_when_asked_for() -> None:
    payload = load(OLD_SHAPE)
    payload[0]["price_change_percentage_24h_in_currency"] = Decimal("4.5")
    payload[0]["price_change_percentage_1h_in_currency"] = Decimal("-0.25")
    payload[0]["price_change_percentage_7d_in_currency"] = None

    (btc,) = parse_markets(payload, received_at=RECEIVED).quotes

    assert (btc.percent_change_1h, btc.percent_change_24h) == (Decimal("-0.25"), Decimal("4.5"))
    assert btc.percent_change_7d is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, Decimal(0)),
        (None, None),
        ("", None),
        ("1.3954418147213393e-06", Decimal("1.3954418147213393e-06")),
    ],
)
def test_zero_null_empty_and_scientific_market_caps(
    value: object, expected: Decimal | None
) -> None:
    payload = load(OLD_SHAPE)
    payload[0]["market_cap"] = value

    (btc,) = parse_markets(payload, received_at=RECEIVED).quotes

    assert btc.market_cap_usd == expected


def test_malformed_coins_are_dropped_the_rest_kept() -> None:
    payload = load(TOP100)[:4]
    payload[1]["current_price"] = "n/a"
    del payload[2]["id"]
    payload[3]["market_cap_rank"] = True
    payload.append(copy.deepcopy(payload[0]))
    payload.append(["not", "an", "object"])

    result = parse_markets(payload, received_at=RECEIVED)

    assert [quote.coingecko_id for quote in result.quotes] == ["bitcoin"]
    assert [error.kind for error in result.bad_entries] == [
        "cg_bad_number",
        "cg_entry",
        "cg_bad_number",
        "cg_duplicate_id",
        "cg_entry",
    ]


def test_recorded_429_body_is_an_error_not_markets() -> None:
    payload = load(RATE_LIMIT)

    with pytest.raises(ParseError) as caught:
        parse_markets(payload, received_at=RECEIVED)

    assert caught.value.kind == "cg_error_body"
    message = error_message(payload)
    assert message is not None
    assert message.startswith("error_code 429: You've exceeded the Rate Limit.")


def test_bitcoin_7d_hourly_chart() -> None:
    chart = parse_market_chart(load(BTC_CHART))

    assert (len(chart.prices), len(chart.market_caps), len(chart.total_volumes)) == (169, 169, 169)
    assert chart.bad_rows == []
    first_at, first_price = chart.prices[0]
    assert first_at == datetime(2023, 10, 3, 19, 0, 22, 85000, tzinfo=UTC)  # 1696359622085 ms
    assert str(first_price) == "27309.802923311734"  # 17 significant digits, all kept
    assert chart.prices[-1][0] == datetime(2023, 10, 10, 18, 41, 43, tzinfo=UTC)
    assert str(chart.market_caps[-1][1]) == "533645952627.1285"
    times = [at for at, _ in chart.prices]
    assert times == sorted(times)


def test_terra_luna_daily_chart_keeps_zero_market_caps() -> None:
    chart = parse_market_chart(load(LUNA_CHART))

    assert len(chart.prices) == len(chart.market_caps) == len(chart.total_volumes) == 1157
    zeros = [at for at, cap in chart.market_caps if cap == 0]
    assert len(zeros) == 166
    assert chart.market_caps[0] == (datetime(2019, 5, 8, tzinfo=UTC), Decimal(0))
    assert all(isinstance(cap, Decimal) for _, cap in chart.market_caps)
    assert str(chart.prices[0][1]) == "3.2699771961339086"
    peak_at, peak = max(chart.total_volumes, key=lambda row: row[1])
    assert peak_at.date() == datetime(2022, 5, 12, tzinfo=UTC).date()
    assert peak > Decimal("16e9")
    assert chart.prices[-1][0].date() == datetime(2022, 7, 6, tzinfo=UTC).date()


def test_chart_null_values_skipped_bad_rows_reported() -> None:
    payload = {
        "prices": [[1557273600000, Decimal("3.27")], [1557360000000, None], [1, "x"], "junk"],
        "market_caps": [[1557273600000, 0], [Decimal("1557360000000.0"), "0.0"], [10**30, 1]],
    }

    chart = parse_market_chart(payload)

    assert chart.prices == [(datetime(2019, 5, 8, tzinfo=UTC), Decimal("3.27"))]
    assert chart.market_caps == [
        (datetime(2019, 5, 8, tzinfo=UTC), Decimal(0)),
        (datetime(2019, 5, 9, tzinfo=UTC), Decimal("0.0")),
    ]
    assert chart.total_volumes == []
    assert chart.skipped_nulls == 1
    assert [error.kind for error in chart.bad_rows] == [
        "cg_bad_number",
        "cg_chart_row",
        "cg_chart_row",
    ]


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"error": "coin not found"}, "cg_error_body"),  # CoinGecko's 404 body
        ([], "cg_chart_body"),
        ({"prices": {"a": 1}}, "cg_chart_body"),
    ],
)
def test_chart_whole_body_problems_raise(payload: object, kind: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_market_chart(payload)
    assert caught.value.kind == kind


@pytest.mark.parametrize(
    ("base_url", "header"),
    [
        ("https://api.coingecko.com", "x-cg-demo-api-key"),
        ("https://pro-api.coingecko.com", "x-cg-pro-api-key"),
        ("https://PRO-API.coingecko.com/api/v3", "x-cg-pro-api-key"),
        ("http://127.0.0.1:8080", "x-cg-demo-api-key"),
    ],
)
def test_key_header_follows_the_host(base_url: str, header: str) -> None:
    assert key_header_for(base_url) == header


# --------------------------------------------------------------------------- hypothesis

JSON = ANY_JSON
COIN_FIELDS = (
    "id",
    "symbol",
    "name",
    "current_price",
    "market_cap",
    "market_cap_rank",
    "total_volume",
    "circulating_supply",
    "total_supply",
    "max_supply",
    "price_change_percentage_24h",
    "price_change_percentage_1h_in_currency",
    "last_updated",
)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_any_json_raises_nothing_but_parse_error(payload: object) -> None:
    with contextlib.suppress(ParseError):
        parse_markets(payload, received_at=RECEIVED)
    with contextlib.suppress(ParseError):
        parse_market_chart(payload)
    with contextlib.suppress(ParseError):
        parse_market_chart({"prices": payload, "market_caps": [payload]})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(COIN_FIELDS), JSON), min_size=1, max_size=4))
def test_mutated_recorded_coins_never_raise(mutations: list[tuple[str, object]]) -> None:
    payload = load(OLD_SHAPE)
    for key, value in mutations:
        payload[0][key] = value

    result = parse_markets(payload, received_at=RECEIVED)

    assert len(result.quotes) + len(result.bad_entries) == 1
