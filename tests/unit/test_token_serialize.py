"""Token snapshots and trends as served JSON (SPEC §4.3, §4.6): every field, exact digits."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokenpulse.domain.errors import InvalidParameter
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.quality import build_snapshot
from tokenpulse.domain.time import parse_iso
from tokenpulse.domain.tokens import (
    FLAG_MARKET_CAP_DERIVED,
    FLAG_PRICE_OUTLIER,
    FLAG_STALE,
    TokenIdentity,
    TokenQuote,
    TokenSnapshot,
    Trend,
)
from tokenpulse.domain.trends import compute_trends
from tokenpulse.domain.velocity import VelocityPolicy
from tokenpulse.wire.tokens import (
    BASIC_FIELDS,
    snapshot_to_json,
    trend_to_json,
    trends_to_json,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
POLICY = VelocityPolicy()

FULL_FIELDS = {
    "id",
    "symbol",
    "name",
    "cmc_id",
    "coingecko_id",
    "rank",
    "price_usd",
    "market_cap_usd",
    "volume_24h_usd",
    "circulating_supply",
    "total_supply",
    "max_supply",
    "percent_change_1h",
    "percent_change_24h",
    "percent_change_7d",
    "velocity",
    "source",
    "as_of",
    "received_at",
    "age_ms",
    "stale",
    "quality",
}


def _load(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))


def D(value: object) -> Decimal:
    return parse_decimal(value, field="test")


def _optional(value: object) -> Decimal | None:
    return None if value is None else D(value)


# CMC listings/latest 2021-08-31, XRP (CMC id 52), and CoinGecko's 2021-06-24 XRP row.
XRP_CMC = next(
    row
    for row in _load("coinmarketcap/listings_latest_2021-08-31_top100.json")["data"]
    if row["slug"] == "xrp"
)
XRP_CG = next(
    row
    for row in _load("coingecko/coins_markets_usd_2021-06-24_top100.json")
    if row["id"] == "ripple"
)
XRP = TokenIdentity(id="xrp", symbol="XRP", name="XRP", cmc_id=52, coingecko_id="ripple")
RECEIVED = datetime(2021, 8, 31, 13, 37, 50, 123456, tzinfo=UTC)


def xrp_quote() -> TokenQuote:
    usd = XRP_CMC["quote"]["USD"]
    return TokenQuote(
        source="coinmarketcap",
        symbol="XRP",
        name="XRP",
        received_at=RECEIVED,
        cmc_id=52,
        cmc_slug="xrp",
        rank=XRP_CMC["cmc_rank"],
        price_usd=D(usd["price"]),
        market_cap_usd=D(usd["market_cap"]),
        volume_24h_usd=D(usd["volume_24h"]),
        circulating_supply=D(XRP_CMC["circulating_supply"]),
        total_supply=D(XRP_CMC["total_supply"]),
        max_supply=_optional(XRP_CMC["max_supply"]),
        percent_change_1h=D(usd["percent_change_1h"]),
        percent_change_24h=D(usd["percent_change_24h"]),
        percent_change_7d=D(usd["percent_change_7d"]),
        as_of=parse_iso(usd["last_updated"]),
    )


def xrp_snapshot(**changes: Any) -> TokenSnapshot:
    return build_snapshot(XRP, replace(xrp_quote(), **changes), POLICY, now=RECEIVED)


def test_full_snapshot_has_every_field_digit_for_digit() -> None:
    now = RECEIVED + timedelta(milliseconds=1500)
    body = snapshot_to_json(xrp_snapshot(), now=now, stale_after=60)
    assert set(body) == FULL_FIELDS
    assert body["id"] == "xrp"
    assert body["symbol"] == "XRP"
    assert body["name"] == "XRP"
    assert body["cmc_id"] == 52
    assert body["coingecko_id"] == "ripple"
    assert body["rank"] == 6
    # Recorded numbers of at most 15 significant digits come back as the same JSON numbers ...
    assert body["price_usd"] == 1.14493621186244
    assert body["circulating_supply"] == 46513604835
    assert body["max_supply"] == 100000000000
    assert body["percent_change_1h"] == 0.0189831
    assert body["percent_change_7d"] == -4.92034781
    # ... and 16-digit ones are numbers too: the float64 nearest the decimal (SPEC §4.6).
    assert body["market_cap_usd"] == 53255110519.85137
    assert body["volume_24h_usd"] == 4068951293.905379
    # velocity = 4068951293.905379 / 53255110519.85137, to 12 significant digits.
    assert body["velocity"] == 0.076404898125
    assert body["source"] == "coinmarketcap"
    assert body["as_of"] == "2021-08-31T13:37:05.000Z"
    assert body["received_at"] == "2021-08-31T13:37:50.123Z"
    assert body["age_ms"] == 1500
    assert body["stale"] is False
    assert body["quality"] == {
        "flags": [],
        "market_cap_used": body["market_cap_usd"],
        "market_cap_derived": False,
    }
    json.dumps(body, allow_nan=False)  # strict JSON


def test_provider_numbers_round_trip_exactly() -> None:
    """numbers=string gives back the provider's decimal, digit for digit."""
    body = snapshot_to_json(xrp_snapshot(), now=RECEIVED, stale_after=60, strings=True)
    usd = XRP_CMC["quote"]["USD"]
    for key, recorded in [
        ("price_usd", usd["price"]),
        ("market_cap_usd", usd["market_cap"]),
        ("volume_24h_usd", usd["volume_24h"]),
        ("total_supply", XRP_CMC["total_supply"]),
    ]:
        assert D(json.loads(json.dumps(body[key]))) == D(recorded), key


def test_a_value_with_more_than_15_digits_is_a_number_or_on_request_its_exact_string() -> None:
    # CoinGecko terra-luna market_chart, 2019-05-08: price 3.2699771961339086 (17 digits).
    snapshot = xrp_snapshot(price_usd=D("3.2699771961339086"))
    body = snapshot_to_json(snapshot, now=RECEIVED, stale_after=60)
    assert body["price_usd"] == 3.2699771961339086
    exact = snapshot_to_json(snapshot, now=RECEIVED, stale_after=60, strings=True)
    assert exact["price_usd"] == "3.2699771961339086"
    assert exact["market_cap_usd"] == "53255110519.85137"
    assert exact["quality"]["market_cap_used"] == "53255110519.85137"
    assert exact["velocity"] == body["velocity"] == 0.076404898125  # computed: a number


def test_velocity_and_derived_market_cap_are_json_numbers() -> None:
    # The CoinGecko XRP row without market cap: derived from price × circulating supply.
    snapshot = xrp_snapshot(
        market_cap_usd=None,
        price_usd=D(XRP_CG["current_price"]),
        circulating_supply=D(XRP_CG["circulating_supply"]),
        volume_24h_usd=D(XRP_CG["total_volume"]),
    )
    body = snapshot_to_json(snapshot, now=RECEIVED, stale_after=60)
    assert body["market_cap_usd"] is None
    assert body["quality"]["market_cap_derived"] is True
    assert body["quality"]["flags"] == [FLAG_MARKET_CAP_DERIVED]
    assert isinstance(body["quality"]["market_cap_used"], float)
    assert isinstance(body["velocity"], float)
    assert body["velocity"] == pytest.approx(3636634276 / (0.628993 * 46244517593.0), rel=1e-12)


def test_stale_is_judged_when_served_not_when_built() -> None:
    snapshot = xrp_snapshot()
    assert FLAG_STALE not in snapshot.flags
    later = snapshot_to_json(snapshot, now=RECEIVED + timedelta(seconds=61), stale_after=60)
    assert later["stale"] is True
    assert later["quality"]["flags"] == [FLAG_STALE]
    assert later["age_ms"] == 61000
    # And a snapshot built stale but served within the limit again (a bigger stale_after).
    old = replace(snapshot, flags=snapshot.flags | {FLAG_STALE})
    fresh = snapshot_to_json(old, now=RECEIVED, stale_after=60)
    assert fresh["stale"] is False
    assert fresh["quality"]["flags"] == []


def test_flags_are_sorted() -> None:
    snapshot = replace(
        xrp_snapshot(), flags=frozenset({FLAG_PRICE_OUTLIER, FLAG_MARKET_CAP_DERIVED})
    )
    body = snapshot_to_json(snapshot, now=RECEIVED + timedelta(hours=1), stale_after=60)
    assert body["quality"]["flags"] == sorted(
        [FLAG_PRICE_OUTLIER, FLAG_MARKET_CAP_DERIVED, FLAG_STALE]
    )


def test_basic_detail_is_the_small_subset() -> None:
    body = snapshot_to_json(xrp_snapshot(), now=RECEIVED, stale_after=60, detail="basic")
    assert tuple(body) == BASIC_FIELDS
    full = snapshot_to_json(xrp_snapshot(), now=RECEIVED, stale_after=60)
    assert {key: full[key] for key in BASIC_FIELDS} == body


def test_unknown_detail_is_an_invalid_parameter() -> None:
    with pytest.raises(InvalidParameter) as caught:
        snapshot_to_json(xrp_snapshot(), now=RECEIVED, stale_after=60, detail="everything")
    assert caught.value.details["parameter"] == "detail"


def test_missing_values_and_times_are_null() -> None:
    snapshot = xrp_snapshot(
        as_of=None, max_supply=None, percent_change_1h=None, volume_24h_usd=None
    )
    body = snapshot_to_json(snapshot, now=RECEIVED, stale_after=60)
    assert body["as_of"] is None
    assert body["max_supply"] is None
    assert body["percent_change_1h"] is None
    assert body["velocity"] is None
    assert body["quality"]["flags"] == ["volume_unavailable"]


def test_a_clock_behind_the_receive_time_gives_age_zero() -> None:
    body = snapshot_to_json(xrp_snapshot(), now=RECEIVED - timedelta(seconds=2), stale_after=60)
    assert body["age_ms"] == 0
    assert body["stale"] is False


@given(
    st.sampled_from(
        [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("sNaN"), None]
    )
)
def test_non_finite_numbers_never_reach_json(value: Decimal | None) -> None:
    snapshot = replace(
        xrp_snapshot(),
        velocity=value,
        market_cap_used=value,
        quote=replace(xrp_quote(), price_usd=value, market_cap_usd=value),
    )
    body = snapshot_to_json(snapshot, now=RECEIVED, stale_after=60)
    assert body["velocity"] is None
    assert body["price_usd"] is None
    assert body["quality"]["market_cap_used"] is None
    json.dumps(body, allow_nan=False)


# -- trends ---------------------------------------------------------------------------------

NOW = datetime(2023, 10, 10, 18, 0, tzinfo=UTC)


def test_trend_to_json() -> None:
    trend = Trend(
        window="1h",
        change_pct=Decimal(25),
        direction="increasing",
        mean=Decimal("0.25"),
        reference_velocity=Decimal("0.2"),
        reference_at=NOW - timedelta(hours=1),
    )
    assert trend_to_json(trend) == {
        "change_pct": 25.0,
        "direction": "increasing",
        "mean": 0.25,
        "reference_velocity": 0.2,
        "reference_at": "2023-10-10T17:00:00.000Z",
        "reason": None,
    }


def test_a_missing_trend_has_the_same_keys_and_a_reason() -> None:
    missing = trend_to_json(None, "insufficient_history")
    assert missing == {
        "change_pct": None,
        "direction": None,
        "mean": None,
        "reference_velocity": None,
        "reference_at": None,
        "reason": "insufficient_history",
    }
    assert trend_to_json(None) == missing


def test_trends_to_json_gives_every_window_its_reason() -> None:
    history = [(NOW - timedelta(hours=4), Decimal("0.5"))]
    trends = compute_trends(Decimal("0.4"), history, now=NOW)
    body = trends_to_json(trends, Decimal("0.4"))
    assert list(body) == ["1h", "4h", "12h", "7d"]
    assert body["4h"]["change_pct"] == -20.0
    assert body["4h"]["direction"] == "decreasing"
    assert body["1h"]["reason"] == "insufficient_history"
    unavailable = trends_to_json(compute_trends(None, history, now=NOW), None)
    assert {entry["reason"] for entry in unavailable.values()} == {"velocity_unavailable"}


@pytest.mark.parametrize(
    ("value", "number", "string"),
    [
        (Decimal("9E+999999"), None, "9E+999999"),  # no float64 holds it: null, never Infinity
        (Decimal("1E-999999"), 0.0, "1E-999999"),  # the nearest float64 is 0.0
        (Decimal("1E+300"), 1e300, "1" + "0" * 300),
        (Decimal("0"), 0.0, "0"),
    ],
)
def test_magnitudes_a_float_cannot_hold(value: Decimal, number: object, string: str) -> None:
    snapshot = replace(xrp_snapshot(), quote=replace(xrp_quote(), total_supply=value))
    body = snapshot_to_json(snapshot, now=RECEIVED, stale_after=60)
    assert body["total_supply"] == number
    json.dumps(body, allow_nan=False)
    exact = snapshot_to_json(snapshot, now=RECEIVED, stale_after=60, strings=True)
    assert exact["total_supply"] == string
