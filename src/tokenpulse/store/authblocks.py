"""Failed-authentication counts and IP blocks (SPEC §8.6): in memory, or shared in Redis.

A failure increments the client IP's counter, which lives ``window`` seconds from its first
failure; a block is a key with a TTL. With Redis every instance sees the same counts and
blocks; :meth:`RedisBlockStore.blocks` lists the blocks still running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from redis.exceptions import RedisError

from tokenpulse._redis import glob_escape

if TYPE_CHECKING:
    import redis.asyncio as aioredis


class BlockStore(Protocol):
    """Counts failures per IP and holds blocks."""

    async def count_failure(self, ip: str, window: float) -> int:
        """Add one failure for ``ip``; the number within the window."""
        ...

    async def block(self, ip: str, seconds: float) -> None:
        """Block ``ip`` for ``seconds``."""
        ...

    async def unblock(self, ip: str) -> bool:
        """Lift a block (and forget the failures); whether there was one."""
        ...

    async def blocks(self) -> dict[str, float]:
        """Every running block: ip -> seconds left."""
        ...


class MemoryBlockStore:
    """One instance's failures and blocks."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_ips: int = 100_000) -> None:
        self.clock = clock
        self.max_ips = max_ips
        self._failures: dict[str, tuple[int, float]] = {}
        self._blocks: dict[str, float] = {}

    async def count_failure(self, ip: str, window: float) -> int:
        now = self.clock()
        count, until = self._failures.get(ip, (0, now + window))
        if until <= now:
            count, until = 0, now + window
        self._failures[ip] = (count + 1, until)
        if len(self._failures) > self.max_ips:
            self._failures = {k: v for k, v in self._failures.items() if v[1] > now}
        return count + 1

    async def block(self, ip: str, seconds: float) -> None:
        self._blocks[ip] = self.clock() + seconds

    async def unblock(self, ip: str) -> bool:
        self._failures.pop(ip, None)
        return self._blocks.pop(ip, None) is not None

    async def blocks(self) -> dict[str, float]:
        now = self.clock()
        self._blocks = {ip: until for ip, until in self._blocks.items() if until > now}
        return {ip: until - now for ip, until in self._blocks.items()}


class RedisBlockStore:
    """Failures and blocks in Redis, shared by every instance. Raises RedisError/OSError when
    Redis fails (the caller decides: the guard lets the request through)."""

    def __init__(self, client: aioredis.Redis, *, key_prefix: str) -> None:
        self.client = client
        self.failures = key_prefix + "failures:"
        self.blocked = key_prefix + "blocked:"

    async def count_failure(self, ip: str, window: float) -> int:
        key = self.failures + ip
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.pexpire(key, max(1, int(window * 1000)), nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def block(self, ip: str, seconds: float) -> None:
        await self.client.set(self.blocked + ip, b"1", px=max(1, int(seconds * 1000)))

    async def unblock(self, ip: str) -> bool:
        removed = await self.client.delete(self.blocked + ip, self.failures + ip)
        return bool(removed)

    async def blocks(self) -> dict[str, float]:
        found: dict[str, float] = {}
        match = glob_escape(self.blocked) + "*"
        async for raw in self.client.scan_iter(match=match, count=500):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            left = await self.client.pttl(key)
            if left > 0:
                found[key.removeprefix(self.blocked)] = left / 1000
        return found


__all__ = ["BlockStore", "MemoryBlockStore", "RedisBlockStore", "RedisError"]
