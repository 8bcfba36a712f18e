"""Last traded prices: the accepted value per pair, its freshness, and ready-made JSON.

Ingestion calls :meth:`PriceService.accept_views` with each batch it drained (the newest value
per pair); the API reads :meth:`PriceService.view`. A value is served until a newer one
replaces it — it never disappears because a cache entry expired between ticks; ``age_ms`` and
``stale`` say how old it is. The JSON of each value is built once per tick
(:class:`~tokenpulse.wire.ltp.LtpView`): the cache write and the publishers get those bytes, a
batch at a time (one cache write, one bus publish), and the hot read path only splices in the
age.

A value's age counts from when it was last known current: its receive time, or a later
heartbeat of its source (:meth:`PriceService.confirm`), since an exchange sends nothing for
a pair that does not trade. Every answer gets its age from :meth:`PriceService.age_ms`.

A remote cache (Redis) is written behind: :meth:`PriceService.accept` never waits for it, so
a stalled or unreachable Redis cannot hold up ingestion (and with it the history writer and
the streams). The newest value per pair waits for the next write; one task writes them in
batches, and backs off while the cache fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from tokenpulse.domain.errors import StoreError
from tokenpulse.domain.freshness import age_ms, is_stale
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.observability.metrics import Metrics
from tokenpulse.store.cache.base import Cache
from tokenpulse.wire.ltp import LtpView

log = structlog.get_logger(__name__)

CACHE_KEY_PREFIX = "ltp:"
CACHE_RETRY_SECONDS = 0.5  # the write-behind waits this long after a failed write

#: Called with the values accepted together, in order; ``view.body`` is a value's JSON, built
#: once (bus, history, warm start).
Publisher = Callable[[Sequence[LtpView]], Awaitable[None]]


class PriceService:
    """Holds the latest accepted ticker per supported pair and keeps the cache in step."""

    def __init__(
        self,
        pairs: Sequence[Pair],
        *,
        cache: Cache,
        metrics: Metrics,
        stale_after: float,
        cache_ttl: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pairs = list(pairs)
        self.supported = frozenset(self.pairs)
        self.cache = cache
        self.metrics = metrics
        self.stale_after = stale_after
        self.cache_ttl = cache_ttl
        self.clock = clock
        self._views: dict[Pair, LtpView] = {}
        # Last time each source proved its values current (a tick or a heartbeat).
        self._confirmed: dict[str, float] = {}
        self._publishers: list[Publisher] = []
        self._cache_failing = False
        self._cache_dirty: dict[Pair, LtpView] = {}
        self._cache_writer: asyncio.Task[None] | None = None
        self._write_behind = cache.backend != "memory"
        # Labelled metric children, looked up once per pair (labels() costs a lock and a hash).
        self._gauges: dict[Pair, Any] = {}
        self._counters: dict[tuple[Pair, str], Any] = {}
        for pair in self.pairs:
            name = str(pair)
            metrics.price_age.labels(name).set_function(self._age_function(pair))

    def add_publisher(self, publisher: Publisher) -> None:
        """Call ``publisher`` with the views of every batch of accepted tickers (the event bus,
        history, warm start)."""
        self._publishers.append(publisher)

    # ---------------------------------------------------------------- writes

    async def accept(self, ticker: Ticker) -> bool:
        """Make ``ticker`` the served value for its pair; False when it is rejected.

        Rejected: unsupported pairs and non-positive prices. Order is the transport's: one
        socket delivers in order, and the supervisor keeps REST from overwriting a live
        stream, so a reading is never dropped for carrying an older exchange time (a replay
        that loops back to its start must keep moving).
        """
        if not self.acceptable(ticker):
            return False
        return bool(await self.accept_views([LtpView.of(ticker)]))

    def acceptable(self, ticker: Ticker) -> bool:
        """Whether :meth:`accept` would take ``ticker`` (a supported pair, a positive price)."""
        return ticker.pair in self.supported and ticker.last > 0

    async def accept_views(self, views: Sequence[LtpView]) -> int:
        """:meth:`accept` the tickers of ``views`` in order; returns how many were accepted.

        The cache is written once and every publisher called once for the whole batch.
        """
        accepted: list[LtpView] = []
        now = self.clock()
        for view in views:
            ticker = view.ticker
            pair = ticker.pair
            if pair not in self.supported or ticker.last <= 0:
                continue
            self._views[pair] = view
            self.confirm(ticker.source, view.received)
            gauge = self._gauges.get(pair)
            if gauge is None:
                gauge = self._gauges[pair] = self.metrics.price.labels(str(pair))
            gauge.set(float(ticker.last))
            counter = self._counters.get((pair, ticker.source))
            if counter is None:
                counter = self.metrics.price_updates.labels(str(pair), ticker.source)
                self._counters[(pair, ticker.source)] = counter
            counter.inc()
            self.metrics.ingest_lag.observe(max(0.0, now - view.received))
            accepted.append(view)
        if not accepted:
            return 0
        await self._write_cache(accepted)
        for publish in self._publishers:
            try:
                await publish(accepted)
            except Exception:  # a fan-out failure must not lose the accepted values
                log.exception("publishing tickers failed", values=len(accepted))
        return len(accepted)

    def apply_replica(self, view: LtpView) -> None:
        """Serve a value the ingest leader accepted (scale-out): no cache write, no publish."""
        ticker = view.ticker
        if ticker.pair not in self.supported:
            return
        self._views[ticker.pair] = view
        self.confirm(ticker.source, view.received)
        self.metrics.price.labels(str(ticker.pair)).set(float(ticker.last))

    def confirm(self, source: str, at: float | None = None) -> None:
        """``source`` is alive and its values are still current as of ``at``."""
        moment = self.clock() if at is None else at
        if moment > self._confirmed.get(source, 0.0):
            self._confirmed[source] = moment

    async def _write_cache(self, views: Sequence[LtpView]) -> None:
        if not self._write_behind:  # in memory: cannot stall, write at once
            await self._store({CACHE_KEY_PREFIX + str(v.ticker.pair): v.body for v in views})
            return
        for view in views:
            self._cache_dirty[view.ticker.pair] = view
        if self._cache_writer is None or self._cache_writer.done():
            self._cache_writer = asyncio.create_task(self._drain_cache(), name="ltp-cache-writer")

    async def _drain_cache(self) -> None:
        while self._cache_dirty:
            items = {CACHE_KEY_PREFIX + str(p): v.body for p, v in self._cache_dirty.items()}
            self._cache_dirty.clear()
            if not await self._store(items):
                await asyncio.sleep(CACHE_RETRY_SECONDS)

    async def _store(self, items: dict[str, bytes]) -> bool:
        try:
            if len(items) == 1:
                ((key, body),) = items.items()
                await self.cache.set(key, body, self.cache_ttl)
            else:
                await self.cache.set_many(items, self.cache_ttl)
        except StoreError as exc:
            if not self._cache_failing:
                log.warning("cache write failed; serving from memory", error=str(exc))
            self._cache_failing = True
            return False
        if self._cache_failing:
            log.info("cache writes recovered")
        self._cache_failing = False
        return True

    async def stop_cache_writes(self) -> None:
        """Stop the write-behind task (shutdown; what it still holds is not needed: the
        cache is a copy of what this instance serves)."""
        task, self._cache_writer = self._cache_writer, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---------------------------------------------------------------- reads

    def view(self, pair: Pair) -> LtpView | None:
        return self._views.get(pair)

    def views(self) -> dict[Pair, LtpView]:
        return dict(self._views)

    def age_ms(self, view: LtpView, now: float) -> int:
        """Milliseconds since the value was last known current (received or confirmed)."""
        return age_ms(self.fresh_at(view.ticker.source, view.received), now)

    def fresh_at(self, source: str, received: float) -> float:
        """When a value of ``source`` received at ``received`` was last known current."""
        confirmed = self._confirmed.get(source, 0.0)
        return received if received > confirmed else confirmed

    def is_stale(self, age_ms: int) -> bool:
        """A value this old is reported stale (``STALE_AFTER``)."""
        return is_stale(age_ms, self.stale_after)

    def render(self, view: LtpView, now: float) -> bytes:
        """The JSON object of one value at time ``now`` (unix seconds)."""
        # fresh_at() inlined: this runs for every pair of every /ltp request.
        confirmed = self._confirmed.get(view.ticker.source, 0.0)
        received = view.received
        age = age_ms(received if received > confirmed else confirmed, now)
        return view.render(age, is_stale(age, self.stale_after))

    def render_strings(self, view: LtpView, now: float) -> bytes:
        """:meth:`render` with market values as exact decimal strings (``numbers=string``)."""
        age = self.age_ms(view, now)
        return view.render_strings(age, is_stale(age, self.stale_after))

    def _age_function(self, pair: Pair) -> Callable[[], float]:
        def age_seconds() -> float:
            view = self._views.get(pair)
            if view is None:
                return float("nan")
            return self.age_ms(view, self.clock()) / 1000

        return age_seconds

    async def cached_views(self) -> list[LtpView]:
        """Everything in the cache under the LTP prefix, by key (``/api/v1/ltp/cached``).

        Entries keep the bytes the cache holds; one that is not a ticker's JSON is skipped.
        """
        entries = await self.cache.scan(CACHE_KEY_PREFIX)
        views: list[LtpView] = []
        for key, body in sorted(entries.items()):
            try:
                views.append(LtpView.from_body(body))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("skipping a malformed cache entry", key=key, error=str(exc))
        return views
