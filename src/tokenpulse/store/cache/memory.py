"""In-process cache: a dict of ``key -> (value, expires_at)`` plus a heap of expiry times.

Reads are a dict lookup and one clock comparison. Expired entries are never returned; they
are removed lazily when read and by a small incremental sweep of the expiry heap on every
write, so memory stays bounded without a background task. At ``max_entries`` the entry that
expires soonest makes room. Every method body runs without an ``await``, so the dict is never
seen half-updated by another task on the event loop.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from tokenpulse.store.cache.base import check_ttl

if TYPE_CHECKING:
    from prometheus_client import Counter

    from tokenpulse.observability.metrics import Metrics

BACKEND = "memory"
# Expired heap entries removed per write: more than one, so the sweep outpaces inserts.
SWEEP_BATCH = 16
# Rebuild the heap when stale entries (from overwrites) outnumber live ones this much.
HEAP_SLACK_FACTOR = 2
HEAP_SLACK_MIN = 1024


class MemoryCache:
    """The :class:`~tokenpulse.store.cache.base.Cache` port in process memory (one instance)."""

    backend = BACKEND

    def __init__(
        self,
        default_ttl: float,
        max_entries: int,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_ttl(default_ttl, default_ttl)
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries!r}")
        self.default_ttl = default_ttl
        self.max_entries = max_entries
        self._clock = clock
        self._metrics = metrics
        self._entries: dict[str, tuple[bytes, float]] = {}
        # (expires_at, key); an entry is stale when the dict no longer holds that expiry.
        self._heap: list[tuple[float, str]] = []
        self._children: dict[tuple[str, str], Counter] = {}
        self._expired: Counter | None = None
        self._capacity: Counter | None = None
        self._hits: Counter | None = None
        if metrics is not None:
            self._hits = metrics.cache_operations.labels(
                backend=BACKEND, operation="get", result="hit"
            )
            self._expired = metrics.cache_evictions.labels(backend=BACKEND, reason="expired")
            self._capacity = metrics.cache_evictions.labels(backend=BACKEND, reason="capacity")

    def _count(self, operation: str, result: str, amount: int = 1) -> None:
        if self._metrics is None or amount == 0:
            return
        child = self._children.get((operation, result))
        if child is None:
            child = self._metrics.cache_operations.labels(
                backend=BACKEND, operation=operation, result=result
            )
            self._children[operation, result] = child
        child.inc(amount)

    def _lookup(self, key: str, now: float) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._entries[key]
            if self._expired is not None:
                self._expired.inc()
            return None
        return entry[0]

    def _sweep(self, now: float, limit: int | None = SWEEP_BATCH) -> None:
        """Pop due heap entries (at most ``limit``), deleting those still current."""
        heap, entries = self._heap, self._entries
        removed = 0
        budget = limit
        while heap and heap[0][0] <= now and (budget is None or budget > 0):
            expires_at, key = heapq.heappop(heap)
            if budget is not None:
                budget -= 1
            entry = entries.get(key)
            if entry is not None and entry[1] == expires_at:
                del entries[key]
                removed += 1
        if removed and self._expired is not None:
            self._expired.inc(removed)

    def _make_room(self, now: float) -> None:
        """Evict the entry expiring soonest until there is room for one more key."""
        self._sweep(now, limit=None)
        heap, entries = self._heap, self._entries
        while len(entries) >= self.max_entries and heap:
            expires_at, key = heapq.heappop(heap)
            entry = entries.get(key)
            if entry is not None and entry[1] == expires_at:
                del entries[key]
                if self._capacity is not None:
                    self._capacity.inc()

    def _store(self, key: str, value: bytes, expires_at: float, now: float) -> None:
        entries = self._entries
        if key not in entries and len(entries) >= self.max_entries:
            self._make_room(now)
        entries[key] = (value, expires_at)
        heapq.heappush(self._heap, (expires_at, key))

    def _compact(self) -> None:
        """Drop stale heap entries left by overwrites once they dominate the heap."""
        if len(self._heap) > HEAP_SLACK_FACTOR * len(self._entries) + HEAP_SLACK_MIN:
            self._heap = [(expires_at, key) for key, (_, expires_at) in self._entries.items()]
            heapq.heapify(self._heap)

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        entry = self._entries.get(key)
        if entry is not None and entry[1] > self._clock():
            if self._hits is not None:
                self._hits.inc()
            return entry[0]
        if entry is not None:
            self._lookup(key, self._clock())  # expired: evict it now
        self._count("get", "miss")
        return None

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values in the order of ``keys`` (None for each absent or expired one)."""
        now = self._clock()
        values = [self._lookup(key, now) for key in keys]
        misses = values.count(None)
        self._count("get_many", "hit", len(values) - misses)
        self._count("get_many", "miss", misses)
        return values

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (None: the default TTL)."""
        seconds = check_ttl(ttl, self.default_ttl)
        now = self._clock()
        self._sweep(now)
        self._store(key, value, now + seconds, now)
        self._compact()
        self._count("set", "ok")

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Store several entries with one TTL."""
        seconds = check_ttl(ttl, self.default_ttl)
        now = self._clock()
        self._sweep(now, limit=SWEEP_BATCH * max(1, len(items)))
        expires_at = now + seconds
        for key, value in items.items():
            self._store(key, value, expires_at, now)
        self._compact()
        self._count("set_many", "ok")

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True when it existed and had not expired."""
        now = self._clock()
        existed = self._lookup(key, now) is not None
        if existed:
            del self._entries[key]
        self._count("delete", "ok")
        return existed

    async def scan(self, prefix: str) -> dict[str, bytes]:
        """Every live entry whose key starts with ``prefix``."""
        now = self._clock()
        self._sweep(now, limit=None)
        found = {
            key: value
            for key, (value, expires_at) in self._entries.items()
            if key.startswith(prefix) and expires_at > now
        }
        self._count("scan", "ok")
        return found

    async def count(self) -> int:
        """Number of live entries; also sets the ``cache_keys`` gauge."""
        self._sweep(self._clock(), limit=None)
        live = len(self._entries)
        if self._metrics is not None:
            self._metrics.cache_keys.labels(backend=BACKEND).set(live)
        self._count("count", "ok")
        return live

    async def ping(self) -> None:
        """Always usable: the cache is a dict."""
        self._count("ping", "ok")

    async def close(self) -> None:
        """Drop every entry."""
        self._entries.clear()
        self._heap.clear()
