"""CoinMarketCap's monthly credit budget: how often we may poll so the month is never overspent.

CMC charges credits per call: listings cost 1 credit per 200 coins returned, quotes 1 per
100 (both rounded up, at least 1). A plan has a monthly allowance (``CMC_MONTHLY_CREDITS``),
counted per calendar month (UTC) on the free plan. The poll interval follows from it::

    interval = month_seconds × credits_per_poll / monthly_credits

rounded so that only whole polls fit in the month (``month_seconds / (monthly //
credits_per_poll)``), where ``month_seconds`` is the length of the current calendar month.
Two safeguards on top: the credits actually charged (each answer's ``status.credit_count``)
are added up per calendar month, and once the next poll would pass the allowance no poll is
allowed until the month rolls over; and when the month's spending runs ahead of plan, the
interval stretches so the rest lasts until the month ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tokenpulse.domain.errors import BudgetExhausted
from tokenpulse.domain.time import from_epoch, isoformat_z

LISTINGS_COINS_PER_CREDIT = 200
QUOTES_COINS_PER_CREDIT = 100


def credits_for(data_points: int, per_credit: int) -> int:
    """Credits CMC charges for ``data_points`` coins: ``ceil(points / per_credit)``, at least 1."""
    return max(1, math.ceil(max(0, data_points) / per_credit))


def month_bounds(moment: float) -> tuple[float, float]:
    """Start and end (unix seconds) of the UTC calendar month containing ``moment``."""
    day = from_epoch(moment)
    start = datetime(day.year, day.month, 1, tzinfo=UTC)
    end = datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC)
    return start.timestamp(), end.timestamp()


class CreditBudget:
    """Tracks credits spent this calendar month and says how often polling may happen.

    ``clock`` is wall time in unix seconds (injectable for tests). Not persisted: after a
    restart the month starts again from zero, which the pacing covers (a poll every
    ``min_interval`` never spends more than the month's share of the time that is left).
    """

    def __init__(self, monthly_credits: int, *, clock: Callable[[], float] = time.time) -> None:
        if monthly_credits < 1:
            raise ValueError(f"monthly_credits must be at least 1, got {monthly_credits}")
        self.monthly_credits = monthly_credits
        self._clock = clock
        self._month_start, self._month_end = month_bounds(clock())
        self._used = 0

    # ------------------------------------------------------------------ the month

    def _roll(self) -> float:
        now = self._clock()
        if not self._month_start <= now < self._month_end:
            self._month_start, self._month_end = month_bounds(now)
            self._used = 0
        return now

    @property
    def used(self) -> int:
        """Credits charged so far this calendar month."""
        self._roll()
        return self._used

    @property
    def left(self) -> int:
        """Credits left this calendar month (never negative)."""
        self._roll()
        return max(0, self.monthly_credits - self._used)

    @property
    def resets_at(self) -> float:
        """Unix time the next calendar month (and a fresh allowance) begins."""
        self._roll()
        return self._month_end

    # ------------------------------------------------------------------ decisions

    def record(self, credits: int) -> None:
        """Add what the provider charged (its ``status.credit_count``) to this month."""
        self._roll()
        self._used += max(0, credits)

    def exhaust(self) -> None:
        """The provider says this month's allowance is gone (CMC error 1010): stop until reset."""
        self._roll()
        self._used = max(self._used, self.monthly_credits)

    def can_spend(self, credits: int) -> bool:
        """Whether a call costing ``credits`` still fits in this month's allowance."""
        self._roll()
        return self._used + credits <= self.monthly_credits

    def check(self, credits: int) -> None:
        """Raise :class:`BudgetExhausted` unless a call costing ``credits`` fits this month."""
        if not self.can_spend(credits):
            raise BudgetExhausted(
                f"CoinMarketCap credit budget spent: {self._used} of {self.monthly_credits} "
                f"credits used this month, a poll needs {credits}; resumes "
                f"{isoformat_z(from_epoch(self._month_end))}",
                resumes_at=self._month_end,
            )

    def min_interval(self, credits_per_poll: int) -> float:
        """Seconds between polls costing ``credits_per_poll`` so the month is never overspent.

        Meant to be asked right after a poll was charged. The longer of the plan's even pace
        (``month_seconds / (monthly // credits_per_poll)``) and the pace that spreads the polls
        still affordable over the rest of the month (``time_left / (polls_left + 1)``, equal to
        the even pace when spending is on plan). When no poll fits any more, the time until the
        month rolls over.
        """
        now = self._roll()
        cost = max(1, credits_per_poll)
        polls_per_month = self.monthly_credits // cost
        until_reset = self._month_end - now
        if polls_per_month == 0:
            return max(until_reset, 1.0)
        even = (self._month_end - self._month_start) / polls_per_month
        # the polls still affordable, spread so the last one lands before the month ends
        polls_left = max(0, (self.monthly_credits - self._used) // cost)
        return max(even, until_reset / (polls_left + 1))

    def to_json(self) -> dict[str, Any]:
        """This month's numbers, for ``/api/v1/sources``."""
        now = self._roll()
        return {
            "monthly": self.monthly_credits,
            "used_this_month": self._used,
            "left_this_month": max(0, self.monthly_credits - self._used),
            "month": from_epoch(now).strftime("%Y-%m"),
            "resets_at": isoformat_z(from_epoch(self._month_end)),
        }
