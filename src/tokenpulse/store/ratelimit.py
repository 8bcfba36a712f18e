"""Token-bucket rate limiting: one port, a pure refill function, memory and Redis backends.

A bucket holds at most ``capacity`` tokens, refills at ``refill_rate`` tokens per second and
starts full. A request of cost ``c`` is allowed when the bucket holds ``c`` tokens and then
takes them; a denied request takes nothing. A request costing more than the capacity can
never be allowed: it is denied with ``retry_after = math.inf``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import structlog
from redis.exceptions import RedisError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from tokenpulse.observability._plain_counter import PlainChild
    from tokenpulse.observability.metrics import Metrics

log = structlog.get_logger(__name__)

# Float slack so that waiting exactly ``retry_after`` seconds is always enough.
EPSILON = 1e-6
DEFAULT_MAX_KEYS = 100_000
# When the memory limiter exceeds max_keys it prunes down to this share of it, so the
# O(n) prune runs at most once per (1 - share) * max_keys new keys.
PRUNE_TO_SHARE = 0.9
DEFAULT_PROBE_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one acquire, with what the X-RateLimit-* headers need."""

    allowed: bool
    limit: int  # bucket capacity
    remaining: int  # whole tokens left after this request (floor, >= 0)
    retry_after: float  # seconds until `cost` tokens are available; 0.0 when allowed


@runtime_checkable
class RateLimiter(Protocol):
    """A token bucket per key."""

    async def acquire(self, key: str, cost: float = 1.0) -> RateDecision:
        """Take ``cost`` tokens from ``key``'s bucket if it has them."""
        ...

    async def close(self) -> None:
        """Release what the limiter holds."""
        ...


def refill_and_take(
    tokens: float, last: float, now: float, capacity: float, rate: float, cost: float
) -> tuple[bool, float, float]:
    """Refill a bucket from ``last`` to ``now``, then try to take ``cost`` tokens.

    Returns ``(allowed, tokens_after, retry_after)``; the caller stores ``tokens_after`` with
    ``now`` as the new ``last``. A clock that went backwards refills nothing.
    """
    elapsed = now - last
    if elapsed > 0:
        tokens = min(capacity, tokens + elapsed * rate)
    if tokens + EPSILON >= cost:
        return True, max(0.0, tokens - cost), 0.0
    if cost > capacity:
        return False, tokens, math.inf
    return False, tokens, (cost - tokens) / rate


def _check_cost(cost: float) -> None:
    if not 0 <= cost < math.inf:  # also rejects NaN
        raise ValueError(f"cost must be a finite number >= 0, got {cost!r}")


def _check_bucket(capacity: int, refill_rate: float) -> None:
    if capacity < 1:
        raise ValueError(f"capacity must be at least 1, got {capacity!r}")
    if not 0 < refill_rate < math.inf:
        raise ValueError(f"refill_rate must be a positive finite number, got {refill_rate!r}")


class _DecisionCounters:
    """Pre-bound ``rate_limit_decisions`` children (labels() is too slow per request)."""

    __slots__ = ("allowed", "denied", "error")

    def __init__(self, metrics: Metrics) -> None:
        decisions = metrics.rate_limit_decisions
        self.allowed: PlainChild = decisions.labels(decision="allowed")
        self.denied: PlainChild = decisions.labels(decision="denied")
        self.error: PlainChild = decisions.labels(decision="error")


class MemoryRateLimiter:
    """Token buckets in process memory: exact for one instance, N instances multiply limits.

    ``max_keys`` bounds memory: past it, buckets that would be full by now are dropped (they
    are equivalent to absent ones), then the least recently used.
    """

    def __init__(
        self,
        capacity: int,
        refill_rate: float,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        _check_bucket(capacity, refill_rate)
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys!r}")
        self.capacity = capacity
        self.refill_rate = refill_rate
        self.max_keys = max_keys
        self._clock = clock
        self._counters = _DecisionCounters(metrics) if metrics is not None else None
        # key -> [tokens, last]; dict order is recency order (a hit re-inserts at the end).
        self._buckets: dict[str, list[float]] = {}

    async def acquire(self, key: str, cost: float = 1.0) -> RateDecision:
        """Take ``cost`` tokens from ``key``'s bucket: a dict lookup and a few float ops."""
        _check_cost(cost)
        allowed, remaining, retry_after = self.take(key, cost)
        return RateDecision(allowed, self.capacity, remaining, retry_after)

    def take(self, key: str, cost: float) -> tuple[bool, int, float]:
        """:meth:`acquire` without the coroutine, for the edge's direct routes: ``(allowed,
        whole tokens left, retry_after)``. ``cost`` is trusted (checked by the caller once)."""
        now = self._clock()
        capacity = self.capacity
        buckets = self._buckets
        bucket = buckets.pop(key, None)
        if bucket is None:
            bucket = [float(capacity), now]
        allowed, tokens, retry_after = refill_and_take(
            bucket[0], bucket[1], now, capacity, self.refill_rate, cost
        )
        bucket[0] = tokens
        bucket[1] = now
        buckets[key] = bucket
        if len(buckets) > self.max_keys:
            self._prune(now)
        counters = self._counters
        if counters is not None:
            (counters.allowed if allowed else counters.denied).inc()
        return allowed, int(tokens), retry_after

    def _prune(self, now: float) -> None:
        """Drop buckets full by now, then the least recently used, down to the low-water mark."""
        buckets, capacity, rate = self._buckets, self.capacity, self.refill_rate
        full = [
            k for k, (tokens, last) in buckets.items() if tokens + (now - last) * rate >= capacity
        ]
        for key in full:
            del buckets[key]
        excess = len(buckets) - max(1, int(self.max_keys * PRUNE_TO_SHARE))
        if excess > 0:
            for key in list(islice(buckets, excess)):
                del buckets[key]

    async def close(self) -> None:
        """Forget every bucket."""
        self._buckets.clear()


# KEYS[1]: the bucket hash. ARGV: capacity, refill rate (tokens/s), cost.
# Returns {allowed (0/1), whole tokens left, retry_after seconds as a %.17g string}.
# Redis TIME is the clock, so every instance sharing the Redis agrees on it.
BUCKET_SCRIPT_LUA = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then
  tokens = capacity
  last = now
end
if now > last then
  tokens = math.min(capacity, tokens + (now - last) * rate)
  last = now
end
local allowed = 0
local retry_after = 0
if tokens + 1e-6 >= cost then
  allowed = 1
  tokens = math.max(0, tokens - cost)
elseif cost > capacity then
  retry_after = 1 / 0
else
  retry_after = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', last)
local ttl = math.ceil((capacity - tokens) / rate * 1000)
if ttl < 1 then ttl = 1 end
redis.call('PEXPIRE', KEYS[1], ttl)
return {allowed, math.floor(tokens), string.format('%.17g', retry_after)}
"""


class RedisRateLimiter:
    """Token buckets in Redis, one atomic Lua script per request: N instances share a bucket.

    Fails OPEN: when Redis is unreachable every request is allowed (counted as
    ``decision="error"``, logged once per outage), because a cache outage must not take the
    API down. During an outage only one request per ``probe_interval`` seconds tries Redis;
    the others are allowed at once instead of waiting for a timeout.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        capacity: int,
        refill_rate: float,
        key_prefix: str,
        metrics: Metrics | None = None,
        *,
        probe_interval: float = DEFAULT_PROBE_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_bucket(capacity, refill_rate)
        self.capacity = capacity
        self.refill_rate = refill_rate
        self.key_prefix = key_prefix
        self.probe_interval = probe_interval
        self._clock = clock
        self._script = client.register_script(BUCKET_SCRIPT_LUA)
        self._counters = _DecisionCounters(metrics) if metrics is not None else None
        self._down = False
        self._next_probe = 0.0

    async def acquire(self, key: str, cost: float = 1.0) -> RateDecision:
        """Run the bucket script for ``key``; allow (fail open) when Redis fails."""
        _check_cost(cost)
        if self._down:
            now = self._clock()
            if now < self._next_probe:
                return self._fail_open()
            self._next_probe = now + self.probe_interval  # this request is the probe
        try:
            reply: Any = await self._script(
                keys=[self.key_prefix + key], args=[self.capacity, self.refill_rate, cost]
            )
        except (RedisError, OSError) as exc:
            if not self._down:
                self._down = True
                self._next_probe = self._clock() + self.probe_interval
                log.warning(
                    "rate_limiter_redis_unavailable",
                    error=type(exc).__name__,
                    action="allowing requests until Redis answers",
                )
            return self._fail_open()
        if self._down:
            self._down = False
            log.info("rate_limiter_redis_recovered")
        allowed = int(reply[0]) == 1
        counters = self._counters
        if counters is not None:
            (counters.allowed if allowed else counters.denied).inc()
        return RateDecision(
            allowed, self.capacity, max(0, int(reply[1])), 0.0 if allowed else float(reply[2])
        )

    def _fail_open(self) -> RateDecision:
        if self._counters is not None:
            self._counters.error.inc()
        return RateDecision(True, self.capacity, self.capacity, 0.0)

    async def close(self) -> None:
        """Nothing to release: the client belongs to whoever created it."""
