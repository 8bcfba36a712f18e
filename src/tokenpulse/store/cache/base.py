"""The cache port.

Values are opaque bytes (callers store pre-serialised JSON, so the hot read path never
re-encodes). Every entry has a TTL in seconds: ``ttl=None`` means the cache's default TTL,
``ttl <= 0`` is rejected with ValueError (and changes nothing), a sub-millisecond TTL is
rounded up to one millisecond, and there is no upper bound. Backend failures raise
:class:`tokenpulse.domain.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

MIN_TTL_SECONDS = 0.001


def check_ttl(ttl: float | None, default: float) -> float:
    """The TTL to apply: the default for None, at least 1 ms, ValueError for <= 0 / NaN."""
    if ttl is None:
        ttl = default
    if not ttl > 0:  # also catches NaN
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return max(ttl, MIN_TTL_SECONDS)


@runtime_checkable
class Cache(Protocol):
    """Key/value cache with per-entry TTL."""

    backend: str
    default_ttl: float

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values in the order of ``keys`` (None for each absent one)."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (None: the default TTL)."""
        ...

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Store several entries with one TTL, in one round trip where the backend can."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True when it existed."""
        ...

    async def scan(self, prefix: str) -> dict[str, bytes]:
        """Every live entry whose key starts with ``prefix``."""
        ...

    async def count(self) -> int:
        """Number of live entries (for the keys gauge)."""
        ...

    async def ping(self) -> None:
        """Raise StoreError when the backend is unusable (readiness)."""
        ...

    async def close(self) -> None:
        """Release connections and background tasks."""
        ...
