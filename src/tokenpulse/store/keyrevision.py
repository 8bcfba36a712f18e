"""The key store's revision, a counter in Redis that every key change increments (SPEC §8.1).

Pub/sub is at-most-once: an instance whose bus subscription was down or not yet live when a
change was announced never hears of it. So every change (admin API or CLI) also ``INCR``s
``<prefix>auth:keys:revision``, and every instance reads it a few times a second (one
``GET``, never on a request's path) and reloads its key cache when it moved. A revocation then
reaches every instance within a second whether or not its bus message arrived.

Both methods raise :class:`~tokenpulse.domain.errors.StoreError` when Redis fails, within
``timeout`` seconds: the caller decides (the bus and the periodic reload remain).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from tokenpulse.domain.errors import StoreError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

DEFAULT_TIMEOUT = 1.0


class RedisKeyRevision:
    """``<prefix>auth:keys:revision``: bumped by every key change, read by every instance."""

    def __init__(
        self, client: aioredis.Redis, *, key_prefix: str, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.client = client
        self.key = key_prefix + "auth:keys:revision"
        self.timeout = timeout

    async def bump(self) -> int:
        """Count one change of the stored keys; the new revision."""
        try:
            return int(await asyncio.wait_for(self.client.incr(self.key), self.timeout))
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreError(f"key revision not written: {type(exc).__name__}") from exc

    async def current(self) -> int:
        """The revision now (0 before the first change)."""
        try:
            value = await asyncio.wait_for(self.client.get(self.key), self.timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreError(f"key revision not read: {type(exc).__name__}") from exc
        return int(value) if value is not None else 0


__all__ = ["RedisKeyRevision"]
