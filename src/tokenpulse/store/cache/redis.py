"""Redis cache: every key lives under ``key_prefix`` and expires by Redis ``PX``.

The client is passed in (build one with :func:`from_url`) and belongs to whoever created it:
``RedisCache.close()`` does not close it, because the rate limiter and the bus share it.
Every Redis failure becomes :class:`~tokenpulse.domain.errors.StoreError` naming the
operation only (never the URL or the password).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from tokenpulse._redis import glob_escape
from tokenpulse.domain.errors import StoreError
from tokenpulse.store.cache.base import check_ttl

if TYPE_CHECKING:
    from tokenpulse.observability.metrics import Metrics

BACKEND = "redis"
MAX_CONNECTIONS = 64
POOL_TIMEOUT_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 2.0
SOCKET_TIMEOUT_SECONDS = 2.0
HEALTH_CHECK_INTERVAL_SECONDS = 15
RETRIES = 2
RETRY_BACKOFF_BASE_SECONDS = 0.05
RETRY_BACKOFF_CAP_SECONDS = 0.5
SCAN_BATCH = 500
# A TTL beyond this (about 31,700 years) is stored without expiry: Redis rejects expiry
# times that overflow its clock, and no reader could tell the difference.
MAX_PX = 10**15


def from_url(url: str, **overrides: Any) -> aioredis.Redis:
    """An asyncio Redis client for ``url`` with tokenpulse's pool, timeouts and retry policy.

    A blocking pool of 64 connections (a task waits up to 2 s for a free one: redis-py's
    default pool raises MaxConnectionsError past 100 concurrent commands), connect and
    per-operation timeouts of 2 s, a health check on connections idle for 15 s, and two
    retries with jittered exponential backoff on connection errors and timeouts. Responses
    stay bytes (``decode_responses=False``). Keyword ``overrides`` win (pool or connection
    options, e.g. ``retry=None``). The client owns its pool: close it with ``aclose()``.
    """
    options: dict[str, Any] = {
        "max_connections": MAX_CONNECTIONS,
        "timeout": POOL_TIMEOUT_SECONDS,
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": SOCKET_TIMEOUT_SECONDS,
        "health_check_interval": HEALTH_CHECK_INTERVAL_SECONDS,
        # redis.asyncio.retry.Retry, not redis.retry.Retry: the sync one cannot await.
        "retry": Retry(
            ExponentialWithJitterBackoff(
                cap=RETRY_BACKOFF_CAP_SECONDS, base=RETRY_BACKOFF_BASE_SECONDS
            ),
            RETRIES,
        ),
        "decode_responses": False,
    }
    options.update(overrides)
    pool = aioredis.BlockingConnectionPool.from_url(url, **options)
    return aioredis.Redis.from_pool(pool)


def ttl_to_px(seconds: float) -> int | None:
    """Milliseconds for ``PX`` (rounded up, at least 1), or None for "never expires"."""
    millis = seconds * 1000
    if millis >= MAX_PX:
        return None
    # Round away float noise first (0.007 * 1000 == 7.000000000000001) so ceil is exact.
    return max(1, math.ceil(round(millis, 6)))


class RedisCache:
    """The :class:`~tokenpulse.store.cache.base.Cache` port on Redis, shared by instances."""

    backend = BACKEND

    def __init__(
        self,
        client: aioredis.Redis,
        default_ttl: float,
        key_prefix: str,
        metrics: Metrics | None = None,
    ) -> None:
        check_ttl(default_ttl, default_ttl)
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisCache needs a client with decode_responses=False (bytes)")
        self.default_ttl = default_ttl
        self.key_prefix = key_prefix
        self._client = client
        self._metrics = metrics
        self._match_all = glob_escape(key_prefix) + "*"

    def _count(self, operation: str, result: str, amount: int = 1) -> None:
        if self._metrics is not None and amount:
            self._metrics.cache_operations.labels(
                backend=BACKEND, operation=operation, result=result
            ).inc(amount)

    @contextmanager
    def _errors(self, operation: str) -> Iterator[None]:
        """Turn any Redis failure into StoreError, counted as result="error"."""
        try:
            yield
        except (RedisError, OSError) as exc:
            self._count(operation, "error")
            raise StoreError(
                f"cache {operation} failed: Redis error ({type(exc).__name__})"
            ) from exc

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        with self._errors("get"):
            value = cast("bytes | None", await self._client.get(self.key_prefix + key))
        self._count("get", "miss" if value is None else "hit")
        return value

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values in the order of ``keys`` with one MGET."""
        if not keys:
            return []
        prefix = self.key_prefix
        with self._errors("get_many"):
            values = cast("list[bytes | None]", await self._client.mget([prefix + k for k in keys]))
        misses = values.count(None)
        self._count("get_many", "hit", len(values) - misses)
        self._count("get_many", "miss", misses)
        return values

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """SET with PX (milliseconds, rounded up)."""
        px = ttl_to_px(check_ttl(ttl, self.default_ttl))
        with self._errors("set"):
            await self._client.set(self.key_prefix + key, value, px=px)
        self._count("set", "ok")

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """SET PX for every item inside one MULTI/EXEC: all or nothing, one round trip."""
        px = ttl_to_px(check_ttl(ttl, self.default_ttl))
        if not items:
            return
        prefix = self.key_prefix
        with self._errors("set_many"):
            async with self._client.pipeline(transaction=True) as pipe:
                for key, value in items.items():
                    pipe.set(prefix + key, value, px=px)
                await pipe.execute()
        self._count("set_many", "ok")

    async def delete(self, key: str) -> bool:
        """DEL; True when the key existed."""
        with self._errors("delete"):
            removed: int = await self._client.delete(self.key_prefix + key)
        self._count("delete", "ok")
        return removed > 0

    async def scan(self, prefix: str) -> dict[str, bytes]:
        """SCAN for ``key_prefix + prefix`` then MGET in batches (entries gone meanwhile skip)."""
        strip = len(self.key_prefix)
        match = glob_escape(self.key_prefix + prefix) + "*"
        found: dict[str, bytes] = {}
        with self._errors("scan"):
            batch: list[bytes] = []
            async for raw in self._client.scan_iter(match=match, count=SCAN_BATCH):
                batch.append(raw)
                if len(batch) >= SCAN_BATCH:
                    await self._fetch_into(found, batch, strip)
                    batch = []
            if batch:
                await self._fetch_into(found, batch, strip)
        self._count("scan", "ok")
        return found

    async def _fetch_into(self, found: dict[str, bytes], keys: list[bytes], strip: int) -> None:
        values = cast("list[bytes | None]", await self._client.mget(keys))
        for raw, value in zip(keys, values, strict=True):
            if value is not None:
                found[raw.decode()[strip:]] = value

    async def count(self) -> int:
        """Keys under ``key_prefix`` (SCAN, so O(keys)); also sets the ``cache_keys`` gauge."""
        seen: set[bytes] = set()  # SCAN may return a key more than once
        with self._errors("count"):
            async for raw in self._client.scan_iter(match=self._match_all, count=SCAN_BATCH):
                seen.add(raw)
        if self._metrics is not None:
            self._metrics.cache_keys.labels(backend=BACKEND).set(len(seen))
        self._count("count", "ok")
        return len(seen)

    async def ping(self) -> None:
        """PING; StoreError when Redis does not answer."""
        with self._errors("ping"):
            await self._client.ping()
        self._count("ping", "ok")

    async def close(self) -> None:
        """Nothing to release: the client belongs to whoever created it."""
