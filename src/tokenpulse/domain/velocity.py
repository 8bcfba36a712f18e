"""Token velocity and the policy of its thresholds (SPEC §4.4). Pure: no I/O, no clock.

Velocity is ``volume_24h_usd / market_cap_usd``. Every edge case yields a value or ``None``
plus a flag, never a division by zero, NaN, Infinity or a negative velocity. Numbers we compute
(velocity, a derived market cap, trend percentages and means) are rounded to
:data:`COMPUTED_DIGITS` significant digits so they round-trip through a float64 and serialise
as JSON numbers; provider numbers are never rounded.

Quality flags and the outlier gate are in ``quality.py``, velocity trends in ``trends.py``.
How a service that keeps the last accepted snapshot per token uses the three::

    gate = OutlierGate(policy)                      # one per service, holds pending jumps
    candidate = build_snapshot(identity, quote, policy, previous=last.get(token_id),
                               other_source=latest_from_other_source, volume_median=median,
                               now=now)
    decision = gate.check(last.get(token_id), candidate)
    if decision.accept:
        last[token_id] = decision.snapshot          # the new accepted value
    serve(decision.snapshot)                        # candidate, or previous + price_outlier
    trends = compute_trends(decision.snapshot.velocity, history_points, now=now,
                            band_pct=policy.trend_stable_band_pct)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, Overflow, localcontext

from tokenpulse.domain import freshness
from tokenpulse.domain.numbers import (
    COMPUTED_DIGITS,
    DECIMAL_CONTEXT,
    finite,
    positive,
    round_computed,
)
from tokenpulse.domain.tokens import (
    FLAG_LOW_MARKET_CAP,
    FLAG_MARKET_CAP_DERIVED,
    FLAG_MARKET_CAP_UNAVAILABLE,
    FLAG_VELOCITY_OUTLIER,
    FLAG_VOLUME_UNAVAILABLE,
    TokenQuote,
)

# Re-exported for the token answers until their granularity policy joins ``trends.py``.
from tokenpulse.domain.trends import (
    DEFAULT_STABLE_BAND_PCT,
    TREND_WINDOWS,
    compute_trends,
    window_duration,
)


@dataclass(frozen=True, slots=True)
class VelocityPolicy:
    """Thresholds for velocity, quality flags and trends (settings pass their values in)."""

    min_market_cap_usd: Decimal = Decimal(100000)  # below: flag low_market_cap
    velocity_outlier: Decimal = Decimal(10)  # above (per day): flag velocity_outlier
    stale_after: float = 60.0  # seconds since received_at: flag stale
    trend_stable_band_pct: Decimal = (
        DEFAULT_STABLE_BAND_PCT  # |change_pct| within: direction stable
    )
    price_outlier_fraction: Decimal = Decimal("0.2")  # price jump beyond: price_outlier
    price_outlier_window: float = 300.0  # seconds: only jumps this close count
    volume_spike_factor: Decimal = Decimal(5)  # volume above factor × trailing median
    sources_disagree_pct: Decimal = Decimal(5)  # two sources' prices differ by more

    def __post_init__(self) -> None:
        for name in (
            "min_market_cap_usd",
            "velocity_outlier",
            "trend_stable_band_pct",
            "price_outlier_fraction",
            "volume_spike_factor",
            "sources_disagree_pct",
        ):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ValueError(f"{name} must be a finite, non-negative Decimal, got {value!r}")
        for name in ("stale_after", "price_outlier_window"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be a non-negative number of seconds")


DEFAULT_POLICY = VelocityPolicy()


def _derived_market_cap(price: Decimal | None, supply: Decimal | None) -> Decimal | None:
    """price × circulating supply when both are known and positive (None if unusable)."""
    price, supply = positive(price), positive(supply)
    if price is None or supply is None:
        return None
    try:
        with localcontext(DECIMAL_CONTEXT) as ctx:
            ctx.prec = COMPUTED_DIGITS  # one rounding, straight to the digits we keep
            product = round_computed(ctx.multiply(price, supply))
    except Overflow:
        return None
    return product if product > 0 else None  # an underflow to zero is no market cap


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """numerator / denominator (denominator > 0), rounded; None when it overflows."""
    try:
        with localcontext(DECIMAL_CONTEXT) as ctx:
            ctx.prec = COMPUTED_DIGITS
            return round_computed(ctx.divide(numerator, denominator))
    except Overflow:
        return None


def compute_velocity(
    quote: TokenQuote, policy: VelocityPolicy = DEFAULT_POLICY
) -> tuple[Decimal | None, Decimal | None, frozenset[str]]:
    """Velocity of one quote: ``(velocity, market_cap_used, flags)`` per SPEC §4.4.

    Market cap missing, zero or negative: price × circulating supply (flag
    ``market_cap_derived``), else no velocity (``market_cap_unavailable``). Volume missing or
    negative: no velocity (``volume_unavailable``). A cap below the policy minimum is kept and
    flagged ``low_market_cap``; a velocity above the outlier threshold ``velocity_outlier``.
    """
    flags: set[str] = set()
    market_cap = positive(quote.market_cap_usd)
    if market_cap is None:
        market_cap = _derived_market_cap(quote.price_usd, quote.circulating_supply)
        flags.add(
            FLAG_MARKET_CAP_DERIVED if market_cap is not None else FLAG_MARKET_CAP_UNAVAILABLE
        )
    volume = finite(quote.volume_24h_usd)
    if volume is None or volume < 0:
        volume = None
        flags.add(FLAG_VOLUME_UNAVAILABLE)
    if market_cap is not None and market_cap < policy.min_market_cap_usd:
        flags.add(FLAG_LOW_MARKET_CAP)
    velocity: Decimal | None = None
    if market_cap is not None and volume is not None:
        velocity = _ratio(volume, market_cap)
        if velocity is None or velocity > policy.velocity_outlier:
            flags.add(FLAG_VELOCITY_OUTLIER)  # None here: too large to represent at all
    return velocity, market_cap, frozenset(flags)


def _age_seconds(received_at: datetime, now: datetime) -> float:
    return (now - received_at).total_seconds()


def is_stale(received_at: datetime, now: datetime, stale_after: float) -> bool:
    """True when a value received at ``received_at`` is older than ``stale_after`` seconds."""
    return freshness.is_stale(
        freshness.age_ms(received_at.timestamp(), now.timestamp()), stale_after
    )


__all__ = [
    "DEFAULT_POLICY",
    "TREND_WINDOWS",
    "VelocityPolicy",
    "compute_trends",
    "compute_velocity",
    "is_stale",
    "window_duration",
]
