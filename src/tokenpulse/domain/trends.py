"""Velocity trends (SPEC §4.4): the change against the stored value nearest to ``now - window``.

Pure: no I/O, no clock (``now`` is passed in).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, Overflow, localcontext

from tokenpulse.domain.durations import parse_duration
from tokenpulse.domain.numbers import (
    COMPUTED_DIGITS,
    DECIMAL_CONTEXT,
    HUNDRED,
    finite,
    round_computed,
)
from tokenpulse.domain.tokens import Trend

#: |change_pct| within this band (percent): direction ``stable`` (TREND_STABLE_BAND).
DEFAULT_STABLE_BAND_PCT = Decimal(1)

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
    band_pct: Decimal = DEFAULT_STABLE_BAND_PCT,
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
    current = finite(current)
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
        with localcontext(DECIMAL_CONTEXT) as ctx:
            difference = ctx.multiply(ctx.subtract(current, reference), HUNDRED)
            ctx.prec = COMPUTED_DIGITS
            return round_computed(ctx.divide(difference, reference))
    except Overflow:
        return None


def _mean(values: list[Decimal]) -> Decimal | None:
    """The arithmetic mean of ``values`` (None if empty or too large to represent)."""
    if not values:
        return None
    try:
        with localcontext(DECIMAL_CONTEXT) as ctx:
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
