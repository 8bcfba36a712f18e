"""Leader election for ``ROLE=all`` instances: the holder of a Redis lock ingests (SPEC §10).

The lock is redis-py's :class:`~redis.asyncio.lock.Lock` (``SET NX PX`` plus atomic Lua for
renewal and release): nothing home-made. The leader renews it every quarter of its TTL (each
Redis call bounded by that quarter, so a stalled Redis cannot hold the loop past a TTL); the
others try to take it on the same cadence, so a dead leader is replaced within about a TTL
and a quarter (``LEADER_TTL``, 2 s by default), and a leader that stops (SIGTERM) releases
it at once. A renewal that finds the lock expired after a blip takes it again when nobody
else did, and steps down only when another instance holds it.

Redis being unreachable must not stop the data (SPEC §13): a leader that cannot renew keeps
leading, and an instance that has not been able to reach Redis for a whole TTL starts
ingesting *provisionally*. Either is "ingesting without the lock" — a warning log line,
the ``tokenpulse_ingesting_without_lock`` gauge and :attr:`LeaderElection.lock_state` (shown
by ``/api/v1/sources``) say so. When Redis answers again, such a leader takes the lock or,
if another instance holds it, steps down. The price of availability is that two instances
may both poll during a network partition; every write they make is an idempotent upsert.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable

import structlog
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from tokenpulse.observability.metrics import Metrics

log = structlog.get_logger(__name__)

Hook = Callable[[], Awaitable[None]]
DEFAULT_TTL = 2.0


async def _nothing() -> None:
    """The hook before :meth:`LeaderElection.run` is given the real ones."""


def instance_id() -> str:
    """A readable id of this process for the lock's value and the logs."""
    return f"{socket.gethostname()}:{os.getpid()}"


class LeaderElection:
    """Campaigns for the ingest lock; :meth:`run` calls its ``on_elected`` / ``on_deposed``."""

    def __init__(
        self,
        redis: Redis,
        *,
        key: str,
        ttl: float = DEFAULT_TTL,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.ttl = ttl
        self.interval = ttl / 4
        self.identity = instance_id()
        self._lock = Lock(redis, key, timeout=ttl, thread_local=False)
        self._on_elected: Hook = _nothing
        self._on_deposed: Hook = _nothing
        self._metrics = metrics
        self._clock = clock
        self._leader = False
        self._provisional = False
        self._unreachable_since: float | None = None
        self._renewed_at = clock()  # the last moment the lock was surely ours
        self._without_lock = False
        self._stopping = asyncio.Event()
        if metrics is not None:
            metrics.leader.set_function(lambda: 1.0 if self._leader else 0.0)
            metrics.faults.ingesting_without_lock.set_function(
                lambda: 1.0 if self.without_lock else 0.0
            )

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def without_lock(self) -> bool:
        """This instance ingests although it cannot hold the lock (Redis unreachable)."""
        if not self._leader:
            return False
        return self._provisional or self._clock() - self._renewed_at > self.ttl

    @property
    def lock_state(self) -> str:
        """``held``, ``not held`` or ``ingesting without the lock`` (for /api/v1/sources)."""
        if self.without_lock:
            return "ingesting without the lock"
        return "held" if self._leader else "not held"

    def _note_lock(self) -> None:
        """Log once when ingesting without the lock starts and when it ends."""
        without = self.without_lock
        if without and not self._without_lock:
            log.warning(
                "ingesting without the ingest lock: Redis is unreachable, another instance "
                "may ingest too",
                instance=self.identity,
            )
        elif self._without_lock and not without:
            log.info("holding the ingest lock again", instance=self.identity)
        self._without_lock = without

    async def run(self, *, on_elected: Hook, on_deposed: Hook) -> None:
        """Campaign until :meth:`stop`, calling the hooks on changes; never raises on Redis
        faults. The hooks are given here, by whoever runs the roles, not at construction."""
        self._on_elected, self._on_deposed = on_elected, on_deposed
        while not self._stopping.is_set():
            if self._leader:
                await self._renew()
            else:
                await self._campaign()
            self._note_lock()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    async def _acquire(self) -> bool:
        """One non-blocking attempt to take the lock, bounded by the renewal interval."""
        acquired = await asyncio.wait_for(
            self._lock.acquire(blocking=False, token=self.identity), self.interval
        )
        if acquired:
            self._renewed_at = self._clock()
        return bool(acquired)

    async def _campaign(self) -> None:
        try:
            acquired = await self._acquire()
        except (RedisError, TimeoutError) as exc:
            now = self._clock()
            if self._unreachable_since is None:
                self._unreachable_since = now
                log.warning("leader election cannot reach Redis", error=repr(exc))
            elif now - self._unreachable_since >= self.ttl:
                self._provisional = True
                await self._elect("Redis unreachable for a whole TTL: ingesting provisionally")
            return
        self._unreachable_since = None
        if acquired:
            await self._elect("holds the ingest lock")

    async def _elect(self, reason: str) -> None:
        self._leader = True
        log.info("ingest leader", reason=reason, key=self.key, instance=self.identity)
        if self._metrics is not None:
            self._metrics.leader_changes.labels("elected").inc()
        await self._run_hook(self._on_elected, "on_elected")

    async def _renew(self) -> None:
        try:
            if self._provisional:
                if await self._acquire():
                    self._provisional = False
                    log.info("Redis is back: took the ingest lock", instance=self.identity)
                else:
                    await self._step_down("Redis is back and another instance holds the lock")
                return
            try:
                await asyncio.wait_for(self._lock.reacquire(), self.interval)
                self._renewed_at = self._clock()
            except LockError:
                # Expired during a blip: take it again unless somebody else has.
                if await self._acquire():
                    log.info("re-acquired the ingest lock after a blip", instance=self.identity)
                else:
                    await self._step_down("the lock is no longer ours")
        except (RedisError, TimeoutError) as exc:
            log.debug("cannot renew the ingest lock; leading on", error=repr(exc))

    async def _step_down(self, reason: str) -> None:
        if not self._leader:
            return
        self._leader = False
        self._provisional = False
        log.warning("stepped down as ingest leader", reason=reason, instance=self.identity)
        if self._metrics is not None:
            self._metrics.leader_changes.labels("deposed").inc()
        await self._run_hook(self._on_deposed, "on_deposed")

    async def _run_hook(self, hook: Hook, name: str) -> None:
        try:
            await hook()
        except Exception:  # ingest start/stop trouble must not end the campaign
            log.exception("leader hook failed", hook=name)

    async def stop(self) -> None:
        """Stop campaigning; a leader runs ``on_deposed`` and releases the lock at once, so
        another instance takes over without waiting for the TTL (a rolling deploy)."""
        self._stopping.set()
        if self._leader:
            await self._step_down("shutting down")
            with contextlib.suppress(LockError, RedisError, TimeoutError):
                await asyncio.wait_for(self._lock.release(), self.ttl)
