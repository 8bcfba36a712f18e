"""Batched, non-blocking history writes (SPEC §5.2, §13).

Ingest calls :meth:`HistoryWriter.add_token` / :meth:`HistoryWriter.add_ltp`, which only put
the value into a buffer keyed by (key, second) — a newer value for the same second replaces
the older one, as the database would. :meth:`HistoryWriter.run` writes each table's buffer
at most once per ``flush_interval`` (one transaction per table). When the store is down the
rows stay buffered and are written once it answers again; only when a table's buffer holds
``max_buffered`` rows is its oldest row dropped (and counted). :meth:`HistoryWriter.stop`
makes a final flush, bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import structlog

from tokenpulse.domain.errors import StoreError
from tokenpulse.domain.ticker import Ticker, sample_second
from tokenpulse.domain.tokens import TokenSnapshot
from tokenpulse.observability.metrics import Metrics
from tokenpulse.store.history.models import epoch_seconds, snapshot_time
from tokenpulse.store.history.repository import HistoryRepository
from tokenpulse.store.history.spill import load_rows, save_rows

log = structlog.get_logger(__name__)

R = TypeVar("R")
DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_MAX_BUFFERED = 100_000
DEFAULT_RETRY_MAX_INTERVAL = 5.0
DEFAULT_STOP_TIMEOUT = 10.0


@dataclass(slots=True)
class _Entry(Generic[R]):
    row: R
    seq: int
    accepted_at: float  # clock() when the key was first buffered


class _TableBuffer(Generic[R]):
    """Rows of one table keyed by (key, second), oldest first, bounded."""

    def __init__(
        self,
        table: str,
        write: Callable[[Sequence[R]], Awaitable[int]],
        max_rows: int,
        metrics: Metrics | None,
        clock: Callable[[], float],
    ) -> None:
        self.table = table
        self.write = write
        self.max_rows = max_rows
        self.metrics = metrics
        self.clock = clock
        self.entries: OrderedDict[tuple[str, int], _Entry[R]] = OrderedDict()
        self.dropped = 0
        self.failing = False
        self._seq = itertools.count()

    def put(self, key: tuple[str, int], row: R) -> None:
        entry = self.entries.get(key)
        if entry is not None:
            # Same key and second: the newer value wins, the place in the queue is kept.
            entry.row = row
            entry.seq = next(self._seq)
            return
        if len(self.entries) >= self.max_rows:
            self.entries.popitem(last=False)
            self.dropped += 1
            if self.metrics is not None:
                self.metrics.history_dropped_rows.labels(self.table).inc()
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning(
                    "history buffer full, dropping oldest", table=self.table, dropped=self.dropped
                )
        self.entries[key] = _Entry(row, next(self._seq), self.clock())

    def oldest(self) -> float | None:
        for entry in self.entries.values():
            return entry.accepted_at
        return None

    async def flush(self) -> bool:
        """Write everything buffered now in one transaction; True when nothing is left over."""
        if not self.entries:
            return True
        taken = [(key, entry.seq, entry.row) for key, entry in self.entries.items()]
        try:
            await self.write([row for _, _, row in taken])
        except StoreError as exc:
            if self.metrics is not None:
                self.metrics.history_write_errors.inc()
            if not self.failing:
                log.warning(
                    "history store unavailable, buffering",
                    table=self.table,
                    error=exc.message,
                    buffered=len(self.entries),
                )
            self.failing = True
            return False
        for key, seq, _ in taken:
            entry = self.entries.get(key)
            if entry is not None and entry.seq == seq:  # not replaced while writing
                del self.entries[key]
        if self.failing:
            log.info("history store back, buffered rows written", table=self.table, rows=len(taken))
            self.failing = False
        return not self.entries


class HistoryWriter:
    """Buffers live token snapshots and LTP readings and writes them in batches."""

    def __init__(
        self,
        repo: HistoryRepository,
        *,
        metrics: Metrics | None,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        retry_max_interval: float = DEFAULT_RETRY_MAX_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if flush_interval <= 0 or max_buffered < 1:
            raise ValueError("flush_interval must be positive and max_buffered at least 1")
        self.repo = repo
        self.metrics = metrics
        self.flush_interval = flush_interval
        self.retry_max_interval = max(retry_max_interval, flush_interval)
        self._clock = clock
        self._tokens: _TableBuffer[TokenSnapshot] = _TableBuffer(
            "token_snapshots", repo.write_tokens, max_buffered, metrics, clock
        )
        self._ltp: _TableBuffer[Ticker] = _TableBuffer(
            "ltp_samples", repo.write_ltp, max_buffered, metrics, clock
        )
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        if metrics is not None:
            metrics.history_buffered_rows.set_function(lambda: float(self.buffered))
            metrics.history_write_lag.set_function(self.lag)

    # -- ingest side (never blocks, never raises for a full buffer) ----------------------

    def add_token(self, snapshot: TokenSnapshot) -> None:
        """Accept a token snapshot; the last one per token per second is written."""
        self._tokens.put((snapshot.identity.id, epoch_seconds(snapshot_time(snapshot))), snapshot)

    def add_ltp(self, ticker: Ticker) -> None:
        """Accept an LTP reading; the last one per pair per second is written."""
        self._ltp.put((str(ticker.pair), sample_second(ticker)), ticker)

    @property
    def buffered(self) -> int:
        """Rows accepted and not yet written."""
        return len(self._tokens.entries) + len(self._ltp.entries)

    @property
    def dropped(self) -> int:
        """Rows dropped because a buffer was full."""
        return self._tokens.dropped + self._ltp.dropped

    def lag(self) -> float:
        """Seconds since the oldest unwritten row was accepted (0 when all are written)."""
        oldest = [t for t in (self._tokens.oldest(), self._ltp.oldest()) if t is not None]
        return max(0.0, self._clock() - min(oldest)) if oldest else 0.0

    # -- write side ------------------------------------------------------------------------

    async def flush(self) -> bool:
        """Write both buffers now, one transaction each; True when both are empty after."""
        tokens_done = await self._tokens.flush()
        ltp_done = await self._ltp.flush()
        return tokens_done and ltp_done

    async def run(self) -> None:
        """Flush every ``flush_interval`` until :meth:`stop`; back off while the store fails."""
        self._running = True
        self._stopped.clear()
        delay = self.flush_interval
        try:
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    break
                healthy = await self.flush()
                failing = self._tokens.failing or self._ltp.failing
                if failing and not healthy:
                    delay = min(self.retry_max_interval, delay * 2)
                else:
                    delay = self.flush_interval
        finally:
            self._running = False
            self._stopped.set()

    async def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> int:  # noqa: ASYNC109
        """Stop :meth:`run` and write what is left, within ``timeout`` seconds.

        Returns the number of rows that could not be written (0 on a clean shutdown).
        """
        self._stopping.set()
        try:
            async with asyncio.timeout(timeout):
                if self._running:
                    await self._stopped.wait()
                await self.flush()
        except TimeoutError:
            log.warning("history final flush timed out", timeout=timeout)
        return self.buffered  # the runtime accounts for them (one error line, spill, exit)

    # -- shutdown accounting (SPEC §13) ------------------------------------------------------

    def unwritten(self) -> dict[str, int]:
        """Rows still buffered, per table."""
        return {b.table: len(b.entries) for b in (self._tokens, self._ltp)}

    def spill(self, path: Path) -> int:
        """Append every buffered row to the spill file and forget them; returns the rows."""
        written = save_rows(
            path,
            [e.row for e in self._tokens.entries.values()],
            [e.row for e in self._ltp.entries.values()],
        )
        self._tokens.entries.clear()
        self._ltp.entries.clear()
        return written

    def load_spill(self, path: Path) -> int:
        """Buffer the rows of a spill file left by an earlier run and remove it; they are
        written with the next flush (and spilled again if they still cannot be). Returns
        the rows loaded."""
        tokens, ltp, bad = load_rows(path)
        for snapshot in tokens:
            self.add_token(snapshot)
        for ticker in ltp:
            self.add_ltp(ticker)
        if bad:
            log.warning("spill file lines unreadable; skipped", path=str(path), lines=bad)
        path.unlink()
        return len(tokens) + len(ltp)
