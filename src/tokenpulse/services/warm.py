"""Warm start (SPEC §10): the ingest leader keeps the latest values in a shared store, and
an instance that starts (or whose bus comes back) loads them before serving.

The leader's :class:`WarmStart` is a publisher of the price and token services: every
accepted value is marked, and one task writes the newest per key in batches (it never holds
up ingestion; while the store fails it retries with the newest values). Any instance calls
:meth:`WarmStart.load` before it reports ready: the values are applied like the leader's bus
updates (no cache write, no publish), with their own ``received_at``, so they are served
with their true age.

While Redis is down the leader's bus drops events and its saves fail; a follower that reloads
as soon as its own bus returns can read values older than the leader holds. So the leader,
once its saves have caught up after an outage (of the store or of its bus), announces it on
the bus (topic ``latest_saved``), and followers reload then: a key that did not change again
after the outage is not left stale on them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

import orjson
import structlog

from tokenpulse.domain.errors import StoreError
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.ltp.prices import PriceService
from tokenpulse.services.tokens.service import TokenService
from tokenpulse.wire.ltp import LtpView
from tokenpulse.wire.tokens import TokenView, snapshot_from_json

log = structlog.get_logger(__name__)

LTP = "ltp"
TOKENS = "tokens"
RETRY_SECONDS = 0.5


class LatestValues(Protocol):
    """Where the latest values live between instances (Redis hashes in production)."""

    async def save(self, kind: str, values: Mapping[str, bytes]) -> None: ...

    async def load(self, kind: str) -> dict[str, bytes]: ...


class WarmStart:
    """Writes the leader's latest values behind, and loads them into a starting instance."""

    def __init__(
        self,
        store: LatestValues,
        *,
        prices: PriceService,
        tokens: TokenService,
        metrics: Metrics,
        announce: Callable[[], Awaitable[None]] | None = None,
        ingesting: Callable[[], bool] = lambda: True,
    ) -> None:
        self.store = store
        self.announce = announce  # tells followers the saves caught up (the leader's side)
        self.ingesting = ingesting
        self.prices = prices
        self.tokens = tokens
        self.metrics = metrics
        self._dirty: dict[str, dict[str, bytes]] = {LTP: {}, TOKENS: {}}
        self._writer: asyncio.Task[None] | None = None
        self._failing = False
        self._announce_due = False

    # ------------------------------------------------------------------ the leader's side

    async def record_ltp(self, views: Sequence[LtpView]) -> None:
        """A :meth:`PriceService.add_publisher` callback."""
        for view in views:
            self._mark(LTP, str(view.ticker.pair), view.body)

    async def record_token(self, view: TokenView) -> None:
        """A :meth:`TokenService.add_publisher` callback."""
        self._mark(TOKENS, view.snapshot.id, view.body)

    def bus_state_changed(self, healthy: bool) -> None:
        """A bus watcher: events published while the bus was down are lost, so once it is back
        the leader saves everything it holds and announces it (followers reload)."""
        if not healthy or self.announce is None or not self.ingesting():
            return  # a follower's values are the leader's replicas: never saved over the leader's
        for view in self.prices.views().values():
            self._dirty[LTP][str(view.ticker.pair)] = view.body
        for token in self.tokens.views():
            self._dirty[TOKENS][token.snapshot.id] = token.body
        self._announce_due = True
        self._start_writer()

    def _mark(self, kind: str, key: str, body: bytes) -> None:
        self._dirty[kind][key] = body
        self._start_writer()

    def _start_writer(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="warm-start-writer")

    async def _write(self) -> None:
        while any(self._dirty.values()):
            for kind, values in self._dirty.items():
                if not values:
                    continue
                batch = dict(values)
                values.clear()
                try:
                    await self.store.save(kind, batch)
                except StoreError as exc:
                    for key, body in batch.items():  # keep them unless newer ones came
                        values.setdefault(key, body)
                    if not self._failing:
                        log.warning("saving the latest values failed; retrying", error=str(exc))
                    self._failing = True
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                if self._failing:
                    log.info("saving the latest values recovered")
                    self._announce_due = True
                self._failing = False
        if self._announce_due and self.announce is not None:
            self._announce_due = False
            await self.announce()

    async def stop(self) -> None:
        """Stop the writer (shutdown)."""
        task, self._writer = self._writer, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------ a starting instance

    async def load(self) -> int:
        """Apply every stored value this instance does not hold a newer one of; returns how
        many were applied. A store failure is logged and loads nothing (never raises)."""
        try:
            ltp = await self.store.load(LTP)
            tokens = await self.store.load(TOKENS)
        except StoreError as exc:
            log.warning("loading the latest values failed; starting cold", error=str(exc))
            return 0
        applied = {LTP: 0, TOKENS: 0}
        for body in ltp.values():
            try:
                view = LtpView.from_body(body)
            except (ValueError, KeyError, TypeError):
                continue
            held = self.prices.view(view.ticker.pair)
            if held is None or held.received < view.received:
                self.prices.apply_replica(view)
                applied[LTP] += 1
        for body in tokens.values():
            try:
                snapshot = snapshot_from_json(orjson.loads(body))
            except (ValueError, KeyError, TypeError):
                continue
            held_token = self.tokens.view(snapshot.id)
            if (
                held_token is None
                or held_token.snapshot.quote.received_at < snapshot.quote.received_at
            ):
                self.tokens.apply_replica(snapshot)
                applied[TOKENS] += 1
        for kind, count in applied.items():
            self.metrics.faults.warm_start_values.labels(kind).inc(count)
        if any(applied.values()):
            log.info("loaded the latest values", ltp=applied[LTP], tokens=applied[TOKENS])
        return sum(applied.values())


__all__ = ["LatestValues", "WarmStart"]
