"""LTP ingestion: runs the sources, decides which one serves each pair, and says why.

Sources hand events to a :class:`LatestValueBuffer` through the non-blocking
:func:`buffer_sink` (the composition root creates the buffer and gives it to both ends); one
consumer task drains it into :class:`PriceService`, so a slow cache never stalls a reader.
Streaming sources (Kraken WS, replay) are primary. The Kraken REST client is the fallback: it
is polled — by this supervisor only, never by a client request — for the pairs whose stream is
down, silent beyond ``KRAKEN_FALLBACK_TIMEOUT``, or has no value yet, and by the explicit
refresh endpoint. When the primary venue has no value younger than ``STALE_AFTER`` (its
stream and its REST fallback both failing), the pair fails over per ``LTP_FALLBACK`` to the
cross-venue aggregate or to another venue, and back once the primary recovers. Every switch is
logged, counted, and visible in ``/ready``, ``/api/v1/sources`` and each value's ``source``.
Every ticker of every venue is also recorded in the :class:`VenueBook` (per-venue values and
the aggregate); the other venues' feeds are run by :class:`SecondaryFeeds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import structlog

from tokenpulse.domain.errors import UpstreamError
from tokenpulse.domain.events import DomainEvent, SourceHeartbeat, TickerUpdated
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.ltp.feeds import (
    Assignment,
    Failover,
    RestAnswer,
    RestTickers,
    SecondaryFeeds,
    reason_kind,
    source_report,
    venue_errors,
)
from tokenpulse.services.ltp.prices import PriceService
from tokenpulse.services.ltp.venues import AGGREGATE, VenueBook, venue_of
from tokenpulse.sources._health import LatestValueBuffer, Source, SourceHealth, bind_health_metrics
from tokenpulse.wire.ltp import LtpView

log = structlog.get_logger(__name__)

REST = "kraken_rest"
START_GRACE = 2.0  # seconds a stream gets to deliver its first value before REST steps in
_NOT_LIVE = "not live: "  # the reason of a stream kept for want of a REST fallback


#: What the LTP sources queue for the consumer: the newest event per (source, pair).
TickerBuffer = LatestValueBuffer[tuple[str, Pair], TickerUpdated]


def buffer_sink(buffer: TickerBuffer, prices: PriceService) -> Callable[[DomainEvent], None]:
    """The sink LTP sources call: never blocks; tickers are queued, heartbeats confirm."""

    def sink(event: DomainEvent) -> None:
        if isinstance(event, TickerUpdated):
            ticker = event.ticker
            buffer.put((ticker.source, ticker.pair), event)
        elif isinstance(event, SourceHeartbeat):
            prices.confirm(event.source, event.at.timestamp())

    return sink


class PairFeed(Protocol):
    """What the supervisor asks a streaming source about one pair."""

    def pair_state(self, pair: Pair) -> Any: ...


class LtpSupervisor:
    """Owns the LTP sources and their tasks."""

    def __init__(
        self,
        *,
        prices: PriceService,
        metrics: Metrics,
        streams: Sequence[Source],
        rest: RestTickers | None,
        buffer: TickerBuffer,
        fallback_timeout: float,
        poll_interval: float,
        refresh_timeout: float,
        book: VenueBook | None = None,
        secondary: SecondaryFeeds | None = None,
        failover: Failover | None = None,
    ) -> None:
        self.prices = prices
        self.metrics = metrics
        self.streams = list(streams)
        self.rest = rest
        self.fallback_timeout = fallback_timeout
        self.poll_interval = poll_interval
        self.refresh_timeout = refresh_timeout
        self.book = book
        self.secondary = secondary
        self.failover = failover
        self.primary = failover.primary if failover is not None else "kraken"
        self.fallback = failover.fallback if failover is not None else "none"
        self.rest_name = rest.name if rest is not None else REST
        self._primary_sources = {s.name for s in self.streams} | {self.rest_name}
        self._rest_wanted: set[Pair] = set()
        self._served_aggregate: dict[Pair, LtpView] = {}
        self._published_aggregate: dict[Pair, LtpView] = {}
        self.aggregate_publishers: list[Callable[[LtpView], Awaitable[None]]] = []
        self.buffer = buffer
        self.assignments: dict[Pair, Assignment] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._started = time.monotonic()
        self._wake_poller = asyncio.Event()
        for source in self.streams:
            bind_health_metrics(source.health, metrics)
        if rest is not None:
            bind_health_metrics(rest.health, metrics)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._started = time.monotonic()
        self._spawn(self._consume(), "ingest-consumer")
        for source in self.streams:
            self._spawn(source.run(), f"source-{source.name}")
        self._spawn(self._supervise(), "ingest-supervisor")
        if self.rest is not None:
            self._spawn(self._poll_fallback(), "ingest-rest-fallback")
        if self.secondary is not None:
            for make, name in self.secondary.tasks():
                self._spawn(make(), name)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("ingest task died", task=task.get_name(), error=repr(task.exception()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        # Values read but not yet applied are not lost on a clean stop.
        await self._apply(self.buffer.drain_nowait())

    # ---------------------------------------------------------------- consumer

    async def _consume(self) -> None:
        while True:
            events = await self.buffer.drain()
            await self._apply(events)

    async def _apply(self, events: list[TickerUpdated]) -> None:
        """Apply one drained batch (the newest value per source and pair): each value is
        serialised once; the served ones are accepted together (one cache write, one publish)."""
        touched: dict[Pair, None] = {}
        served: list[LtpView] = []
        for event in events:
            ticker = event.ticker
            view = LtpView.of(ticker)
            if self.book is not None and self.book.record_view(view) is not None:
                touched[ticker.pair] = None
            assigned = self.assignments.get(ticker.pair)
            if ticker.source in self._primary_sources:
                rest_overruled = assigned is not None and assigned.source != self.rest_name
                if ticker.source == self.rest_name and rest_overruled:
                    continue  # a live stream (or a failover) serves this pair
            elif assigned is None or venue_of(ticker.source) != assigned.source:
                continue  # another venue's value: the book has it, /ltp does not serve it
            served.append(view)
        if served:
            try:
                await self.prices.accept_views(served)
            except Exception:  # never let one bad batch stop ingestion
                log.exception("applying tickers failed", values=len(served))
        if touched:
            await self.refresh_aggregates(list(touched))

    async def _accept(self, ticker: Ticker) -> None:
        try:
            await self.prices.accept(ticker)
        except Exception:  # never let one bad value stop ingestion
            log.exception("applying a ticker failed", pair=str(ticker.pair))

    async def refresh_aggregates(self, pairs: Sequence[Pair]) -> None:
        """Recompute the aggregates of ``pairs``; serve them where the aggregate serves."""
        if self.book is None or not self.book.aggregating:
            return
        now = self.prices.clock()
        for pair in pairs:
            _, view = self.book.refresh_aggregate(pair, now)
            if view is not None and self._published_aggregate.get(pair) is not view:
                self._published_aggregate[pair] = view
                await self._publish_aggregate(view)
            assigned = self.assignments.get(pair)
            if assigned is not None:
                await self._serve_assigned(pair, assigned.source, view)

    async def _serve_assigned(self, pair: Pair, source: str, aggregate: LtpView | None) -> None:
        """Serve at once what a switch assigned, without waiting for its next trade."""
        assert self.book is not None
        served = self.prices.view(pair)
        if source == AGGREGATE:
            if aggregate is not None and self._served_aggregate.get(pair) is not aggregate:
                self._served_aggregate[pair] = aggregate
                await self._accept(aggregate.ticker)
            return
        if source in self._primary_sources:  # back from a failover: the primary's own value
            if served is None or served.ticker.source in self._primary_sources:
                return
            view = self.book.view(self.primary, pair)
        else:  # failed over to another venue
            view = self.book.view(source, pair)
        if view is not None and (served is None or served.ticker is not view.ticker):
            await self._accept(view.ticker)

    async def _publish_aggregate(self, view: LtpView) -> None:
        for publish in self.aggregate_publishers:  # the bus: stream pair:X@aggregate
            try:
                await publish(view)
            except Exception:  # a fan-out failure must not stop ingestion
                log.exception("publishing an aggregate failed", pair=str(view.ticker.pair))

    # ---------------------------------------------------------------- decisions

    def _decide(self, pair: Pair) -> tuple[str, str]:
        if self.primary == AGGREGATE:
            return AGGREGATE, "LTP_PRIMARY=aggregate"
        source, reason = self._decide_primary(pair)
        if source != self.rest_name and not reason.startswith(_NOT_LIVE):
            self._rest_wanted.discard(pair)
            return source, reason
        self._rest_wanted.add(pair)
        failover = self.failover
        if failover is None or time.monotonic() - self._started < START_GRACE:
            return source, reason
        target = None if failover.primary_fresh(pair) else failover.target(pair)
        if target is None:
            return source, reason
        why = f"failover (LTP_FALLBACK={self.fallback}): {self.primary} has no value younger "
        return target, why + f"than STALE_AFTER {self.prices.stale_after:g}s; {reason}"

    def _decide_primary(self, pair: Pair) -> tuple[str, str]:
        view = self.prices.view(pair)
        if not self.streams:
            return self.rest_name, "no streaming source configured"
        problems: list[str] = []
        for source in self.streams:
            state_fn = getattr(source, "pair_state", None)
            if state_fn is None:  # e.g. replay: serves whatever it plays
                if source.health.connected:
                    return source.name, f"{source.name} is playing"
                problems.append(f"{source.name} is not running")
                continue
            state = state_fn(pair)
            if not state.connected:
                problems.append(f"{source.name} is disconnected")
            elif not state.subscribed:
                problems.append(f"{source.name} has no subscription for {pair}")
            elif state.silent_for is not None and state.silent_for > self.fallback_timeout:
                problems.append(
                    f"{source.name} silent for {state.silent_for:.1f}s "
                    f"(> KRAKEN_FALLBACK_TIMEOUT {self.fallback_timeout:g}s)"
                )
            elif view is None or view.ticker.source not in self._primary_sources - {self.rest_name}:
                if view is None and time.monotonic() - self._started < START_GRACE:
                    return source.name, f"{source.name} subscribed, waiting for its snapshot"
                if view is None:
                    problems.append(f"{source.name} has no value yet for {pair}")
                else:
                    return source.name, f"{source.name} live"
            else:
                return source.name, f"{source.name} live"
        if self.rest is None:
            return self.streams[0].name, _NOT_LIVE + ("; ".join(problems) or "waiting")
        return self.rest_name, "fallback: " + "; ".join(problems)

    def reassign(self) -> None:
        """Recompute every pair's serving source (logged and counted when it changes)."""
        now = time.time()
        for pair in self.prices.pairs:
            source, reason = self._decide(pair)
            current = self.assignments.get(pair)
            if current is not None and current.source == source:
                current.reason = reason
                continue
            self.assignments[pair] = Assignment(source=source, reason=reason, since=now)
            name = str(pair)
            if current is not None:
                self.metrics.source_serving.labels(name, current.source).set(0)
                log.warning(
                    "serving source changed",
                    pair=name,
                    old=current.source,
                    new=source,
                    reason=reason,
                )
                self.metrics.source_failovers.labels(name, source, reason_kind(reason)).inc()
            self.metrics.source_serving.labels(name, source).set(1)
            if source == self.rest_name:
                self._wake_poller.set()

    async def _supervise(self) -> None:
        interval = min(0.25, self.fallback_timeout / 4)
        while True:
            self.reassign()
            await self.refresh_aggregates(self.prices.pairs)  # venues go stale without a tick
            await asyncio.sleep(interval)

    # ---------------------------------------------------------------- REST fallback

    def _rest_pairs(self) -> list[Pair]:
        """The pairs the primary's stream cannot serve (also while failed over elsewhere)."""
        return [pair for pair in self.assignments if pair in self._rest_wanted]

    async def _poll_fallback(self) -> None:
        assert self.rest is not None
        while True:
            pairs = self._rest_pairs()
            if pairs:
                deadline = time.monotonic() + max(self.poll_interval, 1.0)
                try:
                    result = await self.rest.fetch_tickers(pairs, deadline=deadline)
                except UpstreamError as exc:
                    log.warning(
                        "REST fallback failed", pairs=[str(p) for p in pairs], error=str(exc)
                    )
                else:
                    for ticker in result.tickers:
                        self.buffer.put((ticker.source, ticker.pair), TickerUpdated(ticker))
            self._wake_poller.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_poller.wait(), self.poll_interval)

    async def refresh(self, pairs: Sequence[Pair]) -> tuple[list[Pair], dict[Pair, str]]:
        """Force a REST fetch for ``pairs`` (bounded by ``refresh_timeout``).

        Returns the refreshed pairs and, for each pair that failed, why.
        """
        if self.rest is None:
            reason = f"LTP_PRIMARY={self.primary} has no REST source to refresh from"
            if self.primary == "kraken":
                reason = "the kraken source is not enabled (SOURCES)"
            return [], dict.fromkeys(pairs, reason)
        deadline = time.monotonic() + self.refresh_timeout
        try:
            result = await self.rest.fetch_tickers(pairs, deadline=deadline)
        except UpstreamError as exc:
            return [], dict.fromkeys(pairs, exc.message)
        got = {ticker.pair: ticker for ticker in result.tickers}
        for ticker in got.values():
            if self.book is not None:
                self.book.record(ticker)
            await self.prices.accept(ticker)
        venue = self.primary.capitalize()
        failed = {
            pair: f"{venue} returned no ticker for this pair" + venue_errors(venue, result.errors)
            for pair in pairs
            if pair not in got
        }
        return [pair for pair in pairs if pair in got], failed

    # ---------------------------------------------------------------- reporting

    def healths(self) -> list[SourceHealth]:
        healths = [source.health for source in self.streams]
        if self.rest is not None:
            healths.append(self.rest.health)
        if self.secondary is not None:
            healths.extend(self.secondary.healths())
        return healths

    def report(self) -> dict[str, Any]:
        """Every source's state and role, and which source serves each pair and why."""
        roles = {name: "primary" for name in self._primary_sources}
        roles[self.rest_name] = "fallback"
        policy = {"primary": self.primary, "fallback": self.fallback}
        return source_report(self.healths(), self.assignments, roles, policy)


__all__ = [
    "REST",
    "Assignment",
    "LtpSupervisor",
    "RestAnswer",
    "RestTickers",
    "TickerBuffer",
    "buffer_sink",
]
