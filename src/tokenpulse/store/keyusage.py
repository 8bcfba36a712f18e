"""Per-key usage totals shared by every instance in Redis (SPEC §8.7).

One hash per key id, ``<prefix>usage:<key id>``, with the fields ``requests``,
``rate_limited``, ``stream_connections`` and ``stream_messages``. Each instance adds what it
counted since its last write (``HINCRBY``, all keys in one ``MULTI``/``EXEC``, written behind
the requests, never on their path); every write renews the hash's TTL, so a key unused for
``ttl`` seconds leaves nothing behind. Both methods raise
:class:`~tokenpulse.domain.errors.StoreError` when Redis fails, within ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from tokenpulse.domain.errors import StoreError
from tokenpulse.observability._access_metrics import FIELDS

if TYPE_CHECKING:
    import redis.asyncio as aioredis

DEFAULT_TTL = 7 * 86400.0
DEFAULT_TIMEOUT = 1.0


class RedisKeyUsage:
    """The shared usage totals: added to by every instance, read by the admin endpoint."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        key_prefix: str,
        ttl: float = DEFAULT_TTL,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.client = client
        self.prefix = key_prefix + "usage:"
        self.ttl_ms = max(1, int(ttl * 1000))
        self.timeout = timeout

    async def add(self, deltas: Mapping[str, Sequence[int]]) -> None:
        """Add each key's counts (in :data:`FIELDS` order) to its totals, all or none."""
        if not deltas:
            return
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                for key_id, delta in deltas.items():
                    key = self.prefix + key_id
                    for field, value in zip(FIELDS, delta, strict=True):
                        if value:
                            pipe.hincrby(key, field, value)
                    pipe.pexpire(key, self.ttl_ms)
                await asyncio.wait_for(pipe.execute(), self.timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreError(f"key usage not written: {type(exc).__name__}") from exc

    async def read(self, key_id: str) -> dict[str, int]:
        """A key's totals over every instance (zeros when it has none)."""
        try:
            raw = await asyncio.wait_for(self.client.hgetall(self.prefix + key_id), self.timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreError(f"key usage not read: {type(exc).__name__}") from exc
        values = {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in raw.items()}
        return {field: values.get(field, 0) for field in FIELDS}


__all__ = ["RedisKeyUsage"]
