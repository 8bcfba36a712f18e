"""Abuse defence (SPEC §8.6): failed authentications per client IP, then a block.

Each failed authentication takes a token from the client IP's failure bucket (a rate
limiter of its own, ``AUTH_FAILURE_CAPACITY`` / ``AUTH_FAILURE_REFILL_RATE``): once it is
empty the answer is 429 with ``Retry-After`` instead of 401. Failures are also counted per IP
over ``AUTH_BLOCK_FOR``; at ``AUTH_BLOCK_AFTER`` the IP is blocked for ``AUTH_BLOCK_FOR`` —
every ``/api`` request from it gets 429 until the block ends or an admin lifts it.

Blocks live in the block store (Redis when several instances run) and every instance keeps
a copy in memory, told through the bus, so checking one costs a dict lookup. A Redis failure
never blocks anyone: the guard then answers 401 as before.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import orjson
import structlog
from redis.exceptions import RedisError

from tokenpulse.bus.base import EventBus
from tokenpulse.domain.errors import RateLimited
from tokenpulse.observability._access_metrics import AccessMetrics
from tokenpulse.store.authblocks import BlockStore
from tokenpulse.store.ratelimit import RateLimiter

log = structlog.get_logger(__name__)

BLOCKS_TOPIC = "access_blocks"


class FailedAuthGuard:
    """Throttles and blocks client IPs that keep failing to authenticate."""

    def __init__(
        self,
        *,
        limiter: RateLimiter,
        store: BlockStore,
        block_after: int,
        block_for: float,
        bus: EventBus | None = None,
        metrics: AccessMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self.store = store
        self.block_after = block_after
        self.block_for = block_for
        self.bus = bus
        self.metrics = metrics
        self.clock = clock
        self._blocked: dict[str, float] = {}  # ip -> monotonic end of the block
        self._detach: Callable[[], None] | None = None
        if metrics is not None:
            metrics.usage.blocked_ips = lambda: len(self._live())

    @property
    def any_blocked(self) -> bool:
        """Whether any block is known here (when not, no IP needs resolving)."""
        return bool(self._blocked)

    def blocked_for(self, ip: str) -> float:
        """Seconds left of ``ip``'s block (0: not blocked)."""
        until = self._blocked.get(ip)
        if until is None:
            return 0.0
        left = until - self.clock()
        if left <= 0:
            del self._blocked[ip]
            return 0.0
        return left

    def blocked_error(self, left: float) -> RateLimited:
        """The answer to a blocked IP."""
        return RateLimited(
            f"too many failed authentications from this address: blocked for {math.ceil(left)}s",
            retry_after=left,
        )

    async def failed(self, ip: str) -> RateLimited | None:
        """Record a failed authentication from ``ip``; the 429 to answer instead of 401."""
        decision = await self.limiter.acquire("authfail:" + ip)
        try:
            count = await self.store.count_failure(ip, self.block_for)
            if count >= self.block_after:
                await self.block(ip, self.block_for)
                return self.blocked_error(self.block_for)
        except (RedisError, OSError) as exc:
            log.warning("failed-auth counter unavailable", error=type(exc).__name__)
        if not decision.allowed:
            if self.metrics is not None:
                self.metrics.auth_throttled.inc()
            return RateLimited(
                f"too many failed authentications; retry in {math.ceil(decision.retry_after)}s",
                retry_after=decision.retry_after,
            )
        return None

    async def block(self, ip: str, seconds: float) -> None:
        """Block ``ip`` on every instance."""
        await self.store.block(ip, seconds)
        self._blocked[ip] = self.clock() + seconds
        if self.metrics is not None:
            self.metrics.auth_blocks.inc()
        log.warning("client IP blocked after failed authentications", ip=ip, seconds=seconds)
        await self._announce({"op": "block", "ip": ip, "seconds": seconds})

    async def unblock(self, ip: str) -> bool:
        """Lift ``ip``'s block on every instance; whether there was one."""
        known = self._blocked.pop(ip, None) is not None
        removed = await self.store.unblock(ip)
        await self._announce({"op": "unblock", "ip": ip})
        return known or removed

    async def blocks(self) -> dict[str, float]:
        """Every running block: ip -> seconds left (from the shared store)."""
        return await self.store.blocks()

    async def start(self) -> None:
        """Listen for blocks made on other instances and load the running ones."""
        if self.bus is not None and self._detach is None:
            self._detach = self.bus.subscribe(BLOCKS_TOPIC, self._on_message)
        try:
            for ip, left in (await self.store.blocks()).items():
                self._blocked[ip] = self.clock() + left
        except (RedisError, OSError) as exc:
            log.warning("could not load IP blocks", error=type(exc).__name__)

    async def stop(self) -> None:
        """Stop listening."""
        if self._detach is not None:
            self._detach()
            self._detach = None

    def _live(self) -> dict[str, float]:
        now = self.clock()
        self._blocked = {ip: until for ip, until in self._blocked.items() if until > now}
        return self._blocked

    async def _announce(self, message: dict[str, object]) -> None:
        if self.bus is not None:
            await self.bus.publish(BLOCKS_TOPIC, orjson.dumps(message))

    def _on_message(self, _topic: str, payload: bytes) -> None:
        try:
            message = orjson.loads(payload)
            op, ip = message["op"], str(message["ip"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if op == "block":
            seconds = float(message.get("seconds", self.block_for))
            self._blocked[ip] = max(self._blocked.get(ip, 0.0), self.clock() + seconds)
        elif op == "unblock":
            self._blocked.pop(ip, None)
