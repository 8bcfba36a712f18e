"""RedisRateLimiter against a real Redis: the bucket, sharing, expiry and failing open."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from tests.helpers import wait_for
from tokenpulse.observability.metrics import Metrics
from tokenpulse.store.cache.redis import from_url
from tokenpulse.store.ratelimit import RateDecision, RateLimiter, RedisRateLimiter

DEADLINE = 3.0


def decisions(metrics: Metrics, decision: str) -> float:
    value = metrics.registry.get_sample_value(
        "tokenpulse_rate_limit_decisions_total", {"decision": decision}
    )
    return value or 0.0


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis_client = from_url(redis_url)
    yield redis_client
    await redis_client.aclose()


async def test_is_a_rate_limiter(client: aioredis.Redis, redis_prefix: str) -> None:
    limiter = RedisRateLimiter(client, 1, 1.0, key_prefix=redis_prefix)
    assert isinstance(limiter, RateLimiter)
    with pytest.raises(ValueError, match="cost"):
        await limiter.acquire("k", -1.0)
    with pytest.raises(ValueError, match="capacity"):
        RedisRateLimiter(client, 0, 1.0, key_prefix=redis_prefix)


async def test_allows_up_to_capacity_then_denies(
    client: aioredis.Redis, redis_prefix: str, metrics: Metrics
) -> None:
    # 0.1 token/s: the few milliseconds this test takes refill far less than one token.
    limiter = RedisRateLimiter(client, 5, 0.1, key_prefix=redis_prefix, metrics=metrics)
    results = [await limiter.acquire("user") for _ in range(6)]
    assert [d.allowed for d in results] == [True] * 5 + [False]
    assert [d.remaining for d in results] == [4, 3, 2, 1, 0, 0]
    assert results[0] == RateDecision(allowed=True, limit=5, remaining=4, retry_after=0.0)
    denied = results[5]
    assert 9.0 < denied.retry_after <= 10.0
    assert decisions(metrics, "allowed") == 5.0
    assert decisions(metrics, "denied") == 1.0
    assert decisions(metrics, "error") == 0.0
    # Another key has its own bucket.
    assert (await limiter.acquire("other")).allowed


async def test_costs(client: aioredis.Redis, redis_prefix: str) -> None:
    limiter = RedisRateLimiter(client, 10, 0.1, key_prefix=redis_prefix)
    assert (await limiter.acquire("k", 2.5)).remaining == 7
    heavy = await limiter.acquire("k", 8.0)
    assert not heavy.allowed
    assert heavy.remaining == 7
    assert 4.0 < heavy.retry_after <= 5.0
    impossible = await limiter.acquire("k", 11.0)
    assert not impossible.allowed
    assert impossible.retry_after == math.inf
    assert (await limiter.acquire("k", 7.0)).allowed


async def test_refills_over_time(client: aioredis.Redis, redis_prefix: str) -> None:
    limiter = RedisRateLimiter(client, 2, 20.0, key_prefix=redis_prefix)
    denied = await limiter.acquire("k")
    while denied.allowed:  # drain: at 20 tokens/s this ends after a handful of calls
        denied = await limiter.acquire("k")
    started = time.monotonic()
    assert 0 < denied.retry_after <= 0.05

    async def allowed_again() -> bool:
        return (await limiter.acquire("k")).allowed

    await wait_for(allowed_again, DEADLINE)
    # Refill takes real time: about retry_after, not zero.
    assert time.monotonic() - started >= denied.retry_after * 0.5


async def test_instances_share_one_bucket(client: aioredis.Redis, redis_prefix: str) -> None:
    first = RedisRateLimiter(client, 3, 0.1, key_prefix=redis_prefix)
    second = RedisRateLimiter(client, 3, 0.1, key_prefix=redis_prefix)
    assert (await first.acquire("shared")).allowed
    assert (await second.acquire("shared")).remaining == 1
    assert (await first.acquire("shared")).allowed
    assert not (await second.acquire("shared")).allowed
    # A limiter on another prefix does not see that bucket.
    elsewhere = RedisRateLimiter(client, 3, 0.1, key_prefix=redis_prefix + "other:")
    assert (await elsewhere.acquire("shared")).remaining == 2


async def test_concurrent_requests_never_exceed_capacity(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    limiters = [RedisRateLimiter(client, 50, 0.1, key_prefix=redis_prefix) for _ in range(4)]
    results = await asyncio.gather(*(limiters[i % 4].acquire("hot") for i in range(200)))
    assert sum(d.allowed for d in results) == 50


async def test_idle_bucket_expires_when_it_would_be_full(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    limiter = RedisRateLimiter(client, 5, 1.0, key_prefix=redis_prefix)
    await limiter.acquire("k", 2.0)  # 3 tokens left: full again in 2 s
    pttl = await client.pttl(redis_prefix + "k")
    assert 1500 < pttl <= 2000
    state = await client.hgetall(redis_prefix + "k")
    assert set(state) == {b"tokens", b"ts"}
    assert float(state[b"tokens"]) == pytest.approx(3.0, abs=0.01)

    fast = RedisRateLimiter(client, 1, 20.0, key_prefix=redis_prefix)
    await fast.acquire("quick")  # empty: full again in 50 ms, then the key goes away

    async def gone() -> bool:
        return not await client.exists(redis_prefix + "quick")

    await wait_for(gone, DEADLINE)


async def test_fails_open_when_redis_is_unreachable(metrics: Metrics) -> None:
    # Port 1 on loopback is closed; no retries so the test does not wait on backoff.
    dead = from_url("redis://:s3cret@127.0.0.1:1/0", retry=None)
    limiter = RedisRateLimiter(dead, 1, 0.1, key_prefix="p:", metrics=metrics)
    try:
        with capture_logs() as logs:
            results = [await limiter.acquire("k") for _ in range(3)]
    finally:
        await dead.aclose()
    assert all(d.allowed for d in results)
    assert results[0] == RateDecision(allowed=True, limit=1, remaining=1, retry_after=0.0)
    assert decisions(metrics, "error") == 3.0
    assert decisions(metrics, "allowed") == 0.0
    warnings = [e for e in logs if e["event"] == "rate_limiter_redis_unavailable"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert "s3cret" not in repr(logs)


async def test_recovers_after_an_outage(
    client: aioredis.Redis, redis_prefix: str, metrics: Metrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = RedisRateLimiter(
        client, 1, 0.1, key_prefix=redis_prefix, metrics=metrics, probe_interval=0.0
    )
    calls = 0

    async def broken(**_: object) -> object:
        nonlocal calls
        calls += 1
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379")

    with capture_logs() as logs:
        working = limiter._script
        monkeypatch.setattr(limiter, "_script", broken)
        assert (await limiter.acquire("k")).allowed
        assert (await limiter.acquire("k")).allowed
        monkeypatch.setattr(limiter, "_script", working)
        assert (await limiter.acquire("k")).allowed  # back on Redis: takes the one token
        assert not (await limiter.acquire("k")).allowed
    assert calls == 2  # probe_interval=0: every request during the outage probes
    events = [e["event"] for e in logs]
    assert events == ["rate_limiter_redis_unavailable", "rate_limiter_redis_recovered"]
    assert decisions(metrics, "error") == 2.0
    assert decisions(metrics, "allowed") == 1.0
    assert decisions(metrics, "denied") == 1.0


async def test_only_one_probe_per_interval_during_an_outage(
    client: aioredis.Redis, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    limiter = RedisRateLimiter(
        client, 1, 0.1, key_prefix=redis_prefix, probe_interval=1.0, clock=lambda: now[0]
    )
    calls = 0

    async def broken(**_: object) -> object:
        nonlocal calls
        calls += 1
        raise RedisConnectionError("down")

    monkeypatch.setattr(limiter, "_script", broken)
    with capture_logs():
        for _ in range(5):
            assert (await limiter.acquire("k")).allowed
        assert calls == 1
        now[0] += 1.0
        for _ in range(5):
            assert (await limiter.acquire("k")).allowed
    assert calls == 2
