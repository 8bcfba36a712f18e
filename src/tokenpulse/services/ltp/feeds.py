"""The feeds of the venues other than the primary one: their streams and REST fallbacks.

The primary venue's feeds are decided pair by pair by the
:class:`~tokenpulse.services.ltp.supervisor.LtpSupervisor`. The other enabled venues feed the
:class:`~tokenpulse.services.ltp.venues.VenueBook` (their own values and the aggregate): each
runs its stream, and its REST client is polled — by this scheduler only, never by a client
request — for the pairs whose stream is disconnected, not subscribed, silent beyond
``KRAKEN_FALLBACK_TIMEOUT`` or without a value yet. Tickers go through the same non-blocking
hand-off buffer as the primary's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import structlog

from tokenpulse.domain.errors import UpstreamError
from tokenpulse.domain.events import TickerUpdated
from tokenpulse.domain.freshness import age_ms
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.time import from_epoch, isoformat_z
from tokenpulse.services.ltp.prices import PriceService
from tokenpulse.services.ltp.venues import AGGREGATE, VenueBook, venue_of
from tokenpulse.sources._health import LatestValueBuffer, Source, SourceHealth

__all__ = [
    "Assignment",
    "Failover",
    "RestAnswer",
    "RestTickers",
    "SecondaryFeeds",
    "VenueFeed",
    "reason_kind",
    "source_report",
    "venue_errors",
]

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Assignment:
    """Which source serves a pair, why, and since when."""

    source: str
    reason: str
    since: float

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "reason": self.reason, "since": self.since}


class RestAnswer(Protocol):
    """One REST answer: the tickers read and the provider's own error strings."""

    @property
    def tickers(self) -> Sequence[Ticker]: ...

    @property
    def errors(self) -> Sequence[str]: ...


class RestTickers(Protocol):
    """A venue's REST ticker client."""

    @property
    def name(self) -> str: ...

    @property
    def health(self) -> SourceHealth: ...

    async def fetch_tickers(
        self, pairs: Sequence[Pair], *, deadline: float | None = None
    ) -> RestAnswer: ...


class FeedStream(Source, Protocol):
    """A venue's streaming source, which can say how it stands for each pair."""

    def pair_state(self, pair: Pair) -> Any: ...


@dataclass(frozen=True, slots=True)
class VenueFeed:
    """A venue's stream and REST fallback (either may be absent)."""

    venue: str
    stream: FeedStream | None
    rest: RestTickers | None


class SecondaryFeeds:
    """Runs the non-primary venues' streams and polls their REST fallbacks."""

    def __init__(
        self,
        feeds: Sequence[VenueFeed],
        *,
        book: VenueBook,
        buffer: LatestValueBuffer[tuple[str, Pair], TickerUpdated],
        fallback_timeout: float,
        poll_interval: float,
    ) -> None:
        self.feeds = list(feeds)
        self.book = book
        self.buffer = buffer
        self.fallback_timeout = fallback_timeout
        self.poll_interval = poll_interval

    def tasks(self) -> list[tuple[Callable[[], Coroutine[Any, Any, None]], str]]:
        """What to run: every stream, and one REST poller per venue that has a client."""
        work: list[tuple[Callable[[], Coroutine[Any, Any, None]], str]] = []
        for feed in self.feeds:
            if feed.stream is not None:
                work.append((feed.stream.run, f"source-{feed.stream.name}"))
            if feed.rest is not None:
                work.append((partial(self._poll, feed), f"{feed.venue}-rest-fallback"))
        return work

    def healths(self) -> list[SourceHealth]:
        healths: list[SourceHealth] = []
        for feed in self.feeds:
            if feed.stream is not None:
                healths.append(feed.stream.health)
            if feed.rest is not None:
                healths.append(feed.rest.health)
        return healths

    def needs_rest(self, feed: VenueFeed, pair: Pair) -> bool:
        """Whether the venue's stream cannot be relied on for ``pair`` right now."""
        if feed.stream is None:
            return True
        state = feed.stream.pair_state(pair)
        if not state.connected or not state.subscribed:
            return True
        if state.silent_for is not None and state.silent_for > self.fallback_timeout:
            return True
        view = self.book.view(feed.venue, pair)
        return view is None

    async def _poll(self, feed: VenueFeed) -> None:
        rest = feed.rest
        assert rest is not None
        while True:
            await asyncio.sleep(self.poll_interval)  # the stream gets one interval first
            pairs = [
                pair
                for pair in self.book.symbols.get(feed.venue, {})
                if self.needs_rest(feed, pair)
            ]
            if not pairs:
                continue
            try:
                answer = await rest.fetch_tickers(
                    pairs, deadline=time.monotonic() + max(self.poll_interval, 1.0)
                )
            except UpstreamError as exc:
                log.warning(
                    "venue REST fallback failed",
                    venue=feed.venue,
                    pairs=[str(p) for p in pairs],
                    error=str(exc),
                )
                continue
            for ticker in answer.tickers:
                self.buffer.put((ticker.source, ticker.pair), TickerUpdated(ticker))


@dataclass(frozen=True, slots=True)
class Failover:
    """What serves a pair while the primary venue has no fresh value (``LTP_FALLBACK``)."""

    book: VenueBook
    prices: PriceService
    primary: str
    fallback: str  # aggregate, a venue, or none

    def primary_fresh(self, pair: Pair) -> bool:
        """Whether the primary venue has a value of ``pair`` younger than ``STALE_AFTER``."""
        view = self.book.view(self.primary, pair)
        if view is None:
            view = self.prices.view(pair)
            if view is not None and venue_of(view.ticker.source) != self.primary:
                view = None
        return view is not None and not self._stale(view.ticker.source, view.received)

    def target(self, pair: Pair) -> str | None:
        """The fallback that can serve ``pair`` now, or None (then nothing changes)."""
        if self.fallback == "none":
            return None
        if self.fallback == AGGREGATE:
            if not self.book.aggregating:
                return None
            return AGGREGATE if self.book.aggregate(pair, self.prices.clock()).price else None
        view = self.book.view(self.fallback, pair)
        if view is None or self._stale(view.ticker.source, view.received):
            return None
        return self.fallback

    def _stale(self, source: str, received: float) -> bool:
        fresh_at = self.prices.fresh_at(source, received)
        return self.prices.is_stale(age_ms(fresh_at, self.prices.clock()))


def source_report(
    healths: Sequence[SourceHealth],
    assignments: Mapping[Pair, Assignment],
    roles: Mapping[str, str],
    policy: dict[str, Any],
) -> dict[str, Any]:
    """``/api/v1/sources``: each source's state and role (primary, fallback, or another
    ``venue`` feeding the aggregate), who serves each pair and why, and the LTP policy."""
    serving: dict[str, list[str]] = {}
    for pair, assignment in assignments.items():
        serving.setdefault(assignment.source, []).append(str(pair))
    sources = []
    for health in healths:
        entry = health.to_json()
        entry["role"] = roles.get(health.name, "venue")
        served = serving.get(health.name, [])
        if entry["role"] == "venue":  # a failover to a venue is assigned to the venue
            served = served + serving.get(venue_of(health.name), [])
        entry["serving"] = sorted(served)
        sources.append(entry)
    pairs = {
        str(pair): {
            "source": a.source,
            "reason": a.reason,
            "since": isoformat_z(from_epoch(a.since)),
        }
        for pair, a in sorted(assignments.items())
    }
    if AGGREGATE in serving:
        policy = {**policy, "aggregate_serving": sorted(serving[AGGREGATE])}
    return {"sources": sources, "pairs": pairs, "ltp": policy}


def reason_kind(reason: str) -> str:
    """The kind of a serving decision's reason, for the failover metric's label."""
    kinds = ("failover", "disconnected", "silent", "no value", "no subscription", "live")
    for kind in (*kinds, "playing"):
        if kind in reason:
            return kind.replace(" ", "_")
    return "other"


def venue_errors(venue: str, errors: Sequence[str]) -> str:
    """The venue's own error strings, as a suffix of a refresh failure."""
    return f" ({venue} said: {', '.join(errors)})" if errors else ""
