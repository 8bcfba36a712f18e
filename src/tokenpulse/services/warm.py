"""Warm start (SPEC §10): the ingest leader keeps the latest values in a shared store, and
an instance that starts (or whose bus comes back) loads them before serving.

The leader's :class:`WarmStart` is a publisher of the price and token services: every
accepted value is marked, and one task writes the newest per key in batches (it never holds
up ingestion; while the store fails it retries with the newest values). Any instance calls
:meth:`WarmStart.load` before it reports ready: the values are applied like the leader's bus
updates (no cache write, no publish), with their own ``received_at``, so they are served
with their true age.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
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
    ) -> None:
        self.store = store
        self.prices = prices
        self.tokens = tokens
        self.metrics = metrics
        self._dirty: dict[str, dict[str, bytes]] = {LTP: {}, TOKENS: {}}
        self._writer: asyncio.Task[None] | None = None
        self._failing = False

    # ------------------------------------------------------------------ the leader's side

    async def record_ltp(self, views: Sequence[LtpView]) -> None:
        """A :meth:`PriceService.add_publisher` callback."""
        for view in views:
            self._mark(LTP, str(view.ticker.pair), view.body)

    async def record_token(self, view: TokenView) -> None:
        """A :meth:`TokenService.add_publisher` callback."""
        self._mark(TOKENS, view.snapshot.id, view.body)

    def _mark(self, kind: str, key: str, body: bytes) -> None:
        self._dirty[kind][key] = body
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
                self._failing = False

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
