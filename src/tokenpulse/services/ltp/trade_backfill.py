"""Per-second LTP backfill from the venue's trades, when this instance starts ingesting
(a take-over after the leader died, or a start after downtime; SPEC §5.4).

The minute backfill (:mod:`tokenpulse.services.tokens.backfill`) fills holes of minutes
from 1-minute candles; a take-over leaves a hole of a few *seconds* of per-second samples
(from the last row the former leader flushed to the first value this instance ingests).
This fills it from ``/0/public/Trades``: a per-second sample is the price of the last trade
in that second, filed with origin ``backfill``. A second in which nothing traded gets no
row, as in live ingestion (the ticker only moves on a trade): nothing is carried forward
or invented, and ``/history`` reports what is left as a gap.

When: once this instance has its own first value of a pair (so the hole is closed on the
right; the later seconds are live), bounded by :data:`FIRST_VALUE_WAIT`. What: the holes of
the last :data:`SPAN` (one missing second or more), one Trades request per page, at most
:data:`MAX_PAGES` pages per pair through the Kraken limiter. Live rows are never replaced,
and a live row for a second written later replaces the backfilled one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

import structlog

from tokenpulse.domain.errors import TokenpulseError
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.time import utcnow
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services._unbroken import Unbroken
from tokenpulse.services.tokens.ports import HistoryStore

log = structlog.get_logger(__name__)

SPAN = timedelta(minutes=10)  # older holes are the minute backfill's (1-minute candles)
MAX_PAGES = 5
PAGE = 1000  # trades per request (Kraken's most)
FIRST_VALUE_WAIT = 30.0  # seconds to wait for this instance's own first value of a pair
POLL = 0.2
#: ``ltp_gaps`` reports holes longer than twice this: consecutive rows > 1 s apart.
ONE_MISSING_SECOND = timedelta(milliseconds=500)


class Trades(Protocol):
    """A Trades answer, e.g. :class:`~tokenpulse.sources.kraken.trades.TradesResult`."""

    @property
    def trades(self) -> Sequence[object]:
        """The trades of the page (a full page means there may be more)."""
        ...

    def last_price_per_second(self) -> list[tuple[datetime, Decimal]]:
        """``(second, last trade price)`` for every second with a trade, oldest first."""
        ...


class TradesProvider(Protocol):
    """A venue's recent trades (e.g. Kraken's, ``sources/kraken/trades.py``)."""

    async def fetch_trades(self, pair: Pair, *, since: datetime, count: int = ...) -> Trades:
        """Trades of ``pair`` from ``since`` on, oldest first (raises a TokenpulseError)."""
        ...


class TradeBackfill:
    """Fills the per-second holes of recent LTP history from the venue's trades."""

    def __init__(
        self,
        repo: HistoryStore,
        trades: TradesProvider,
        *,
        pairs: Sequence[Pair],
        received_at: Callable[[Pair], datetime | None],
        metrics: Metrics | None = None,
        source: str = "kraken_rest",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.repo = repo
        self.trades = trades
        self.pairs = list(pairs)
        self.received_at = received_at
        self.metrics = metrics
        self.source = source
        self.clock = clock
        self._unbroken = Unbroken()  # a cancelled run never cuts a store call in half

    async def settle(self) -> None:
        """Wait for the store operation a cancelled :meth:`run` left running, if any."""
        await self._unbroken.settle()

    async def run(self) -> int:
        """Wait for this instance's first values, then fill each pair; rows written."""
        started = self.clock()
        await self._first_values(started)
        now = self.clock()
        written = 0
        for pair in self.pairs:
            try:
                written += await self.fill(pair, now - SPAN, now)
            except TokenpulseError as exc:
                log.warning("per-second backfill failed", pair=str(pair), error=exc.message)
                if self.metrics is not None:
                    self.metrics.backfill_runs.labels("pair_second", "failed").inc()
        log.info("per-second backfill done", rows=written, since=(now - SPAN).isoformat())
        return written

    async def _first_values(self, started: datetime) -> None:
        deadline = asyncio.get_running_loop().time() + FIRST_VALUE_WAIT
        while asyncio.get_running_loop().time() < deadline:
            seen = [self.received_at(pair) for pair in self.pairs]
            if all(at is not None and at >= started for at in seen):
                return
            await asyncio.sleep(POLL)

    async def fill(self, pair: Pair, start: datetime, end: datetime) -> int:
        """Fill ``pair``'s holes of one second or more in ``[start, end)``; rows written."""
        gaps = await self._unbroken(
            self.repo.ltp_gaps(
                pair, start, end, expected_interval=ONE_MISSING_SECOND, granularity="raw"
            )
        )
        # A hole lies between two rows: the span before the first row in the window is not a
        # take-over's hole but history that never was (a fresh start), and reading it would
        # spend the venue's REST budget that the ticker fallback needs.
        gaps = [(a, b) for a, b in gaps if a > start]
        if not gaps:
            self._count("complete")
            return 0
        samples = await self._samples(pair, gaps[0][0], end)
        inside = [(at, price) for at, price in samples if any(a < at < b for a, b in gaps)]
        written = await self._unbroken(self.repo.write_ltp_points(pair, inside, source=self.source))
        self._count("filled" if written else "complete")
        if written and self.metrics is not None:
            self.metrics.backfill_rows.labels("pair_second").inc(written)
        missing = sum(int((b - a).total_seconds()) - 1 for a, b in gaps)
        log.info(
            "per-second LTP holes filled from trades",
            pair=str(pair),
            holes=len(gaps),
            missing_seconds=missing,
            written=written,
            without_trade=max(missing - len(inside), 0),
        )
        return written

    async def _samples(
        self, pair: Pair, since: datetime, end: datetime
    ) -> list[tuple[datetime, Decimal]]:
        """Last trade price per second in ``[since, end)``, paging through the trades."""
        per_second: dict[datetime, Decimal] = {}
        cursor = since
        for _ in range(MAX_PAGES):
            page = await self.trades.fetch_trades(pair, since=cursor, count=PAGE)
            fresh = [(at, price) for at, price in page.last_price_per_second() if at >= cursor]
            per_second.update((at, price) for at, price in fresh if at < end)
            if len(page.trades) < PAGE or not fresh or fresh[-1][0] >= end:
                break
            if fresh[-1][0] == cursor:  # a page of one second: more than a page traded in it
                break
            cursor = fresh[-1][0]  # its second may go on in the next page: asked again
        return sorted(per_second.items())

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.backfill_runs.labels("pair_second", outcome).inc()


__all__ = ["TradeBackfill", "Trades", "TradesProvider"]
