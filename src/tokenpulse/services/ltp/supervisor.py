"""LTP ingestion: runs the sources, decides which one serves each pair, and says why.

Sources hand events to a :class:`LatestValueBuffer` through the non-blocking
:func:`buffer_sink` (the composition root creates the buffer and gives it to both ends); one
consumer task drains it into :class:`PriceService`, so a slow cache never stalls a reader.
Streaming sources (Kraken WS, replay) are primary. The Kraken REST client is the fallback: it
is polled — by this supervisor only, never by a client request — for the pairs whose stream is
down, silent beyond ``KRAKEN_FALLBACK_TIMEOUT``, or has no value yet, and by the explicit
refresh endpoint. Every switch is logged, counted, and visible in ``/api/v1/sources``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from tokenpulse.domain.errors import UpstreamError
from tokenpulse.domain.events import DomainEvent, SourceHeartbeat, TickerUpdated
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.time import from_epoch, isoformat_z
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.ltp.prices import PriceService
from tokenpulse.sources._health import LatestValueBuffer, Source, SourceHealth, bind_health_metrics

log = structlog.get_logger(__name__)

REST = "kraken_rest"
START_GRACE = 2.0  # seconds a stream gets to deliver its first value before REST steps in


#: What the LTP sources queue for the consumer: the newest event per (source, pair).
TickerBuffer = LatestValueBuffer[tuple[str, Pair], TickerUpdated]


class RestTickers(Protocol):
    """What the supervisor's fallback polls for prices (the Kraken REST client)."""

    @property
    def health(self) -> SourceHealth: ...

    async def fetch_tickers(
        self, pairs: Sequence[Pair], *, deadline: float | None = None
    ) -> RestAnswer: ...


class RestAnswer(Protocol):
    """One REST answer: the tickers read and the provider's own error strings."""

    @property
    def tickers(self) -> Sequence[Ticker]: ...

    @property
    def errors(self) -> Sequence[str]: ...


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


@dataclass(slots=True)
class Assignment:
    """Which source serves a pair, why, and since when."""

    source: str
    reason: str
    since: float

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "reason": self.reason, "since": self.since}


@dataclass(frozen=True, slots=True)
class UnavailableSource:
    """A configured source this build cannot run; listed so nothing is silently missing."""

    name: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "unavailable",
            "connected": False,
            "state": "unavailable",
            "detail": self.reason,
        }


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
        unavailable: Sequence[UnavailableSource] = (),
    ) -> None:
        self.prices = prices
        self.metrics = metrics
        self.streams = list(streams)
        self.rest = rest
        self.fallback_timeout = fallback_timeout
        self.poll_interval = poll_interval
        self.refresh_timeout = refresh_timeout
        self.unavailable = list(unavailable)
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
        for event in events:
            ticker = event.ticker
            if ticker.source == REST:
                assigned = self.assignments.get(ticker.pair)
                if assigned is not None and assigned.source != REST:
                    continue  # a live stream serves this pair; REST must not overwrite it
            try:
                await self.prices.accept(ticker)
            except Exception:  # never let one bad value stop ingestion
                log.exception("applying a ticker failed", pair=str(ticker.pair))

    # ---------------------------------------------------------------- decisions

    def _decide(self, pair: Pair) -> tuple[str, str]:
        view = self.prices.view(pair)
        if not self.streams:
            return REST, "no streaming source configured"
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
            elif view is None or view.ticker.source == REST:
                if view is None and time.monotonic() - self._started < START_GRACE:
                    return source.name, f"{source.name} subscribed, waiting for its snapshot"
                if view is None:
                    problems.append(f"{source.name} has no value yet for {pair}")
                else:
                    return source.name, f"{source.name} live"
            else:
                return source.name, f"{source.name} live"
        if self.rest is None:
            return self.streams[0].name, "; ".join(problems) or "waiting"
        return REST, "fallback: " + "; ".join(problems)

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
                self.metrics.source_failovers.labels(name, source, _reason_kind(reason)).inc()
            self.metrics.source_serving.labels(name, source).set(1)
            if source == REST:
                self._wake_poller.set()

    async def _supervise(self) -> None:
        interval = min(0.25, self.fallback_timeout / 4)
        while True:
            self.reassign()
            await asyncio.sleep(interval)

    # ---------------------------------------------------------------- REST fallback

    def _rest_pairs(self) -> list[Pair]:
        return [pair for pair, a in self.assignments.items() if a.source == REST]

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
            reason = "the kraken source is not enabled (SOURCES)"
            return [], dict.fromkeys(pairs, reason)
        deadline = time.monotonic() + self.refresh_timeout
        try:
            result = await self.rest.fetch_tickers(pairs, deadline=deadline)
        except UpstreamError as exc:
            return [], dict.fromkeys(pairs, exc.message)
        got = {ticker.pair: ticker for ticker in result.tickers}
        for ticker in got.values():
            await self.prices.accept(ticker)
        failed = {
            pair: "Kraken returned no ticker for this pair" + _kraken_errors(result.errors)
            for pair in pairs
            if pair not in got
        }
        return [pair for pair in pairs if pair in got], failed

    # ---------------------------------------------------------------- reporting

    def healths(self) -> list[SourceHealth]:
        healths = [source.health for source in self.streams]
        if self.rest is not None:
            healths.append(self.rest.health)
        return healths

    def report(self) -> dict[str, Any]:
        """Every source's state and role, and which source serves each pair and why."""
        serving: dict[str, list[str]] = {}
        for pair, assignment in self.assignments.items():
            serving.setdefault(assignment.source, []).append(str(pair))
        sources = []
        for health in self.healths():
            entry = health.to_json()
            entry["role"] = "fallback" if health.name == REST else "primary"
            entry["serving"] = sorted(serving.get(health.name, []))
            sources.append(entry)
        for missing in self.unavailable:
            entry = missing.to_json()
            entry["role"] = "none"
            entry["serving"] = []
            sources.append(entry)
        pairs = {
            str(pair): {
                "source": a.source,
                "reason": a.reason,
                "since": isoformat_z(from_epoch(a.since)),
            }
            for pair, a in sorted(self.assignments.items())
        }
        return {"sources": sources, "pairs": pairs}


def _reason_kind(reason: str) -> str:
    for kind in ("disconnected", "silent", "no value", "no subscription", "live", "playing"):
        if kind in reason:
            return kind.replace(" ", "_")
    return "other"


def _kraken_errors(errors: Sequence[str]) -> str:
    return f" (Kraken said: {', '.join(errors)})" if errors else ""


__all__ = [
    "REST",
    "Assignment",
    "LtpSupervisor",
    "RestTickers",
    "TickerBuffer",
    "UnavailableSource",
    "buffer_sink",
]
