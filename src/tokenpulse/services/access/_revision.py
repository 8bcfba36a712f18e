"""The second path of a key change to every instance: the store's revision, polled (SPEC §8.1).

The bus tells an instance about a key change at once, but pub/sub is at-most-once. Every
change also bumps a shared revision (``store/keyrevision.py``); :class:`RevisionWatch` reads
it every ``interval`` seconds and reloads the key cache when it moved, when it could not be
read before (a change may have been missed meanwhile), and when it is first read. Reading it
costs one small Redis round trip, never on a request's path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from tokenpulse.domain.errors import StoreError

log = structlog.get_logger(__name__)

#: Seconds between two reads of the revision: with the reload, well within the 1 s bound.
REVISION_POLL = 0.25


class KeyRevisionPort(Protocol):
    """A counter every key change increments (``store/keyrevision.py``)."""

    async def bump(self) -> int: ...
    async def current(self) -> int: ...


class RevisionWatch:
    """Reload the key cache whenever the shared revision moved."""

    def __init__(
        self,
        revision: KeyRevisionPort,
        reload: Callable[[], Awaitable[None]],
        *,
        interval: float = REVISION_POLL,
    ) -> None:
        self.revision = revision
        self.reload = reload
        self.interval = interval
        self.seen: int | None = None  # the revision the cache reflects; None: unknown
        self.reloads = 0

    async def check(self) -> bool:
        """Read the revision once; reload when it moved. Whether the cache was reloaded."""
        try:
            current = await self.revision.current()
        except StoreError as exc:
            if self.seen is not None:
                log.warning("key revision unreadable; relying on the bus", error=exc.message)
            self.seen = None  # whatever changed meanwhile is reloaded once it is readable
            return False
        if current == self.seen:
            return False
        try:
            await self.reload()
        except StoreError as exc:
            log.warning("key reload failed; retrying", error=exc.message)
            return False  # seen unchanged: the next check tries again
        self.seen = current
        self.reloads += 1
        return True

    async def run(self) -> None:
        """Check every ``interval`` seconds until cancelled."""
        while True:
            await self.check()
            await asyncio.sleep(self.interval)
