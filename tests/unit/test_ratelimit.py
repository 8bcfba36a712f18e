"""Token-bucket math (properties) and the memory rate limiter with a fake clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import FakeClock
from tokenpulse.observability.metrics import Metrics
from tokenpulse.store.ratelimit import (
    MemoryRateLimiter,
    RateDecision,
    RateLimiter,
    refill_and_take,
)


def decisions(metrics: Metrics, decision: str) -> float:
    value = metrics.registry.get_sample_value(
        "tokenpulse_rate_limit_decisions_total", {"decision": decision}
    )
    return value or 0.0


# --- the pure function -------------------------------------------------------------------

capacities = st.integers(min_value=1, max_value=1000)
rates = st.floats(min_value=0.001, max_value=1000.0)
costs = st.floats(min_value=0.0, max_value=50.0)
elapsed = st.floats(min_value=0.0, max_value=10_000.0)


@st.composite
def buckets(draw: st.DrawFn) -> tuple[float, float, float, float, float]:
    """(tokens, elapsed, capacity, rate, cost) with 0 <= tokens <= capacity."""
    capacity = draw(capacities)
    tokens = draw(st.floats(min_value=0.0, max_value=float(capacity)))
    return tokens, draw(elapsed), float(capacity), draw(rates), draw(costs)


@given(buckets())
def test_tokens_stay_between_zero_and_capacity(
    bucket: tuple[float, float, float, float, float],
) -> None:
    tokens, dt, capacity, rate, cost = bucket
    _, after, _ = refill_and_take(tokens, 100.0, 100.0 + dt, capacity, rate, cost)
    assert 0.0 <= after <= capacity


@given(buckets())
def test_denied_request_takes_nothing(bucket: tuple[float, float, float, float, float]) -> None:
    tokens, dt, capacity, rate, cost = bucket
    allowed, after, retry_after = refill_and_take(tokens, 0.0, dt, capacity, rate, cost)
    refilled = min(capacity, tokens + dt * rate)
    if allowed:
        assert retry_after == 0.0
        assert after == pytest.approx(max(0.0, refilled - cost), abs=1e-6)
    else:
        assert after == refilled
        assert retry_after > 0


@given(buckets())
def test_waiting_retry_after_is_enough(bucket: tuple[float, float, float, float, float]) -> None:
    tokens, dt, capacity, rate, cost = bucket
    allowed, after, retry_after = refill_and_take(tokens, 0.0, dt, capacity, rate, cost)
    if allowed:
        return
    if cost > capacity:
        assert retry_after == math.inf
        return
    # Denied now, allowed after exactly retry_after, and not noticeably before.
    assert refill_and_take(after, dt, dt + retry_after, capacity, rate, cost)[0]
    if cost - after > 1e-3:
        assert not refill_and_take(after, dt, dt + retry_after * 0.99, capacity, rate, cost)[0]


@given(
    capacity=capacities,
    rate=rates,
    steps=st.lists(st.tuples(st.floats(0.0, 5.0), st.floats(0.0, 10.0)), max_size=200),
)
def test_never_allows_more_than_capacity_plus_refill(
    capacity: int, rate: float, steps: list[tuple[float, float]]
) -> None:
    """Over any run from a full bucket, allowed cost <= capacity + rate * elapsed."""
    tokens, now, granted = float(capacity), 0.0, 0.0
    for dt, cost in steps:
        allowed, tokens, _ = refill_and_take(tokens, now, now + dt, capacity, rate, cost)
        now += dt
        if allowed:
            granted += cost
        assert granted <= capacity + rate * now + 1e-6 * (1 + len(steps))


def test_clock_going_backwards_refills_nothing() -> None:
    assert refill_and_take(2.0, 10.0, 5.0, 10, 1.0, 1.0) == (True, 1.0, 0.0)
    assert refill_and_take(0.5, 10.0, 5.0, 10, 1.0, 1.0) == (False, 0.5, 0.5)


def test_cost_above_capacity_is_never_allowed() -> None:
    assert refill_and_take(10.0, 0.0, 1e6, 10, 1.0, 11.0) == (False, 10.0, math.inf)


# --- the memory backend ------------------------------------------------------------------


def test_memory_limiter_implements_the_port() -> None:
    assert isinstance(MemoryRateLimiter(1, 1.0), RateLimiter)


@pytest.mark.parametrize(
    ("capacity", "rate"), [(0, 1.0), (1, 0.0), (1, -1.0), (1, math.nan), (1, math.inf)]
)
def test_rejects_bad_buckets(capacity: int, rate: float) -> None:
    with pytest.raises(ValueError, match=r"capacity|refill_rate"):
        MemoryRateLimiter(capacity, rate)


@pytest.mark.parametrize("cost", [-1.0, math.nan, math.inf])
async def test_rejects_bad_costs(cost: float) -> None:
    with pytest.raises(ValueError, match="cost"):
        await MemoryRateLimiter(5, 1.0).acquire("k", cost)


async def test_allows_up_to_capacity_then_denies(clock: FakeClock, metrics: Metrics) -> None:
    limiter = MemoryRateLimiter(3, 2.0, metrics=metrics, clock=clock)
    results = [await limiter.acquire("k") for _ in range(4)]
    assert [d.allowed for d in results] == [True, True, True, False]
    assert [d.remaining for d in results] == [2, 1, 0, 0]
    assert results[0] == RateDecision(allowed=True, limit=3, remaining=2, retry_after=0.0)
    assert results[3].retry_after == pytest.approx(0.5)
    assert decisions(metrics, "allowed") == 3.0
    assert decisions(metrics, "denied") == 1.0


async def test_refills_at_the_rate(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(3, 2.0, clock=clock)
    for _ in range(3):
        await limiter.acquire("k")
    denied = await limiter.acquire("k")
    assert not denied.allowed
    clock.advance(denied.retry_after * 0.9)
    assert not (await limiter.acquire("k")).allowed
    clock.advance(denied.retry_after * 0.1)
    assert (await limiter.acquire("k")).allowed
    clock.advance(3600.0)  # refill never exceeds capacity
    assert (await limiter.acquire("k")).remaining == 2


async def test_costs_and_fractional_remaining(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(10, 1.0, clock=clock)
    assert (await limiter.acquire("k", 2.5)).remaining == 7
    heavy = await limiter.acquire("k", 8.0)
    assert not heavy.allowed
    assert heavy.remaining == 7
    assert heavy.retry_after == pytest.approx(0.5)
    free = await limiter.acquire("k", 0.0)
    assert free.allowed
    assert free.remaining == 7
    too_big = await limiter.acquire("k", 11.0)
    assert not too_big.allowed
    assert too_big.retry_after == math.inf


async def test_keys_have_separate_buckets(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(1, 1.0, clock=clock)
    assert (await limiter.acquire("a")).allowed
    assert not (await limiter.acquire("a")).allowed
    assert (await limiter.acquire("b")).allowed


async def test_prunes_full_buckets_before_recent_ones(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(2, 1.0, clock=clock, max_keys=10)
    for i in range(5):
        await limiter.acquire(f"idle{i}")  # 1 token left, full again after 1 s
    clock.advance(5.0)
    for i in range(6):
        await limiter.acquire(f"busy{i}", 2.0)  # empty
    # 11 keys > 10: the idle buckets are full by now and go first.
    assert set(limiter._buckets) == {f"busy{i}" for i in range(6)}
    assert not (await limiter.acquire("busy0")).allowed


async def test_prunes_least_recently_used_when_none_is_full(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(2, 0.001, clock=clock, max_keys=10)
    for i in range(10):
        await limiter.acquire(f"k{i}", 2.0)
        clock.advance(0.01)
    await limiter.acquire("k0", 0.0)  # touch: k0 becomes the most recently used
    await limiter.acquire("new", 2.0)
    assert len(limiter._buckets) == 9
    assert "k0" in limiter._buckets
    assert "new" in limiter._buckets
    assert "k1" not in limiter._buckets
    # k0 kept its (empty) bucket.
    assert not (await limiter.acquire("k0")).allowed


async def test_close_forgets_buckets(clock: FakeClock) -> None:
    limiter = MemoryRateLimiter(1, 1.0, clock=clock)
    await limiter.acquire("k")
    await limiter.close()
    assert (await limiter.acquire("k")).allowed
