"""Token velocity, quality flags and velocity trends (SPEC §4.4, §4.5). Pure: no I/O, no clock.

Velocity is ``volume_24h_usd / market_cap_usd``. Every edge case yields a value or ``None``
plus a flag, never a division by zero, NaN, Infinity or a negative velocity. Numbers we compute
(velocity, a derived market cap, trend percentages and means) are rounded to
:data:`COMPUTED_DIGITS` significant digits so they round-trip through a float64 and serialise
as JSON numbers; provider numbers are never rounded.

How a service that keeps the last accepted snapshot per token uses this module::

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

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)

from tokenpulse.domain import freshness
from tokenpulse.domain.durations import parse_duration
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
    Trend,
)

#: Significant digits of the numbers we compute ourselves (a float64 keeps 15 exactly).
COMPUTED_DIGITS = 15

#: Velocity trend windows (SPEC §4.4).
TREND_WINDOWS: tuple[str, ...] = ("1h", "4h", "12h", "7d")
#: The reference value must lie within this fraction of the window from ``now - window``.
TREND_REFERENCE_TOLERANCE = 0.1

DIRECTION_INCREASING = "increasing"
DIRECTION_DECREASING = "decreasing"
DIRECTION_STABLE = "stable"

#: Why a trend is ``null``: no usable stored value near ``now - window`` (none, or zero).
REASON_INSUFFICIENT_HISTORY = "insufficient_history"
#: Why a trend is ``null``: the token has no current velocity to compare.
REASON_VELOCITY_UNAVAILABLE = "velocity_unavailable"

_HUNDRED = Decimal(100)
# 28 significant digits for intermediate results; an overflow or an invalid operation raises
# instead of producing Infinity or NaN, and is handled where it can happen.
_CONTEXT = Context(
    prec=28,
    rounding=ROUND_HALF_EVEN,
    Emax=999_999,
    Emin=-999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


@dataclass(frozen=True, slots=True)
class VelocityPolicy:
    """Thresholds for velocity, quality flags and trends (settings pass their values in)."""

    min_market_cap_usd: Decimal = Decimal(100000)  # below: flag low_market_cap
    velocity_outlier: Decimal = Decimal(10)  # above (per day): flag velocity_outlier
    stale_after: float = 60.0  # seconds since received_at: flag stale
    trend_stable_band_pct: Decimal = Decimal(1)  # |change_pct| within: direction stable
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


def round_computed(value: Decimal) -> Decimal:
    """``value`` to :data:`COMPUTED_DIGITS` significant digits, without trailing zeros or -0."""
    with localcontext(_CONTEXT) as ctx:
        ctx.prec = COMPUTED_DIGITS
        rounded = value.normalize(ctx)
        if rounded.is_zero():
            return Decimal(0)
        exponent = rounded.as_tuple().exponent
        if isinstance(exponent, int) and exponent > 0 and rounded.adjusted() < _CONTEXT.prec:
            ctx.prec = _CONTEXT.prec
            rounded = rounded.quantize(Decimal(1), context=ctx)  # 1.2E+3 -> 1200
        return rounded


def _finite(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value.is_finite() else None


def _positive(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value.is_finite() and value > 0 else None


def _derived_market_cap(price: Decimal | None, supply: Decimal | None) -> Decimal | None:
    """price × circulating supply when both are known and positive (None if unusable)."""
    price, supply = _positive(price), _positive(supply)
    if price is None or supply is None:
        return None
    try:
        with localcontext(_CONTEXT) as ctx:
            ctx.prec = COMPUTED_DIGITS  # one rounding, straight to the digits we keep
            product = round_computed(ctx.multiply(price, supply))
    except Overflow:
        return None
    return product if product > 0 else None  # an underflow to zero is no market cap


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """numerator / denominator (denominator > 0), rounded; None when it overflows."""
    try:
        with localcontext(_CONTEXT) as ctx:
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
    market_cap = _positive(quote.market_cap_usd)
    if market_cap is None:
        market_cap = _derived_market_cap(quote.price_usd, quote.circulating_supply)
        flags.add(
            FLAG_MARKET_CAP_DERIVED if market_cap is not None else FLAG_MARKET_CAP_UNAVAILABLE
        )
    volume = _finite(quote.volume_24h_usd)
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


def _within(price: Decimal, reference: Decimal, fraction: Decimal) -> bool:
    """|price − reference| ≤ fraction × reference (both > 0)."""
    try:
        with localcontext(_CONTEXT) as ctx:
            return ctx.abs(ctx.subtract(price, reference)) <= ctx.multiply(fraction, reference)
    except Overflow:  # only for absurd magnitudes: treat as not within
        return False


def is_price_jump(previous: TokenSnapshot, quote: TokenQuote, policy: VelocityPolicy) -> bool:
    """True when ``quote``'s price moved beyond the outlier fraction from ``previous``'s
    within the outlier window (a move over a longer time is news, not an outlier)."""
    before, after = _positive(previous.quote.price_usd), _positive(quote.price_usd)
    if before is None or after is None:
        return False
    elapsed = abs(_age_seconds(previous.quote.received_at, quote.received_at))
    if elapsed > policy.price_outlier_window:
        return False
    return not _within(after, before, policy.price_outlier_fraction)


def _exceeds(value: Decimal, factor: Decimal, base: Decimal) -> bool:
    """value > factor × base (a product too large to represent is never exceeded)."""
    try:
        with localcontext(_CONTEXT) as ctx:
            return value > ctx.multiply(factor, base)
    except Overflow:
        return False


def _corroborates(witness: TokenSnapshot, quote: TokenQuote, policy: VelocityPolicy) -> bool:
    """True when ``witness`` is a recent reading whose price confirms ``quote``'s price."""
    price, other = _positive(quote.price_usd), _positive(witness.quote.price_usd)
    if price is None or other is None:
        return False
    elapsed = abs(_age_seconds(witness.quote.received_at, quote.received_at))
    return elapsed <= policy.price_outlier_window and _within(
        other, price, policy.price_outlier_fraction
    )


def _disagree(quote: TokenQuote, other: TokenSnapshot, pct: Decimal) -> bool:
    """True when two sources' prices differ by more than ``pct`` % of their midpoint."""
    mine, theirs = _positive(quote.price_usd), _positive(other.quote.price_usd)
    if mine is None or theirs is None:
        return False
    try:
        with localcontext(_CONTEXT) as ctx:
            spread = ctx.multiply(ctx.abs(ctx.subtract(mine, theirs)), _HUNDRED * 2)
            return spread > ctx.multiply(pct, ctx.add(mine, theirs))
    except Overflow:  # only for absurd magnitudes: compare the relative spread instead
        return abs(mine - theirs) / max(mine, theirs) * _HUNDRED > pct


def build_snapshot(
    identity: TokenIdentity,
    quote: TokenQuote,
    policy: VelocityPolicy = DEFAULT_POLICY,
    *,
    previous: TokenSnapshot | None = None,
    other_source: TokenSnapshot | None = None,
    volume_median: Decimal | None = None,
    now: datetime,
) -> TokenSnapshot:
    """The candidate snapshot of one quote: velocity flags plus the SPEC §4.5 quality flags.

    ``previous`` is the last accepted snapshot of this token: a price jump beyond the policy
    fraction within the window flags the candidate ``price_outlier`` unless ``other_source``
    (a recent reading from another source) confirms it. Pass the candidate through
    :meth:`OutlierGate.check`, which decides what is served. ``volume_median`` is the trailing
    median 24 h volume (``volume_spike``); ``other_source`` is also compared for
    ``sources_disagree`` when it is not stale itself.
    """
    if previous is not None and previous.id != identity.id:
        raise ValueError(f"previous snapshot is {previous.id!r}, not {identity.id!r}")
    velocity, market_cap_used, velocity_flags = compute_velocity(quote, policy)
    flags = set(velocity_flags)
    if is_stale(quote.received_at, now, policy.stale_after):
        flags.add(FLAG_STALE)
    volume, median = _finite(quote.volume_24h_usd), _positive(volume_median)
    if (
        volume is not None
        and median is not None
        and _exceeds(volume, policy.volume_spike_factor, median)
    ):
        flags.add(FLAG_VOLUME_SPIKE)
    witness = other_source
    if witness is not None and is_stale(witness.quote.received_at, now, policy.stale_after):
        witness = None
    if witness is not None and _disagree(quote, witness, policy.sources_disagree_pct):
        flags.add(FLAG_SOURCES_DISAGREE)
    if (
        previous is not None
        and is_price_jump(previous, quote, policy)
        and not (witness is not None and _corroborates(witness, quote, policy))
    ):
        flags.add(FLAG_PRICE_OUTLIER)
    return TokenSnapshot(
        identity=identity,
        quote=quote,
        market_cap_used=market_cap_used,
        velocity=velocity,
        flags=frozenset(flags),
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """What :meth:`OutlierGate.check` decided about a candidate snapshot.

    ``accept``: ``snapshot`` is the candidate (without ``price_outlier``): store it as the
    token's last accepted snapshot and serve it. Otherwise the candidate is held and
    ``snapshot`` is the previous accepted snapshot flagged ``price_outlier``: serve it and
    keep the previous one as the last accepted value.
    """

    accept: bool
    snapshot: TokenSnapshot

    @property
    def flagged(self) -> TokenSnapshot | None:
        """The previous snapshot flagged ``price_outlier`` when the candidate is held."""
        return None if self.accept else self.snapshot


class OutlierGate:
    """Keeps the previous price until a jump is corroborated (SPEC §4.5 ``price_outlier``).

    Holds at most one pending candidate per token: the first reading that jumped. A second,
    independent reading (another source, or a later ``as_of``/``received_at``) within the
    outlier fraction of the pending one and within the window releases the jump. A reading
    that does not jump accepts normally and drops the pending one. No awaits: safe to share
    between the tasks of one event loop.
    """

    def __init__(self, policy: VelocityPolicy = DEFAULT_POLICY) -> None:
        """Use the same policy as :func:`build_snapshot`."""
        self._policy = policy
        self._pending: dict[str, TokenSnapshot] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def pending(self, token_id: str) -> TokenSnapshot | None:
        """The held candidate of ``token_id``, if any."""
        return self._pending.get(token_id)

    def discard(self, token_id: str) -> None:
        """Forget the held candidate of ``token_id`` (e.g. when the token is untracked)."""
        self._pending.pop(token_id, None)

    def check(self, previous: TokenSnapshot | None, candidate: TokenSnapshot) -> Decision:
        """Accept ``candidate`` or hold it and serve ``previous`` flagged ``price_outlier``."""
        token_id = candidate.id
        if previous is None or FLAG_PRICE_OUTLIER not in candidate.flags:
            self._pending.pop(token_id, None)
            return Decision(True, _without_flag(candidate, FLAG_PRICE_OUTLIER))
        pending = self._pending.get(token_id)
        if (
            pending is not None
            and _independent(pending.quote, candidate.quote)
            and _corroborates(candidate, pending.quote, self._policy)  # near the outlier value
        ):
            del self._pending[token_id]
            return Decision(True, _without_flag(candidate, FLAG_PRICE_OUTLIER))
        self._pending[token_id] = candidate
        held = replace(previous, flags=previous.flags | {FLAG_PRICE_OUTLIER})
        return Decision(False, held)


def _independent(first: TokenQuote, second: TokenQuote) -> bool:
    """True when ``second`` is a new reading, not ``first`` polled again."""
    if first.source != second.source:
        return True
    if first.as_of is not None and second.as_of is not None:
        return second.as_of > first.as_of
    return second.received_at > first.received_at


def _without_flag(snapshot: TokenSnapshot, flag: str) -> TokenSnapshot:
    return replace(snapshot, flags=snapshot.flags - {flag}) if flag in snapshot.flags else snapshot


def window_duration(window: str) -> timedelta:
    """The length of a trend window (``"1h"``, ``"4h"``, ``"12h"``, ``"7d"``, ``"30m"``)."""
    return timedelta(seconds=parse_duration(window))


def trend_direction(change_pct: Decimal, band_pct: Decimal) -> str:
    """``increasing``/``decreasing``, or ``stable`` when within ±``band_pct``."""
    if change_pct > band_pct:
        return DIRECTION_INCREASING
    if change_pct < -band_pct:
        return DIRECTION_DECREASING
    return DIRECTION_STABLE


def compute_trends(
    current: Decimal | None,
    history: Iterable[tuple[datetime, Decimal | None]],
    *,
    now: datetime,
    windows: Iterable[str] = TREND_WINDOWS,
    band_pct: Decimal = DEFAULT_POLICY.trend_stable_band_pct,
) -> dict[str, Trend | None]:
    """Velocity trends per window from stored ``(time, velocity)`` points (SPEC §4.4).

    The reference is the stored value nearest to ``now - window`` within 10 % of the window
    (ties: the earlier one); ``change_pct`` = (current − reference) / reference × 100; ``mean``
    is the mean of the stored values from the reference time to ``now``. A window is ``None``
    without a current velocity, without such a value, or when the reference is zero (a change
    from zero has no percentage); :func:`trend_reason` says which.
    """
    points = sorted(
        (at, value)
        for at, value in history
        if value is not None and value.is_finite() and value >= 0 and at <= now
    )
    times = [at for at, _ in points]
    current = _finite(current)
    trends: dict[str, Trend | None] = {}
    for window in windows:
        trends[window] = None
        if current is None or current < 0:
            continue
        length = window_duration(window)
        index = _nearest(times, now - length, length * TREND_REFERENCE_TOLERANCE)
        if index is None:
            continue
        reference_at, reference = points[index]
        change = _percent_change(current, reference)
        if change is None:
            continue
        trends[window] = Trend(
            window=window,
            change_pct=change,
            direction=trend_direction(change, band_pct),
            mean=_mean([value for _, value in points[index:]]),
            reference_velocity=reference,
            reference_at=reference_at,
        )
    return trends


def _percent_change(current: Decimal, reference: Decimal) -> Decimal | None:
    """(current − reference) / reference × 100; None for a zero reference or an overflow."""
    if reference <= 0:
        return None
    try:
        with localcontext(_CONTEXT) as ctx:
            difference = ctx.multiply(ctx.subtract(current, reference), _HUNDRED)
            ctx.prec = COMPUTED_DIGITS
            return round_computed(ctx.divide(difference, reference))
    except Overflow:
        return None


def _mean(values: list[Decimal]) -> Decimal | None:
    """The arithmetic mean of ``values`` (None if empty or too large to represent)."""
    if not values:
        return None
    try:
        with localcontext(_CONTEXT) as ctx:
            return round_computed(ctx.divide(sum(values, Decimal(0)), len(values)))
    except Overflow:
        return None


def trend_reason(current: Decimal | None, trend: Trend | None) -> str | None:
    """Why ``trend`` is ``None`` (``velocity_unavailable`` or ``insufficient_history``)."""
    if trend is not None:
        return None
    if current is None or not current.is_finite():
        return REASON_VELOCITY_UNAVAILABLE
    return REASON_INSUFFICIENT_HISTORY


def _nearest(times: list[datetime], target: datetime, tolerance: timedelta) -> int | None:
    """Index of the time nearest ``target`` within ``tolerance`` (ties: the earlier)."""
    right = bisect.bisect_left(times, target)
    best: int | None = None
    for index in (right - 1, right):
        if 0 <= index < len(times):
            distance = abs(times[index] - target)
            if distance <= tolerance and (best is None or distance < abs(times[best] - target)):
                best = index
    return best
