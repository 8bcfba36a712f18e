"""The latest accepted values in Redis hashes, for warm starts (SPEC §10).

One hash per kind (``<prefix>latest:ltp`` by pair, ``<prefix>latest:tokens`` by token id),
each field the value's JSON as :mod:`tokenpulse.wire` built it when the ingest leader
accepted it — with its ``received_at``, so an instance that loads it serves it with its true
age. No expiry: an old value is served flagged stale, never invented or dropped. Every Redis
failure becomes :class:`~tokenpulse.domain.errors.StoreError` naming the operation only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from tokenpulse.domain.errors import StoreError

if TYPE_CHECKING:
    import redis.asyncio as aioredis


class RedisLatestValues:
    """Latest values by kind and key in Redis hashes (the warm-start store)."""

    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:
        self._client = client
        self.prefix = prefix

    def _key(self, kind: str) -> str:
        return f"{self.prefix}latest:{kind}"

    async def save(self, kind: str, values: Mapping[str, bytes]) -> None:
        """Store ``values`` (key -> JSON) under ``kind``, replacing older ones of those keys."""
        if not values:
            return
        try:
            mapping: dict[str | bytes, bytes] = {key: body for key, body in values.items()}
            await self._client.hset(self._key(kind), mapping=mapping)  # type: ignore[arg-type]
        except (RedisError, OSError) as exc:
            raise StoreError(f"latest values save failed ({type(exc).__name__})") from exc

    async def load(self, kind: str) -> dict[str, bytes]:
        """Every stored value of ``kind`` by key."""
        try:
            raw = await self._client.hgetall(self._key(kind))
        except (RedisError, OSError) as exc:
            raise StoreError(f"latest values load failed ({type(exc).__name__})") from exc
        return {
            (k.decode() if isinstance(k, bytes) else str(k)): (
                v if isinstance(v, bytes) else str(v).encode()
            )
            for k, v in raw.items()
        }


__all__ = ["RedisLatestValues"]
