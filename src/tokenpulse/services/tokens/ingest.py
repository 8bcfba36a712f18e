"""Token ingestion: the market scheduler (or the replay) feeds the token service; history is
written in batches, rolled up, trimmed and backfilled in the background.

The scheduler's sink (:func:`quote_sink`) never blocks: quotes go through a latest-value
buffer, created by the composition root and given to both ends, to one consumer task that
applies them. Everything here runs only where this instance ingests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any, Protocol

import structlog

from tokenpulse.domain.errors import TokenpulseError
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.time import utcnow
from tokenpulse.domain.tokens import TokenQuote
from tokenpulse.services.ltp.trade_backfill import TradeBackfill
from tokenpulse.services.tokens.backfill import Backfiller
from tokenpulse.services.tokens.ports import HistoryBatcher, HistoryStore
from tokenpulse.services.tokens.service import TokenService
from tokenpulse.sources._health import LatestValueBuffer

log = structlog.get_logger(__name__)

#: How often closed minutes are rolled up: a minute's 1m bucket exists within this (plus a
#: writer flush, at most a second) of its end. A pass with nothing queued is one small query.
ROLLUP_INTERVAL = 2.0
RETENTION_INTERVAL = 3600.0
BACKFILL_INTERVAL = 600.0  # look for gaps (downtime, a source outage) this often


class QuoteSource(Protocol):
    """The market scheduler or the token replay."""

    async def run(self) -> None: ...

    def state(self) -> dict[str, Any]: ...


#: What the quote source queues for the consumer: the newest batch per source.
QuoteBuffer = LatestValueBuffer[str, list[TokenQuote]]


def quote_sink(buffer: QuoteBuffer) -> Callable[[list[TokenQuote]], None]:
    """The sink a quote source calls: never blocks; a newer batch replaces an unapplied one."""

    def sink(quotes: list[TokenQuote]) -> None:
        if quotes:
            buffer.put(quotes[0].source, quotes)

    return sink


class MarketIngest:
    """Owns the token quote source, the token consumer and the history background work."""

    def __init__(
        self,
        *,
        tokens: TokenService,
        source: QuoteSource | None,
        history: HistoryStore | None,
        writer: HistoryBatcher | None,
        backfiller: Backfiller | None,
        pairs: Sequence[Pair],
        raw_retention: timedelta,
        rollup_retention: timedelta,
        buffer: QuoteBuffer,
        trade_backfill: TradeBackfill | None = None,
    ) -> None:
        self.tokens = tokens
        self.source = source
        self.history = history
        self.writer = writer
        self.backfiller = backfiller
        self.pairs = list(pairs)
        self.raw_retention = raw_retention
        self.rollup_retention = rollup_retention
        self.buffer = buffer
        self.trade_backfill = trade_backfill
        self._tasks: list[asyncio.Task[None]] = []
        self._first_batch = asyncio.Event()
        self._stopping = asyncio.Event()  # ends the maintenance loop between two passes

    async def start(self) -> None:
        """Start the writer, the consumer and the history upkeep (not the provider polls)."""
        self._stopping.clear()
        if self.writer is not None:
            self._spawn(self.writer.run(), "history-writer")
        self._spawn(self._consume(), "token-consumer")
        if self.history is not None:
            self._spawn(self._maintain(), "history-maintenance")

    async def start_sources(self) -> None:
        """Start polling the providers (or the replay) and the backfill: the leader's work."""
        if self.source is not None:
            self._spawn(self.source.run(), "token-source")
        if self.history is not None and self.backfiller is not None:
            self._spawn(self._backfill(), "history-backfill")
        if self.trade_backfill is not None:
            self._spawn(self._fill_seconds(self.trade_backfill), "ltp-second-backfill")

    async def stop_sources(self) -> None:
        """Stop polling (this instance lost the ingest lock); what was read is applied."""
        names = {"token-source", "history-backfill", "ltp-second-backfill"}
        stopping = [task for task in self._tasks if task.get_name() in names]
        for task in stopping:
            task.cancel()
        for task in stopping:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._settle_backfills()  # a store write the cancel left running ends first
        self._tasks = [task for task in self._tasks if task not in stopping]

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_report_death)
        self._tasks.append(task)

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        # The maintenance loop is asked to end, not cancelled: a rollup cut in half by a
        # cancellation would leave its database connection unable to close.
        self._stopping.set()
        graceful = {"history-writer", "history-maintenance"}
        for task in self._tasks:
            if task.get_name() not in graceful:
                task.cancel()
        await self._settle_backfills()
        for task in self._tasks:
            if task.get_name() == "history-maintenance":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), timeout)
                task.cancel()
            if task.get_name() != "history-writer":
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        writer_task = next((t for t in self._tasks if t.get_name() == "history-writer"), None)
        # Quotes read but not applied yet are applied, then history is flushed.
        for batch in self.buffer.drain_nowait():
            await self.tokens.accept(batch)
        if self.writer is not None:
            await self.writer.stop(timeout)
        if writer_task is not None:
            writer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer_task
        self._tasks.clear()

    async def _consume(self) -> None:
        while True:
            for batch in await self.buffer.drain():
                try:
                    await self.tokens.accept(batch)
                except Exception:  # one bad batch must not stop ingestion
                    log.exception("applying token quotes failed")
                self._first_batch.set()

    async def _maintain(self) -> None:
        """Roll up closed minutes every ROLLUP_INTERVAL; trim to the retention every hour."""
        assert self.history is not None
        last_retention = 0.0
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), ROLLUP_INTERVAL)
                return  # stop() asked; the writer's final flush and rollup follow
            now = utcnow()
            try:
                await self.history.rollup(now)
                if loop.time() - last_retention >= RETENTION_INTERVAL:
                    await self.history.apply_retention(
                        now, self.raw_retention, self.rollup_retention
                    )
                    last_retention = loop.time()
            except TokenpulseError as exc:
                log.warning("history maintenance failed; will retry", error=str(exc))

    async def _backfill(self) -> None:
        assert self.backfiller is not None
        await self._wait_first_batch()
        while True:
            ids = [view.snapshot.id for view in self.tokens.views()]
            try:
                report = await self.backfiller.fill(ids, self.pairs, utcnow())
                log.info("backfill pass done", report=str(report))
            except Exception:  # a provider or store outage: next pass
                log.exception("backfill pass failed")
            await asyncio.sleep(BACKFILL_INTERVAL)

    async def _settle_backfills(self) -> None:
        if self.backfiller is not None:
            await self.backfiller.settle()
        if self.trade_backfill is not None:
            await self.trade_backfill.settle()

    @staticmethod
    async def _fill_seconds(backfill: TradeBackfill) -> None:
        """Once per start of ingestion (a take-over, a restart): the per-second holes."""
        try:
            await backfill.run()
        except Exception:  # a provider or store outage: the minute backfill still runs
            log.exception("per-second backfill failed")

    async def _wait_first_batch(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_batch.wait(), 120)

    def state(self) -> dict[str, Any]:
        state = self.source.state() if self.source is not None else {}
        return {"tokens": len(self.tokens), **state}


def _report_death(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("token ingest task died", task=task.get_name(), error=repr(task.exception()))
