"""Token metrics: the accepted snapshot per token, its quality gates, and ready-made JSON.

The market scheduler hands provider quotes to :meth:`TokenService.accept`, which gives each
its identity, velocity and quality flags, keeps a price jump out until it is corroborated,
writes history, and publishes. Each served snapshot is serialised once
(:class:`~tokenpulse.wire.tokens.TokenView`): the publishers get those bytes, and reads splice
in the age per request (like the LTP path); per query shape the ordered list of ids is cached
until the next update. Every answer gets its age from :meth:`TokenService.age_ms`.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import structlog

from tokenpulse.domain.freshness import age_ms
from tokenpulse.domain.identity import IdentityRegistry
from tokenpulse.domain.quality import OutlierGate, build_snapshot
from tokenpulse.domain.time import from_epoch, utcnow
from tokenpulse.domain.tokens import TokenIdentity, TokenQuote, TokenSnapshot
from tokenpulse.domain.velocity import VelocityPolicy
from tokenpulse.observability.metrics import Metrics
from tokenpulse.wire.tokens import TokenView

log = structlog.get_logger(__name__)

VOLUME_HISTORY = 24  # readings kept per token for the trailing volume median
QUERY_CACHE_SIZE = 256

#: Called with every served snapshot's view; ``view.body`` is its JSON, built once (the bus).
Publisher = Callable[[TokenView], Awaitable[None]]
HistorySink = Callable[[TokenSnapshot], None]

SORT_KEYS: dict[str, Callable[[TokenSnapshot], Decimal | int | None]] = {
    "market_cap": lambda s: s.market_cap_used,
    "volume_24h": lambda s: s.quote.volume_24h_usd,
    "velocity": lambda s: s.velocity,
    "price": lambda s: s.quote.price_usd,
    "percent_change_24h": lambda s: s.quote.percent_change_24h,
    "rank": lambda s: s.quote.rank,
}


@dataclass(frozen=True, slots=True)
class TokenFilter:
    """A list query's shape: the cache key of its ordered result."""

    min_market_cap: Decimal | None = None
    max_market_cap: Decimal | None = None
    min_velocity: Decimal | None = None
    max_velocity: Decimal | None = None
    symbols: frozenset[str] = frozenset()
    sort: str = "market_cap"
    order: str = "desc"

    def admits(self, snapshot: TokenSnapshot) -> bool:
        cap, velocity = snapshot.market_cap_used, snapshot.velocity
        if self.symbols and snapshot.identity.symbol.upper() not in self.symbols:
            return False
        if not _within(cap, self.min_market_cap, self.max_market_cap):
            return False
        return _within(velocity, self.min_velocity, self.max_velocity)


def _within(value: Decimal | None, low: Decimal | None, high: Decimal | None) -> bool:
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value <= high)


class TokenService:
    """Holds the served snapshot per token and answers token queries."""

    def __init__(
        self,
        *,
        identities: IdentityRegistry,
        policy: VelocityPolicy,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.identities = identities
        self.policy = policy
        self.metrics = metrics
        self.clock = clock
        self.gate = OutlierGate(policy)
        self.generation = 0
        self._accepted: dict[str, TokenSnapshot] = {}  # last accepted (not outlier-held)
        self._views: dict[str, TokenView] = {}  # what is served
        self._by_source: dict[tuple[str, str], TokenSnapshot] = {}
        self._volumes: dict[str, deque[Decimal]] = {}
        self._queries: dict[TokenFilter, tuple[int, list[str]]] = {}
        self._publishers: list[Publisher] = []
        self._history: list[HistorySink] = []

    def add_publisher(self, publisher: Publisher) -> None:
        """Call ``publisher`` with the view of every served snapshot (the bus, streams)."""
        self._publishers.append(publisher)

    def add_history_sink(self, sink: HistorySink) -> None:
        """Hand every accepted snapshot to ``sink`` (the batched history writer)."""
        self._history.append(sink)

    # ---------------------------------------------------------------- writes

    async def accept(self, quotes: Iterable[TokenQuote]) -> list[TokenSnapshot]:
        """Apply provider quotes; returns the snapshots now served for them."""
        served: list[TokenView] = []
        now = utcnow()
        for quote in quotes:
            try:
                view = self._apply(quote, now)
            except Exception:  # one bad quote must not stop the others
                log.exception("applying a token quote failed", symbol=quote.symbol)
                continue
            if view is not None:
                served.append(view)
        if served:
            self.generation += 1
            for view in served:
                for publish in self._publishers:
                    try:
                        await publish(view)
                    except Exception:
                        log.exception("publishing a token failed", token=view.snapshot.id)
        return [view.snapshot for view in served]

    def _apply(self, quote: TokenQuote, now: datetime) -> TokenView | None:
        if quote.price_usd is None and quote.market_cap_usd is None:
            return None
        identity = self.identities.identify(quote)
        token_id = identity.id
        previous = self._accepted.get(token_id)
        other = next(
            (
                s
                for (tid, source), s in self._by_source.items()
                if tid == token_id and source != quote.source
            ),
            None,
        )
        volumes = self._volumes.setdefault(token_id, deque(maxlen=VOLUME_HISTORY))
        median = Decimal(statistics.median(volumes)) if len(volumes) >= 3 else None
        candidate = build_snapshot(
            identity,
            quote,
            self.policy,
            previous=previous,
            other_source=other,
            volume_median=median,
            now=now,
        )
        decision = self.gate.check(previous, candidate)
        self._by_source[(token_id, quote.source)] = candidate
        served = decision.snapshot
        if decision.accept:
            self._accepted[token_id] = served
            if quote.volume_24h_usd is not None and quote.volume_24h_usd >= 0:
                volumes.append(quote.volume_24h_usd)
            for sink in self._history:
                sink(served)
            if served.velocity is not None:
                self.metrics.token_velocity.labels(token_id).set(float(served.velocity))
        for flag in served.flags:
            self.metrics.token_quality_flags.labels(flag).inc()
        view = self._views[token_id] = TokenView.of(served)
        return view

    def apply_replica(self, snapshot: TokenSnapshot) -> None:
        """Serve a snapshot the ingest leader accepted (scale-out): no history, no publish."""
        self.identities.add(snapshot.identity)
        self._accepted[snapshot.id] = snapshot
        self._views[snapshot.id] = TokenView.of(snapshot)
        self.generation += 1

    # ---------------------------------------------------------------- reads

    def __len__(self) -> int:
        return len(self._views)

    def resolve(self, text: str) -> TokenIdentity:
        """Any accepted id form -> identity (TokenNotFound / AmbiguousToken otherwise)."""
        return self.identities.resolve(text)

    def view(self, token_id: str) -> TokenView | None:
        return self._views.get(token_id)

    def views(self) -> list[TokenView]:
        return list(self._views.values())

    def query(self, shape: TokenFilter) -> tuple[list[str], bool]:
        """Ids matching ``shape`` in its order, and whether they came from the cache.

        The ordered ids of a query shape are cached until the next update.
        """
        cached = self._queries.get(shape)
        if cached is not None and cached[0] == self.generation:
            return cached[1], True
        key = SORT_KEYS[shape.sort]
        matching = [v.snapshot for v in self._views.values() if shape.admits(v.snapshot)]
        present = [s for s in matching if key(s) is not None]
        missing = [s for s in matching if key(s) is None]
        present.sort(key=lambda s: (key(s), s.id), reverse=shape.order == "desc")
        ids = [s.id for s in present] + sorted(s.id for s in missing)  # unknown values last
        if len(self._queries) >= QUERY_CACHE_SIZE:
            self._queries.pop(next(iter(self._queries)))
        self._queries[shape] = (self.generation, ids)
        return ids, False

    def age_ms(self, view: TokenView, now: float | None = None) -> int:
        """Milliseconds since the snapshot was received, at unix time ``now`` (default: now)."""
        return age_ms(view.received, self.clock() if now is None else now)

    def sources_in_use(self) -> list[str]:
        return sorted({v.snapshot.source for v in self._views.values()})

    def latest_received(self) -> datetime | None:
        if not self._views:
            return None
        return from_epoch(max(v.received for v in self._views.values()))
