"""Velocity, quality flags, the outlier gate and velocity trends (SPEC §4.4, §4.5).

Edge cases use real rows from the recorded fixtures wherever the recordings have one (the
fixture file and row are named on each case); the few cases no recording shows are marked
"constructed" and say what was changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tokenpulse.domain.numbers import COMPUTED_DIGITS, parse_decimal
from tokenpulse.domain.quality import OutlierGate, build_snapshot
from tokenpulse.domain.time import from_epoch
from tokenpulse.domain.tokens import (
    FLAG_LOW_MARKET_CAP,
    FLAG_MARKET_CAP_DERIVED,
    FLAG_MARKET_CAP_UNAVAILABLE,
    FLAG_PRICE_OUTLIER,
    FLAG_SOURCES_DISAGREE,
    FLAG_STALE,
    FLAG_VELOCITY_OUTLIER,
    FLAG_VOLUME_SPIKE,
    FLAG_VOLUME_UNAVAILABLE,
    TokenIdentity,
    TokenQuote,
    TokenSnapshot,
)
from tokenpulse.domain.trends import (
    DIRECTION_DECREASING,
    DIRECTION_INCREASING,
    DIRECTION_STABLE,
    REASON_INSUFFICIENT_HISTORY,
    REASON_VELOCITY_UNAVAILABLE,
    compute_trends,
    trend_reason,
)
from tokenpulse.domain.velocity import VelocityPolicy, compute_velocity
from tokenpulse.wire.numbers import computed_number

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
POLICY = VelocityPolicy()
T0 = datetime(2021, 8, 31, 13, 40, tzinfo=UTC)


def _load(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))


def D(value: object) -> Decimal:
    """A fixture value as the parsers read it (floats by their shortest repr)."""
    return parse_decimal(value, field="test")


def rounded(numerator: Decimal, denominator: Decimal) -> Decimal:
    """numerator / denominator, exactly, then rounded once to 12 significant digits."""
    exact = Fraction(numerator) / Fraction(denominator)
    with localcontext(Context(prec=COMPUTED_DIGITS, rounding=ROUND_HALF_EVEN)):
        return (Decimal(exact.numerator) / Decimal(exact.denominator)).normalize()


def quote(**values: Any) -> TokenQuote:
    defaults: dict[str, Any] = {
        "source": "coingecko",
        "symbol": "BTC",
        "name": "Bitcoin",
        "received_at": T0,
    }
    return TokenQuote(**(defaults | values))


CMC_2021 = {
    row["slug"]: row
    for row in _load("coinmarketcap/listings_latest_2021-08-31_top100.json")["data"]
}
CG_2021 = {row["id"]: row for row in _load("coingecko/coins_markets_usd_2021-06-24_top100.json")}
CG_2018 = _load("coingecko/coins_markets_usd_2018-08-28_1coin_pycoingecko.json")[0]
LUNA = _load("coingecko/market_chart_terra-luna_usd_max_daily_2022-07-06.json")
BTC_CHART = _load("coingecko/market_chart_bitcoin_usd_7d_hourly_2023-10-10.json")


def cmc_fields(slug: str) -> dict[str, Any]:
    row = CMC_2021[slug]
    usd = row["quote"]["USD"]
    return {
        "source": "coinmarketcap",
        "price_usd": D(usd["price"]),
        "market_cap_usd": D(usd["market_cap"]),
        "volume_24h_usd": D(usd["volume_24h"]),
        "circulating_supply": D(row["circulating_supply"]),
    }


def cg_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "price_usd": D(row["current_price"]),
        "market_cap_usd": D(row["market_cap"]),
        "volume_24h_usd": D(row["total_volume"]),
        "circulating_supply": D(row["circulating_supply"]),
        "max_supply": None if row.get("max_supply") is None else D(row["max_supply"]),
    }


def luna_fields(index: int) -> dict[str, Any]:
    """Row ``index`` of the terra-luna market_chart (no supply in market_chart)."""
    return {
        "price_usd": D(LUNA["prices"][index][1]),
        "market_cap_usd": D(LUNA["market_caps"][index][1]),
        "volume_24h_usd": D(LUNA["total_volumes"][index][1]),
    }


def luna_index(day: str) -> int:
    stamp = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)
    return next(i for i, (ms, _) in enumerate(LUNA["prices"]) if ms == stamp)


BTC_2018 = cg_fields(CG_2018)  # circulating_supply arrives as the string "17236100.0"
BTC_CMC = cmc_fields("bitcoin")


@dataclass(frozen=True)
class Case:
    fields: dict[str, Any]
    velocity: Decimal | None
    market_cap_used: Decimal | None
    flags: frozenset[str] = field(default_factory=frozenset)


def _derived_2018() -> Decimal:
    price: Decimal = BTC_2018["price_usd"]
    supply: Decimal = BTC_2018["circulating_supply"]
    with localcontext(Context(prec=COMPUTED_DIGITS, rounding=ROUND_HALF_EVEN)):
        return (price * supply).normalize()  # one rounding of the exact product


CASES: dict[str, Case] = {
    # CMC listings 2021-08-31, bitcoin: every field present.
    "cmc_2021_bitcoin": Case(
        BTC_CMC,
        rounded(BTC_CMC["volume_24h_usd"], BTC_CMC["market_cap_usd"]),
        BTC_CMC["market_cap_usd"],
    ),
    # CMC listings 2021-08-31, tether: volume above market cap (velocity 1.0005), no flag.
    "cmc_2021_tether_velocity_above_one": Case(
        cmc_fields("tether"),
        rounded(cmc_fields("tether")["volume_24h_usd"], cmc_fields("tether")["market_cap_usd"]),
        cmc_fields("tether")["market_cap_usd"],
    ),
    # pycoingecko 2018-08-28: numbers partly string-encoded; the old shape.
    "cg_2018_string_numbers": Case(
        BTC_2018,
        rounded(BTC_2018["volume_24h_usd"], BTC_2018["market_cap_usd"]),
        BTC_2018["market_cap_usd"],
    ),
    # CoinGecko top 100 2021-06-24, ripple: max_supply null does not matter.
    "cg_2021_null_max_supply": Case(
        cg_fields(CG_2021["ripple"]),
        rounded(D(CG_2021["ripple"]["total_volume"]), D(CG_2021["ripple"]["market_cap"])),
        D(CG_2021["ripple"]["market_cap"]),
    ),
    # terra-luna market_chart, first day 2019-05-08: market_cap 0.0 and no supply to derive.
    "luna_first_day_market_cap_zero": Case(
        luna_fields(0), None, None, frozenset({FLAG_MARKET_CAP_UNAVAILABLE})
    ),
    # terra-luna market_chart, last point 2022-07-06 19:32 (post-collapse): market_cap 0.0.
    "luna_post_collapse_market_cap_zero": Case(
        luna_fields(-1), None, None, frozenset({FLAG_MARKET_CAP_UNAVAILABLE})
    ),
    # terra-luna 2022-05-12: 16.5 bn volume on a 1.6 bn cap, velocity 10.11 > 10.
    "luna_2022_05_12_velocity_outlier": Case(
        luna_fields(luna_index("2022-05-12")),
        rounded(
            luna_fields(luna_index("2022-05-12"))["volume_24h_usd"],
            luna_fields(luna_index("2022-05-12"))["market_cap_usd"],
        ),
        luna_fields(luna_index("2022-05-12"))["market_cap_usd"],
        frozenset({FLAG_VELOCITY_OUTLIER}),
    ),
    # terra-luna 2022-05-11: velocity 1.75, high but not an outlier.
    "luna_2022_05_11_high_velocity": Case(
        luna_fields(luna_index("2022-05-11")),
        rounded(
            luna_fields(luna_index("2022-05-11"))["volume_24h_usd"],
            luna_fields(luna_index("2022-05-11"))["market_cap_usd"],
        ),
        luna_fields(luna_index("2022-05-11"))["market_cap_usd"],
    ),
    # CoinGecko export btc-usd-max.csv, 2013-04-28: total_volume 0 -> velocity 0, a value.
    "cg_export_2013_zero_volume": Case(
        {"price_usd": D("135.3"), "market_cap_usd": D("1500517590"), "volume_24h_usd": D("0")},
        Decimal(0),
        D("1500517590"),
    ),
    # CoinGecko export btc-usd-max.csv, 2017-04-02: empty market_cap cell.
    "cg_export_2017_empty_market_cap": Case(
        {"price_usd": D("1098.0679999999998"), "volume_24h_usd": D("80231506.35067685")},
        None,
        None,
        frozenset({FLAG_MARKET_CAP_UNAVAILABLE}),
    ),
    # QuantConnect CoinGecko universe 2018-04-04, COMP: market_cap 0 (tiny price, no supply).
    "quantconnect_2018_comp_market_cap_zero": Case(
        {
            "price_usd": D("0.0000749497970739919"),
            "volume_24h_usd": D("12934.812331138"),
            "market_cap_usd": D("0"),
        },
        None,
        None,
        frozenset({FLAG_MARKET_CAP_UNAVAILABLE}),
    ),
    # Constructed: the 2018 row without its market cap -> price × circulating supply.
    "cg_2018_market_cap_missing_derived": Case(
        BTC_2018 | {"market_cap_usd": None},
        rounded(BTC_2018["volume_24h_usd"], _derived_2018()),
        _derived_2018(),
        frozenset({FLAG_MARKET_CAP_DERIVED}),
    ),
    # Constructed: the 2018 row with market cap 0 and with a negative market cap.
    "cg_2018_market_cap_zero_derived": Case(
        BTC_2018 | {"market_cap_usd": Decimal(0)},
        rounded(BTC_2018["volume_24h_usd"], _derived_2018()),
        _derived_2018(),
        frozenset({FLAG_MARKET_CAP_DERIVED}),
    ),
    "cg_2018_market_cap_negative_derived": Case(
        BTC_2018 | {"market_cap_usd": Decimal("-1")},
        rounded(BTC_2018["volume_24h_usd"], _derived_2018()),
        _derived_2018(),
        frozenset({FLAG_MARKET_CAP_DERIVED}),
    ),
    # Constructed: cap missing, circulating supply 0 -> nothing to derive from.
    "market_cap_missing_supply_zero": Case(
        BTC_2018 | {"market_cap_usd": None, "circulating_supply": Decimal(0)},
        None,
        None,
        frozenset({FLAG_MARKET_CAP_UNAVAILABLE}),
    ),
    # Constructed: the CMC bitcoin row without volume, and with a negative volume.
    "volume_missing": Case(
        BTC_CMC | {"volume_24h_usd": None},
        None,
        BTC_CMC["market_cap_usd"],
        frozenset({FLAG_VOLUME_UNAVAILABLE}),
    ),
    "volume_negative": Case(
        BTC_CMC | {"volume_24h_usd": Decimal("-5")},
        None,
        BTC_CMC["market_cap_usd"],
        frozenset({FLAG_VOLUME_UNAVAILABLE}),
    ),
    # Constructed: neither volume nor any market cap.
    "nothing_known": Case(
        {"price_usd": D("135.3")},
        None,
        None,
        frozenset({FLAG_VOLUME_UNAVAILABLE, FLAG_MARKET_CAP_UNAVAILABLE}),
    ),
    # Constructed (no recorded cap is below 100 000): value kept, flagged.
    "low_market_cap": Case(
        {"market_cap_usd": D("99999.99"), "volume_24h_usd": D("5000")},
        rounded(D("5000"), D("99999.99")),
        D("99999.99"),
        frozenset({FLAG_LOW_MARKET_CAP}),
    ),
    "market_cap_exactly_minimum": Case(
        {"market_cap_usd": D("100000"), "volume_24h_usd": D("5000")},
        Decimal("0.05"),
        D("100000"),
    ),
    "low_derived_market_cap": Case(
        {"price_usd": D("0.5"), "circulating_supply": D("1000"), "volume_24h_usd": D("100")},
        Decimal("0.2"),
        Decimal(500),
        frozenset({FLAG_MARKET_CAP_DERIVED, FLAG_LOW_MARKET_CAP}),
    ),
    "velocity_exactly_outlier_threshold": Case(
        {"market_cap_usd": D("1E+6"), "volume_24h_usd": D("1E+7")}, Decimal(10), D("1E+6")
    ),
    # Constructed: non-finite Decimals never reach the output.
    "non_finite_inputs": Case(
        {"market_cap_usd": Decimal("NaN"), "volume_24h_usd": Decimal("Infinity")},
        None,
        None,
        frozenset({FLAG_MARKET_CAP_UNAVAILABLE, FLAG_VOLUME_UNAVAILABLE}),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_velocity_edge_cases(name: str) -> None:
    case = CASES[name]
    velocity, market_cap_used, flags = compute_velocity(quote(**case.fields), POLICY)
    assert velocity == case.velocity
    assert market_cap_used == case.market_cap_used
    assert flags == case.flags
    if velocity is not None:
        assert len(velocity.as_tuple().digits) <= 12  # computed: 12 significant digits
        assert computed_number(velocity) == float(velocity)


def test_a_provider_market_cap_is_used_digit_for_digit() -> None:
    _, market_cap_used, _ = compute_velocity(quote(**BTC_CMC), POLICY)
    assert str(market_cap_used) == "898114141453.8834"


def test_derived_market_cap_is_close_to_the_providers() -> None:
    """The 2018 row's own cap vs price × circulating supply: within 0.1 %."""
    derived = _derived_2018()
    assert abs(derived - BTC_2018["market_cap_usd"]) / BTC_2018["market_cap_usd"] < Decimal("0.001")


# -- properties -------------------------------------------------------------------------------

_SCALED = st.builds(
    lambda mantissa, exponent: Decimal(f"{mantissa}E{exponent}"),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-999_000, max_value=999_000),
)
ANY_DECIMAL = st.one_of(
    st.none(),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal(0), Decimal("-0"), Decimal("1E-999999"), Decimal("9E+999999")]),
    _SCALED,
)


@given(
    price=ANY_DECIMAL,
    market_cap=ANY_DECIMAL,
    volume=ANY_DECIMAL,
    supply=ANY_DECIMAL,
)
def test_velocity_is_never_nan_infinite_or_negative(
    price: Decimal | None,
    market_cap: Decimal | None,
    volume: Decimal | None,
    supply: Decimal | None,
) -> None:
    velocity, market_cap_used, flags = compute_velocity(
        quote(
            price_usd=price,
            market_cap_usd=market_cap,
            volume_24h_usd=volume,
            circulating_supply=supply,
        ),
        POLICY,
    )
    if velocity is not None:
        assert velocity.is_finite()
        assert velocity >= 0
        assert not velocity.is_signed()  # no -0 either
        assert market_cap_used is not None
        assert not ({FLAG_MARKET_CAP_UNAVAILABLE, FLAG_VOLUME_UNAVAILABLE} & flags)
    else:
        assert {FLAG_MARKET_CAP_UNAVAILABLE, FLAG_VOLUME_UNAVAILABLE, FLAG_VELOCITY_OUTLIER} & flags
    if market_cap_used is not None:
        assert market_cap_used.is_finite()
        assert market_cap_used > 0
    assert (market_cap_used is None) == (FLAG_MARKET_CAP_UNAVAILABLE in flags)
    provider_cap_usable = market_cap is not None and market_cap.is_finite() and market_cap > 0
    if provider_cap_usable:
        assert market_cap_used == market_cap
        assert FLAG_MARKET_CAP_DERIVED not in flags
    else:
        assert (FLAG_MARKET_CAP_DERIVED in flags) == (market_cap_used is not None)


# -- build_snapshot flags -----------------------------------------------------------------------

BTC = TokenIdentity(id="bitcoin", symbol="BTC", name="Bitcoin", cmc_id=1, coingecko_id="bitcoin")


def snap(
    price: str,
    *,
    at: datetime = T0,
    source: str = "coingecko",
    as_of: datetime | None = None,
    flags: frozenset[str] = frozenset(),
) -> TokenSnapshot:
    q = quote(price_usd=D(price), received_at=at, source=source, as_of=as_of or at)
    return TokenSnapshot(BTC, q, market_cap_used=None, velocity=None, flags=flags)


def build(q: TokenQuote, **kwargs: Any) -> TokenSnapshot:
    kwargs.setdefault("now", q.received_at)
    return build_snapshot(BTC, q, POLICY, **kwargs)


def test_build_snapshot_keeps_velocity_and_flags() -> None:
    row = quote(**CASES["luna_2022_05_12_velocity_outlier"].fields)
    snapshot = build(row)
    assert snapshot.velocity == CASES["luna_2022_05_12_velocity_outlier"].velocity
    assert snapshot.flags == {FLAG_VELOCITY_OUTLIER}
    assert snapshot.identity == BTC
    assert snapshot.quote is row


@pytest.mark.parametrize(("age", "stale"), [(0, False), (60, False), (60.001, True), (3600, True)])
def test_stale_after_the_policy_age(age: float, stale: bool) -> None:
    snapshot = build(quote(**BTC_CMC), now=T0 + timedelta(seconds=age))
    assert (FLAG_STALE in snapshot.flags) is stale


@pytest.mark.parametrize(
    ("median", "spike"),
    [
        (None, False),
        (Decimal(0), False),  # no usable median: no claim
        (BTC_CMC["volume_24h_usd"] / 5, False),  # exactly 5×: not above
        (BTC_CMC["volume_24h_usd"] / Decimal("5.01"), True),
        (BTC_CMC["volume_24h_usd"], False),
    ],
)
def test_volume_spike_against_the_trailing_median(median: Decimal | None, spike: bool) -> None:
    snapshot = build(quote(**BTC_CMC), volume_median=median)
    assert (FLAG_VOLUME_SPIKE in snapshot.flags) is spike


@pytest.mark.parametrize(
    ("other_price", "disagree"), [("100", False), ("104.9", False), ("106", True), ("94", True)]
)
def test_sources_disagree_beyond_the_tolerance(other_price: str, disagree: bool) -> None:
    other = snap(other_price, source="coinmarketcap", at=T0 - timedelta(seconds=10))
    snapshot = build(quote(price_usd=D("100")), other_source=other)
    assert (FLAG_SOURCES_DISAGREE in snapshot.flags) is disagree


def test_a_stale_other_source_is_not_compared() -> None:
    other = snap("150", source="coinmarketcap", at=T0 - timedelta(hours=1))
    assert FLAG_SOURCES_DISAGREE not in build(quote(price_usd=D("100")), other_source=other).flags


@pytest.mark.parametrize(
    ("price", "seconds_later", "outlier"),
    [
        ("119", 60, False),  # within 20 %
        ("130", 60, True),  # a 30 % jump one minute later
        ("70", 60, True),  # and down
        ("130", 301, False),  # over more than the window: news, not an outlier
    ],
)
def test_price_outlier_against_the_previous_accepted_value(
    price: str, seconds_later: int, outlier: bool
) -> None:
    previous = snap("100")
    later = T0 + timedelta(seconds=seconds_later)
    snapshot = build(quote(price_usd=D(price), received_at=later), previous=previous)
    assert (FLAG_PRICE_OUTLIER in snapshot.flags) is outlier


def test_another_source_corroborates_a_jump() -> None:
    previous = snap("100")
    later = T0 + timedelta(seconds=60)
    witness = snap("128", source="coinmarketcap", at=later - timedelta(seconds=5))
    snapshot = build(
        quote(price_usd=D("130"), received_at=later), previous=previous, other_source=witness
    )
    assert FLAG_PRICE_OUTLIER not in snapshot.flags


def test_previous_of_another_token_is_an_error() -> None:
    other = replace(snap("100"), identity=TokenIdentity(id="xrp", symbol="XRP", name="XRP"))
    with pytest.raises(ValueError, match="xrp"):
        build(quote(price_usd=D("100")), previous=other)


# -- the outlier gate ---------------------------------------------------------------------------

# Real terra-luna daily prices (market_chart): 2022-05-11 and the collapse of 2022-05-12/13.
# The receive times are set by the test, one minute apart, so the jump lands in the window.
LUNA_BEFORE = str(LUNA["prices"][luna_index("2022-05-11")][1])
LUNA_AFTER = str(LUNA["prices"][luna_index("2022-05-12")][1])


class Service:
    """What a token service does with the gate: keep the last accepted snapshot, serve."""

    def __init__(self) -> None:
        self.gate = OutlierGate(POLICY)
        self.last: dict[str, TokenSnapshot] = {}

    def ingest(self, q: TokenQuote) -> TokenSnapshot:
        previous = self.last.get(BTC.id)
        candidate = build_snapshot(BTC, q, POLICY, previous=previous, now=q.received_at)
        decision = self.gate.check(previous, candidate)
        if decision.accept:
            self.last[BTC.id] = decision.snapshot
        return decision.snapshot


def luna_quote(price: str, minute: int, *, source: str = "coingecko") -> TokenQuote:
    at = T0 + timedelta(minutes=minute)
    return quote(price_usd=D(price), received_at=at, as_of=at, source=source)


def test_a_jump_is_held_until_a_second_reading_confirms_it() -> None:
    service = Service()
    first = service.ingest(luna_quote(LUNA_BEFORE, 0))
    assert first.quote.price_usd == D(LUNA_BEFORE)
    assert FLAG_PRICE_OUTLIER not in first.flags

    held = service.ingest(luna_quote(LUNA_AFTER, 1))
    assert held.quote.price_usd == D(LUNA_BEFORE)  # the previous value is still served
    assert FLAG_PRICE_OUTLIER in held.flags
    assert service.gate.pending(BTC.id) is not None

    confirmed = service.ingest(luna_quote("1.05", 2))  # an independent reading near the jump
    assert confirmed.quote.price_usd == D("1.05")
    assert FLAG_PRICE_OUTLIER not in confirmed.flags
    assert service.last[BTC.id] is confirmed
    assert service.gate.pending(BTC.id) is None
    assert len(service.gate) == 0


def test_the_same_reading_again_does_not_corroborate() -> None:
    gate, previous = OutlierGate(POLICY), snap(LUNA_BEFORE)
    jump = build(luna_quote(LUNA_AFTER, 1), previous=previous)
    assert not gate.check(previous, jump).accept
    repeated = build(
        replace(jump.quote, received_at=jump.quote.received_at + timedelta(seconds=30)),
        previous=previous,
    )
    decision = gate.check(previous, repeated)  # same source, same as_of: a re-poll
    assert not decision.accept
    assert decision.flagged is not None
    assert decision.flagged.quote.price_usd == D(LUNA_BEFORE)


def test_a_reading_from_another_source_confirms_the_pending_jump() -> None:
    gate, previous = OutlierGate(POLICY), snap(LUNA_BEFORE)
    assert not gate.check(previous, build(luna_quote(LUNA_AFTER, 1), previous=previous)).accept
    from_cmc = build(luna_quote("1.1", 1, source="coinmarketcap"), previous=previous)
    decision = gate.check(previous, from_cmc)
    assert decision.accept
    assert decision.flagged is None
    assert decision.snapshot.quote.source == "coinmarketcap"


def test_a_second_different_jump_does_not_confirm_the_first() -> None:
    gate, previous = OutlierGate(POLICY), snap(LUNA_BEFORE)
    first = build(luna_quote(LUNA_AFTER, 1), previous=previous)
    assert not gate.check(previous, first).accept
    # 2022-05-13's price is another 99.9 % away from the pending one: held again.
    second = build(
        luna_quote(str(LUNA["prices"][luna_index("2022-05-13")][1]), 2), previous=previous
    )
    assert not gate.check(previous, second).accept
    assert gate.pending(BTC.id) is second


def test_a_pending_jump_expires_with_the_window() -> None:
    gate, previous = OutlierGate(POLICY), snap(LUNA_BEFORE)
    assert not gate.check(previous, build(luna_quote(LUNA_AFTER, 1), previous=previous)).accept
    late = replace(
        snap(LUNA_AFTER), quote=luna_quote(LUNA_AFTER, 7), flags=frozenset({FLAG_PRICE_OUTLIER})
    )
    assert not gate.check(previous, late).accept  # 6 minutes after the pending one: too late


def test_a_return_to_normal_drops_the_pending_jump() -> None:
    service = Service()
    service.ingest(luna_quote(LUNA_BEFORE, 0))
    service.ingest(luna_quote(LUNA_AFTER, 1))
    back = service.ingest(luna_quote("16.5", 2))
    assert back.quote.price_usd == D("16.5")
    assert FLAG_PRICE_OUTLIER not in back.flags
    assert service.gate.pending(BTC.id) is None


def test_the_first_reading_is_always_accepted() -> None:
    decision = OutlierGate(POLICY).check(None, snap("100", flags=frozenset({FLAG_PRICE_OUTLIER})))
    assert decision.accept
    assert FLAG_PRICE_OUTLIER not in decision.snapshot.flags


# -- trends -----------------------------------------------------------------------------------

NOW = datetime(2023, 10, 10, 18, 41, 43, tzinfo=UTC)
VELOCITIES = st.decimals(
    min_value=Decimal("0.000001"), max_value=Decimal(1000), places=6, allow_nan=False
)


def one_point(current: Decimal, reference: Decimal, window: str = "1h") -> Any:
    ago = {"1h": timedelta(hours=1), "7d": timedelta(days=7)}[window]
    return compute_trends(current, [(NOW - ago, reference)], now=NOW, windows=(window,))[window]


@given(current=VELOCITIES, reference=VELOCITIES)
def test_trends_are_antisymmetric(current: Decimal, reference: Decimal) -> None:
    forward, backward = one_point(current, reference), one_point(reference, current)
    assert forward is not None
    assert backward is not None
    assert forward.change_pct.compare(0) == -backward.change_pct.compare(0)
    flipped = {
        DIRECTION_INCREASING: DIRECTION_DECREASING,
        DIRECTION_DECREASING: DIRECTION_INCREASING,
        DIRECTION_STABLE: DIRECTION_STABLE,
    }
    if DIRECTION_STABLE not in (forward.direction, backward.direction):
        assert backward.direction == flipped[forward.direction]
    else:
        # The band is a percentage of each side's own reference, so at its edge one way can be
        # just inside (|change| <= 1 %) and the other just outside: at most 1/0.99 = 1.0101 %.
        assert max(abs(forward.change_pct), abs(backward.change_pct)) <= Decimal("1.0102")


@given(current=VELOCITIES, reference=VELOCITIES)
def test_direction_is_stable_exactly_within_the_band(current: Decimal, reference: Decimal) -> None:
    trend = one_point(current, reference)
    assert trend is not None
    assert (trend.direction == DIRECTION_STABLE) == (abs(trend.change_pct) <= 1)
    if trend.direction == DIRECTION_INCREASING:
        assert current > reference


@given(reference=VELOCITIES, change=st.decimals(min_value=-1, max_value=1, places=3))
def test_changes_within_the_band_are_stable(reference: Decimal, change: Decimal) -> None:
    current = reference * (1 + change / 100)
    assume(current > 0)
    trend = one_point(current, reference)
    assert trend is not None
    assert trend.direction == DIRECTION_STABLE


def test_trend_values_on_a_simple_history() -> None:
    history = [
        (NOW - timedelta(minutes=m), Decimal(v)) for m, v in [(60, "0.2"), (30, "0.3"), (0, "0.25")]
    ]
    trend = compute_trends(Decimal("0.25"), history, now=NOW, windows=("1h",))["1h"]
    assert trend is not None
    assert trend.change_pct == Decimal(25)
    assert trend.direction == DIRECTION_INCREASING
    assert trend.mean == Decimal("0.25")
    assert trend.reference_velocity == Decimal("0.2")
    assert trend.reference_at == NOW - timedelta(hours=1)


@pytest.mark.parametrize(
    ("minutes_ago", "found"), [(60, True), (66, True), (54, True), (66.1, False), (53.9, False)]
)
def test_the_reference_must_lie_within_ten_percent_of_the_window(
    minutes_ago: float, found: bool
) -> None:
    history = [(NOW - timedelta(minutes=minutes_ago), Decimal("0.2"))]
    trends = compute_trends(Decimal("0.3"), history, now=NOW, windows=("1h",))
    assert (trends["1h"] is not None) is found
    if not found:
        assert trend_reason(Decimal("0.3"), trends["1h"]) == REASON_INSUFFICIENT_HISTORY


def test_the_nearest_stored_value_is_the_reference() -> None:
    history = [
        (NOW - timedelta(minutes=65), Decimal("0.1")),
        (NOW - timedelta(minutes=58), Decimal("0.2")),
        (NOW - timedelta(minutes=40), Decimal("0.4")),
    ]
    trend = compute_trends(Decimal("0.2"), history, now=NOW, windows=("1h",))["1h"]
    assert trend is not None
    assert trend.reference_velocity == Decimal("0.2")
    assert trend.change_pct == 0
    assert trend.direction == DIRECTION_STABLE


def test_no_history_no_current_and_a_zero_reference_give_none_with_a_reason() -> None:
    empty = compute_trends(Decimal("0.1"), [], now=NOW)
    assert empty == {"1h": None, "4h": None, "12h": None, "7d": None}
    assert trend_reason(Decimal("0.1"), empty["7d"]) == REASON_INSUFFICIENT_HISTORY
    history = [(NOW - timedelta(hours=1), Decimal("0.1"))]
    no_current = compute_trends(None, history, now=NOW)
    assert no_current["1h"] is None
    assert trend_reason(None, no_current["1h"]) == REASON_VELOCITY_UNAVAILABLE
    # A zero reference velocity (btc's first 242 days have total_volume 0): no percentage.
    zero = compute_trends(Decimal("0.1"), [(NOW - timedelta(hours=1), Decimal(0))], now=NOW)
    assert zero["1h"] is None


def test_trends_on_the_recorded_bitcoin_week() -> None:
    """CoinGecko market_chart bitcoin 7d hourly (2023-10-03 → 2023-10-10): real velocities."""
    points = [
        (from_epoch(ms / 1000), rounded(D(volume), D(cap)))
        for (ms, cap), (_, volume) in zip(
            BTC_CHART["market_caps"], BTC_CHART["total_volumes"], strict=True
        )
    ]
    now, current = points[-1]
    trends = compute_trends(current, points[:-1], now=now)
    assert set(trends) == {"1h", "4h", "12h", "7d"}
    # "now" is the intraday last point (18:41:43); the hourly points nearest to 17:41:43 are
    # 17:00:03 and 18:01:01, both more than 6 minutes away: no 1h trend, honestly.
    assert trends["1h"] is None
    assert trend_reason(current, trends["1h"]) == REASON_INSUFFICIENT_HISTORY
    for window, hours in {"4h": 4, "12h": 12, "7d": 168}.items():
        trend = trends[window]
        assert trend is not None, window
        target = now - timedelta(hours=hours)
        assert abs(trend.reference_at - target) <= timedelta(hours=hours) * 0.1
        nearest = min(points[:-1], key=lambda p: abs(p[0] - target))
        assert (trend.reference_at, trend.reference_velocity) == nearest
        expected = rounded((current - nearest[1]) * 100, nearest[1])
        assert trend.change_pct == expected
        assert trend.mean is not None
        window_values = [v for at, v in points[:-1] if at >= trend.reference_at]
        assert min(window_values) <= trend.mean <= max(window_values)
    # The recorded week opens at 2023-10-03 19:00, 19 minutes after now − 7 days.
    assert trends["7d"] is not None
    assert trends["7d"].reference_at == points[0][0]


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="velocity_outlier"):
        VelocityPolicy(velocity_outlier=Decimal(-1))
    with pytest.raises(ValueError, match="stale_after"):
        VelocityPolicy(stale_after=-1)
