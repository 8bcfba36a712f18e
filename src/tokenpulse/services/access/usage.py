"""Per-key usage summed over every instance (SPEC §8.7): this instance's counts, written behind.

Requests, 429s and stream counts are counted in memory on the request path
(:class:`~tokenpulse.observability._access_metrics.KeyUsage`, a dict increment). Every
``interval`` seconds :class:`UsageSync` adds what was counted since the previous write to the
totals every instance shares (``store/keyusage.py``: Redis), so the request path never waits
for Redis. :meth:`UsageSync.usage` answers the admin endpoint: the shared totals plus what
this instance has not written yet, or — when Redis fails — this instance's own counts, saying
so. A failed write keeps its counts for the next one: nothing is lost, nothing counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

import structlog

from tokenpulse.domain.errors import StoreError
from tokenpulse.observability._access_metrics import FIELDS, KeyUsage

log = structlog.get_logger(__name__)

USAGE_FLUSH = 1.0  # seconds between two writes of this instance's counts
STOP_FLUSH_TIMEOUT = 1.0
Scope = Literal["all_instances", "this_instance"]


class UsageStorePort(Protocol):
    """The shared per-key totals (``store/keyusage.py``)."""

    async def add(self, deltas: Mapping[str, Sequence[int]]) -> None: ...
    async def read(self, key_id: str) -> dict[str, int]: ...


class UsageSync:
    """Writes this instance's per-key counts behind the requests; reads the shared totals."""

    def __init__(
        self, counts: KeyUsage, store: UsageStorePort, *, interval: float = USAGE_FLUSH
    ) -> None:
        self.counts = counts
        self.store = store
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def flush(self) -> None:
        """Add what this instance counted since the last write; StoreError when Redis fails
        (the counts stay for the next write)."""
        deltas = self.counts.unsent()
        if not deltas:
            return
        await self.store.add(deltas)
        self.counts.sent(deltas)

    async def usage(self, key_id: str) -> tuple[dict[str, int], Scope]:
        """A key's counts over every instance, or this instance's alone when Redis fails."""
        try:
            totals = await self.store.read(key_id)
        except StoreError as exc:
            log.warning("key usage unavailable; answering this instance's", error=exc.message)
            return self.counts.usage(key_id), "this_instance"
        pending = self.counts.unsent().get(key_id, [0, 0, 0, 0])
        return {f: totals.get(f, 0) + n for f, n in zip(FIELDS, pending, strict=True)}, (
            "all_instances"
        )

    def start(self) -> None:
        """Write every ``interval`` seconds from now on."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="key-usage-sync")

    async def stop(self) -> None:
        """Stop writing; write what is left (bounded)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
            self._task = None
        with contextlib.suppress(StoreError, TimeoutError):
            await asyncio.wait_for(self.flush(), STOP_FLUSH_TIMEOUT)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except StoreError as exc:
                if not self._failing:
                    log.warning("key usage not shared; kept for the next write", error=exc.message)
                self._failing = True
                continue
            self._failing = False
