"""Starts and stops what ``bootstrap.py`` built, and runs the roles (SPEC §10).

``ROLE=api`` serves only; ``ROLE=ingest`` runs the sources at once; ``ROLE=all`` runs them at
once on its own, or, with Redis, only while it holds the ingest lock (leader election).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import structlog

from tokenpulse import __version__
from tokenpulse.bootstrap import Container, build_container
from tokenpulse.bus.redis import RedisBus
from tokenpulse.domain.errors import StoreError, StoreModeConflict
from tokenpulse.observability.metrics import Metrics
from tokenpulse.settings import Settings
from tokenpulse.store.history import migrate

log = structlog.get_logger(__name__)

ELECTION_STOP_TIMEOUT = 5.0
#: Seconds each adapter gets to close when shutdown ran out of time.
ABORT_STEP_TIMEOUT = 1.0


class Runtime:
    """The lifecycle of one container: start, the ingest role, and a stop that never raises."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self._election_task: asyncio.Task[None] | None = None
        self.refused: StoreModeConflict | None = None  # why the start was refused, if it was
        self.exit_code = 0  # non-zero when shutdown left history rows unwritten

    @property
    def ingesting(self) -> bool:
        """Whether this instance runs the sources right now."""
        return self.container.state.ingesting

    async def start(self) -> None:
        """Prepare the history store, then ingest: at once, or when elected leader."""
        c = self.container
        await self._prepare_history()
        if c.access is not None:  # keys load from the (now migrated) history store
            await c.access.start()
        self._replay_spill()
        await c.state.reload_latest()  # warm start: the leader's latest values, before ready
        if isinstance(c.bus, RedisBus):
            await c.bus.start()
        if c.replicator is not None:
            c.replicator.start()
        if c.market is not None:
            await c.market.start()
        if c.election is not None:
            campaign = c.election.run(on_elected=self.start_ingest, on_deposed=self.stop_ingest)
            self._election_task = asyncio.create_task(campaign, name="leader-election")
        elif c.settings.ingests:
            await self.start_ingest()
        self._log_started()

    async def start_ingest(self) -> None:
        """Run the sources (this instance is the one that ingests)."""
        c = self.container
        if c.state.ingesting:
            return
        c.state.ingesting = True
        if c.supervisor is not None:
            await c.supervisor.start()
        if c.market is not None:
            await c.market.start_sources()

    async def stop_ingest(self) -> None:
        """Stop the sources (deposed, or shutting down); read values are applied first."""
        c = self.container
        if not c.state.ingesting:
            return
        c.state.ingesting = False
        if c.supervisor is not None:
            with contextlib.suppress(Exception):
                await c.supervisor.stop()
        if c.market is not None:
            with contextlib.suppress(Exception):
                await c.market.stop_sources()

    async def stop(self) -> None:
        """Stop sources, apply what they read, flush history, close — never raises."""
        c = self.container
        if c.election is not None:
            with contextlib.suppress(Exception):
                await c.election.stop()
            if self._election_task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._election_task, ELECTION_STOP_TIMEOUT)
        await self.stop_ingest()
        if c.replicator is not None:
            c.replicator.stop()
        if c.market is not None:
            with contextlib.suppress(Exception):
                await c.market.stop(c.settings.shutdown_timeout / 2)
        if c.access is not None:
            await c.access.stop()
        self._account_unwritten()
        await self._close_adapters(step_timeout=None)

    async def abort(self) -> None:
        """Close the stores and clients at once, after :meth:`stop` ran out of time.

        Whatever is still buffered is not flushed (it is counted and spilled); what matters
        now is that no connection keeps the process alive.
        """
        self._account_unwritten()
        await self._close_adapters(step_timeout=ABORT_STEP_TIMEOUT)

    def _spill_path(self) -> Path | None:
        path = self.container.settings.history_spill_path
        return Path(path) if path else None

    def _replay_spill(self) -> None:
        """Rows an earlier run spilled at shutdown go back into the history buffer."""
        market, path = self.container.market, self._spill_path()
        if market is None or market.writer is None or path is None or not path.exists():
            return
        try:
            rows = market.writer.load_spill(path)
        except OSError as exc:
            log.error("cannot read the history spill file", path=str(path), error=str(exc))
            return
        log.info("replaying history rows spilled at the last shutdown", rows=rows, path=str(path))

    def _account_unwritten(self) -> None:
        """Rows still buffered at shutdown: one error line with the count per table, the
        spill file when configured, and a non-zero exit code (SPEC §13)."""
        market = self.container.market
        if market is None or market.writer is None:
            return
        unwritten = {table: n for table, n in market.writer.unwritten().items() if n}
        if not unwritten:
            return
        for table, count in unwritten.items():
            self.container.metrics.faults.shutdown_unwritten_rows.labels(table).inc(count)
        path, spilled_to = self._spill_path(), None
        if path is not None:
            try:
                market.writer.spill(path)
                spilled_to = str(path)
            except OSError as exc:
                log.error("cannot write the history spill file", path=str(path), error=str(exc))
        self.exit_code = 1
        log.error(
            "history rows not written at shutdown",
            rows=unwritten,
            spilled_to=spilled_to,
            hint="replayed at the next start" if spilled_to else "lost: set HISTORY_SPILL_PATH",
        )

    async def _close_adapters(self, *, step_timeout: float | None) -> None:
        """Close history, bus, HTTP client, cache, limiter and Redis; never raises."""
        c = self.container
        closers = [c.prices.stop_cache_writes, c.bus.close, c.http.aclose, c.cache.close]
        if c.state.warm is not None:
            closers.insert(0, c.state.warm.stop)
        if c.history is not None:
            closers.insert(0, c.history.close)
        if c.limiter is not None:
            closers.append(c.limiter.close)
        if c.redis is not None:
            closers.append(c.redis.aclose)
        for close in closers:
            try:
                await asyncio.wait_for(close(), step_timeout)
            except (Exception, TimeoutError) as exc:  # shutdown goes on whatever one does
                log.warning("closing an adapter failed", error=repr(exc))

    async def _prepare_history(self) -> None:
        """SQLite is migrated in place; PostgreSQL must be at head (`tokenpulse db upgrade`)."""
        history, state = self.container.history, self.container.state
        if history is None:
            return
        url = self.container.settings.database_url
        try:
            if history.dialect == "sqlite":
                await migrate.upgrade(url)
            elif await migrate.current_revision(url) != migrate.head():
                state.history_error = (
                    "the history database is not at the current schema: run `tokenpulse db upgrade`"
                )
                log.error("history store not migrated", hint="tokenpulse db upgrade")
                return
            # Replay and live data never share a store (SPEC §3.6): a conflict stops the start.
            await history.claim_mode(
                "replay" if "replay" in self.container.settings.sources else "live"
            )
        except StoreModeConflict as exc:
            self.refused = exc
            log.error("history store refused", error=str(exc))
            raise
        except StoreError as exc:
            # The service runs without history rather than not at all; /ready says why.
            state.history_error = f"history store unavailable: {exc.message}"
            log.error("history store unavailable", error=exc.message)

    def _log_started(self) -> None:
        """One line at start-up naming what this instance runs and on what."""
        c = self.container
        settings = c.settings
        if c.history is None:
            store = "disabled"
        else:
            store = c.history.dialect if c.state.history_error is None else "unavailable"
        log.info(
            "tokenpulse started",
            version=__version__,
            role=settings.role,
            ingesting="when elected" if c.election is not None else c.state.ingesting,
            sources=settings.sources,
            pairs=settings.supported_pairs,
            tokens=settings.tracked_tokens or f"top {settings.track_top_n}",
            cache=settings.cache_backend,
            store=store,
            bus="redis" if isinstance(c.bus, RedisBus) else "in-process",
            auth=settings.auth_enabled,
        )


def create_runtime(settings: Settings, *, metrics: Metrics | None = None) -> Runtime:
    """The runtime of the container ``settings`` asks for (opens no connection yet)."""
    return Runtime(build_container(settings, metrics=metrics))


__all__ = ["Runtime", "create_runtime"]
