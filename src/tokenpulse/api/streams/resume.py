"""Resume ids: a reconnecting Socket.IO client gets its subscriptions back (SPEC §7.1).

Each connection has a resume id (returned in every ack). When it goes away, its named
subscriptions (with their intervals) and wildcards are kept under that id for ``ttl``
seconds, for the same principal only; ``auth: {resume}`` or a ``resume`` event restores them,
followed by fresh snapshots. The store is bounded (oldest first out) and per instance: a
client resuming on another instance simply resubscribes.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_TTL = 300.0
DEFAULT_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class SavedSubscriptions:
    """What a connection was subscribed to when it went away."""

    principal: str | None
    saved_at: float
    keys: dict[str, int | None]  # stream key -> min_interval_ms (None: adaptive)
    wildcards: dict[str, bool]  # key prefix -> bulk


class ResumeStore:
    """Saved subscriptions by resume id, expiring after ``ttl``, at most ``max_entries``."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._saved: OrderedDict[str, SavedSubscriptions] = OrderedDict()

    def __len__(self) -> int:
        return len(self._saved)

    def save(
        self,
        resume_id: str,
        principal: str | None,
        keys: dict[str, int | None],
        wildcards: dict[str, bool],
    ) -> None:
        """Keep a connection's subscriptions (nothing to keep: nothing stored)."""
        if not keys and not wildcards:
            return
        now = self.clock()
        self._expire(now)  # on every save too: a churn of clients that never resume is bounded
        self._saved[resume_id] = SavedSubscriptions(principal, now, keys, wildcards)
        self._saved.move_to_end(resume_id)
        while len(self._saved) > self.max_entries:
            self._saved.popitem(last=False)

    def _expire(self, now: float) -> None:
        """Drop the entries older than ``ttl`` (the oldest are first)."""
        while self._saved:
            oldest = next(iter(self._saved.values()))
            if now - oldest.saved_at <= self.ttl:
                break
            self._saved.popitem(last=False)

    def take(self, resume_id: str, principal: str | None) -> SavedSubscriptions | None:
        """The saved subscriptions of ``resume_id`` for ``principal``, removed from the store."""
        self._expire(self.clock())
        saved = self._saved.get(resume_id)
        if saved is None or saved.principal != principal:
            return None
        del self._saved[resume_id]
        return saved


__all__ = ["ResumeStore", "SavedSubscriptions"]
