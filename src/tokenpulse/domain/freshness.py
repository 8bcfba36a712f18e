"""How old a served value is, and whether that is too old (SPEC §4.6).

One formula for every endpoint and every stream message, so the same value has the same age
everywhere at the same instant. Times are unix seconds (``datetime.timestamp()``): the hot
paths keep them as floats, and one subtraction is all a request pays.
"""

from __future__ import annotations


def age_ms(fresh_at: float, now: float) -> int:
    """Whole milliseconds from ``fresh_at`` to ``now`` (unix seconds); 0 when ``now`` is earlier.

        ``fresh_at`` is when the value was last known current: its receive time, or a later
        confirmation from its source. The difference is rounded to the microsecond first, so float
        noise never turns 1.5 s into 1499 ms (``int(x + 0.5)``: cheaper than ``round`` on the
    hot path).
    """
    elapsed = now - fresh_at
    if elapsed <= 0:
        return 0
    return int(elapsed * 1_000_000 + 0.5) // 1000


def is_stale(age_ms: int, stale_after: float) -> bool:
    """True when a value ``age_ms`` old is older than ``stale_after`` seconds (``STALE_AFTER``)."""
    return age_ms > stale_after * 1000


def stale_at(fresh_at: float, stale_after: float) -> float:
    """The first unix time at which a value current as of ``fresh_at`` is stale."""
    return fresh_at + stale_after + 0.001


__all__ = ["age_ms", "is_stale", "stale_at"]
