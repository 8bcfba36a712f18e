"""CreditBudget: the CMC poll interval never lets a month's credits be overspent.

The simulated months drive the real :class:`MarketScheduler` and :class:`CmcClient` against
the fake CMC app in-process (``httpx.ASGITransport``, no socket) with a hand-moved clock:
31 days pass in well under a second, and nothing sleeps.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest

from tests.fakes.coinmarketcap import FakeCmc
from tests.helpers import FakeClock
from tokenpulse.domain.errors import BudgetExhausted
from tokenpulse.domain.tokens import TokenQuote
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.tokens.poller import MarketScheduler
from tokenpulse.sources._health import RequestLimiter
from tokenpulse.sources.coinmarketcap.client import CmcClient
from tokenpulse.sources.coinmarketcap.credits import (
    CreditBudget,
    credits_for,
    month_bounds,
)

JAN_1 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
FEB_1 = datetime(2024, 2, 1, tzinfo=UTC).timestamp()
MAR_1 = datetime(2024, 3, 1, tzinfo=UTC).timestamp()
DAY = 86400.0
JANUARY = 31 * DAY
EPSILON = 1e-6


# --------------------------------------------------------------------------- pure budget


@pytest.mark.parametrize(
    ("points", "per_credit", "credits"),
    [
        *[(1, 200, 1), (100, 200, 1), (200, 200, 1), (201, 200, 2), (500, 200, 3)],
        *[(5000, 200, 25), (0, 200, 1), (100, 100, 1), (101, 100, 2), (3, 100, 1)],
    ],
)
def test_credits_per_call_like_cmc(points: int, per_credit: int, credits: int) -> None:
    assert credits_for(points, per_credit) == credits


def test_month_bounds_cross_years_and_leap_february() -> None:
    assert month_bounds(datetime(2023, 12, 31, 23, 59, tzinfo=UTC).timestamp()) == (
        datetime(2023, 12, 1, tzinfo=UTC).timestamp(),
        JAN_1,
    )
    start, end = month_bounds(FEB_1 + 5 * DAY)
    assert (start, end) == (FEB_1, MAR_1)
    assert end - start == 29 * DAY  # 2024 is a leap year


@pytest.mark.parametrize(
    ("monthly", "per_poll", "interval"),
    [
        (10_000, 1, JANUARY / 10_000),  # 267.84 s: the free plan, top 100
        (10_000, 3, JANUARY / 3333),  # only whole polls fit: 3333 polls, 9999 credits
        (10_000, 25, JANUARY / 400),  # top 5000
        (100, 1, JANUARY / 100),
    ],
)
def test_interval_is_month_seconds_times_credits_over_budget(
    monthly: int, per_poll: int, interval: float
) -> None:
    budget = CreditBudget(monthly, clock=FakeClock(JAN_1))

    assert budget.min_interval(per_poll) == pytest.approx(interval)
    assert budget.min_interval(per_poll) >= JANUARY * per_poll / monthly - EPSILON


def test_interval_stretches_when_the_month_runs_ahead_of_plan() -> None:
    clock = FakeClock(JAN_1 + DAY)
    budget = CreditBudget(10_000, clock=clock)
    budget.record(5_000)  # half the month's credits gone on day one

    remaining = FEB_1 - clock.now
    assert budget.min_interval(1) == pytest.approx(remaining / 5_001)
    assert budget.min_interval(1) > JANUARY / 10_000


def test_spent_month_refuses_until_rollover() -> None:
    clock = FakeClock(JAN_1 + 10 * DAY)
    budget = CreditBudget(10, clock=clock)
    budget.record(9)

    assert budget.can_spend(1)
    assert not budget.can_spend(2)
    with pytest.raises(BudgetExhausted) as caught:
        budget.check(2)
    assert caught.value.resumes_at == FEB_1
    assert "9 of 10 credits" in caught.value.message
    assert budget.min_interval(2) == pytest.approx(FEB_1 - clock.now)

    clock.now = FEB_1
    assert (budget.used, budget.left) == (0, 10)
    assert budget.can_spend(2)
    assert budget.resets_at == MAR_1


def test_exhaust_marks_the_month_spent() -> None:
    clock = FakeClock(JAN_1)
    budget = CreditBudget(10_000, clock=clock)
    budget.record(3)

    budget.exhaust()

    assert budget.left == 0
    assert not budget.can_spend(1)
    assert budget.to_json() == {
        "monthly": 10_000,
        "used_this_month": 10_000,
        "left_this_month": 0,
        "month": "2024-01",
        "resets_at": "2024-02-01T00:00:00.000Z",
    }


def test_budget_needs_a_positive_allowance() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CreditBudget(0)


# --------------------------------------------------------------------------- a simulated month


@dataclass
class Month:
    """A scheduler wired to the fake CMC in-process, with the poll log of the simulation."""

    clock: FakeClock
    budget: CreditBudget
    scheduler: MarketScheduler
    fake: FakeCmc
    cmc: CmcClient
    polls: list[tuple[float, int]] = field(default_factory=list)  # (time, credits charged)

    async def run_until(self, end: float) -> None:
        steps = 0
        while self.clock.now < end:
            delay = await self.scheduler.step()
            self.clock.advance(min(delay, end - self.clock.now))
            steps += 1
            assert steps < 100_000, "the scheduler is busy-waiting"

    def credits_between(self, start: float, end: float) -> int:
        return sum(credits for at, credits in self.polls if start <= at < end)

    def times_between(self, start: float, end: float) -> list[float]:
        return [at for at, _ in self.polls if start <= at < end]


MonthFactory = Callable[..., Month]


@pytest.fixture
async def month_factory(metrics: Metrics) -> AsyncIterator[MonthFactory]:
    clients: list[httpx.AsyncClient] = []

    def make(
        monthly: int, *, poll_interval: float, top_n: int = 10, charge: int | None = None
    ) -> Month:
        fake = FakeCmc()
        fake.charge(charge)
        clock = FakeClock(JAN_1)
        budget = CreditBudget(monthly, clock=clock)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake))
        clients.append(http)
        cmc = CmcClient(
            base_url="http://cmc.test",
            api_key=fake.api_key,
            http=http,
            metrics=metrics,
            request_timeout=5.0,
            max_retries=0,
            limiter=RequestLimiter(2.0, clock=clock),
            clock=clock,
        )
        month: Month

        def sink(quotes: list[TokenQuote]) -> None:
            assert cmc.last_status is not None
            month.polls.append((clock.now, cmc.last_status.credit_count))

        scheduler = MarketScheduler(
            cmc=cmc,
            coingecko=None,
            budget=budget,
            poll_interval=poll_interval,
            sink=sink,
            metrics=metrics,
            track_top_n=top_n,
            clock=clock,
        )
        month = Month(clock, budget, scheduler, fake, cmc)
        return month

    yield make
    for http in clients:
        await http.aclose()


def min_gap(times: list[float]) -> float:
    return min(later - earlier for earlier, later in itertools.pairwise(times))


async def test_a_month_at_1s_poll_interval_spends_exactly_the_budget(
    month_factory: MonthFactory,
) -> None:
    month = month_factory(1_000, poll_interval=1.0)

    await month.run_until(FEB_1)

    times = month.times_between(JAN_1, FEB_1)
    assert month.credits_between(JAN_1, FEB_1) == 1_000  # never more, and none wasted
    assert len(times) == 1_000
    assert times[0] == JAN_1  # the first poll is immediate
    assert min_gap(times) >= JANUARY / 1_000 - EPSILON  # 2678.4 s, whatever the 1 s setting
    assert month.fake.credits_charged == 1_000


async def test_two_credit_polls_are_spaced_twice_as_far(month_factory: MonthFactory) -> None:
    # top 201 costs 2 credits a poll (the recording has 100 coins, so the fake is told to
    # charge what CMC charges for 201)
    month = month_factory(200, poll_interval=60.0, top_n=201, charge=2)

    await month.run_until(FEB_1)

    assert month.credits_between(JAN_1, FEB_1) == 200
    times = month.times_between(JAN_1, FEB_1)
    assert len(times) == 100
    assert min_gap(times) >= JANUARY / 100 - EPSILON
    assert month.fake.listing_requests()[0].params["limit"] == "201"


async def test_a_slow_poll_interval_wins_over_the_budget(month_factory: MonthFactory) -> None:
    month = month_factory(10_000, poll_interval=3600.0)

    await month.run_until(FEB_1)

    times = month.times_between(JAN_1, FEB_1)
    assert len(times) == 31 * 24
    assert min_gap(times) == pytest.approx(3600.0)
    assert month.credits_between(JAN_1, FEB_1) == 31 * 24


async def test_provider_charging_more_than_estimated_still_fits(
    month_factory: MonthFactory,
) -> None:
    month = month_factory(50, poll_interval=1.0, charge=3)

    await month.run_until(FEB_1)

    assert month.credits_between(JAN_1, FEB_1) == 48  # 16 polls of 3: a 17th would make 51
    assert month.scheduler.cmc_credits_per_poll() == 3  # it learned the real price
    assert min_gap(month.times_between(JAN_1, FEB_1)) >= JANUARY / 16 - EPSILON


async def test_spent_budget_stops_polling_until_the_month_rolls_over(
    month_factory: MonthFactory,
) -> None:
    month = month_factory(10, poll_interval=1.0)
    await month.run_until(JAN_1 + 4 * DAY)
    assert month.credits_between(JAN_1, FEB_1) == 2  # polls 3.1 days apart
    month.budget.record(8)  # credits spent elsewhere with the same key: the month is gone

    await month.run_until(JAN_1 + 20 * DAY)

    assert len(month.fake.requests) == 2  # refused before any request
    state = month.scheduler.state()
    assert state["status"] == "failing"
    assert state["last_error"].startswith("cmc_budget_exhausted: 10 of 10 credits used")
    assert state["credits"]["used_this_month"] == 10
    assert state["credits"]["left_this_month"] == 0
    assert state["credits"]["resets_at"] == "2024-02-01T00:00:00.000Z"
    assert state["next_poll_at"] == "2024-02-01T00:00:00.000Z"  # no busy polling meanwhile

    await month.run_until(FEB_1 + 1)

    assert month.times_between(FEB_1, MAR_1) == [FEB_1]  # resumes the moment February begins
    assert month.budget.used == 1
    assert month.scheduler.state()["status"] == "ok"


async def test_two_months_in_a_row_each_stay_within_budget(month_factory: MonthFactory) -> None:
    month = month_factory(300, poll_interval=1.0)

    await month.run_until(MAR_1)

    assert month.credits_between(JAN_1, FEB_1) <= 300
    assert month.credits_between(FEB_1, MAR_1) <= 300
    assert month.credits_between(FEB_1, MAR_1) >= 290  # February gets its own allowance
    assert min_gap(month.times_between(FEB_1, MAR_1)) >= 29 * DAY / 300 - EPSILON
