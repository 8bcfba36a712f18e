"""Scale-out reads: instances that do not ingest apply the leader's updates from the bus.

The ingest leader publishes every accepted ticker (topic ``ltp``) and token snapshot (topic
``tokens``) as the JSON :mod:`tokenpulse.wire` built when it accepted them. Every other
instance reads them back with wire's from-JSON functions (a ticker keeps the leader's bytes)
and applies them to its own price and token services — without writing the cache or history
and without publishing again, which the leader already did — so any instance answers with the
same values (SPEC §10).
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
import structlog

from tokenpulse.bus.base import EventBus
from tokenpulse.bus.topics import LTP_TOPIC, TOKENS_TOPIC
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.ltp.prices import PriceService
from tokenpulse.services.tokens.service import TokenService
from tokenpulse.wire.ltp import LtpView
from tokenpulse.wire.tokens import snapshot_from_json

log = structlog.get_logger(__name__)


class Replicator:
    """Applies the bus's ``ltp`` and ``tokens`` updates while this instance does not ingest."""

    def __init__(
        self,
        bus: EventBus,
        *,
        prices: PriceService,
        tokens: TokenService,
        metrics: Metrics,
        ingesting: Callable[[], bool],
    ) -> None:
        self.bus = bus
        self.prices = prices
        self.tokens = tokens
        self.metrics = metrics
        self.ingesting = ingesting
        self._unsubscribe: list[Callable[[], None]] = []

    def start(self) -> None:
        self._unsubscribe = [
            self.bus.subscribe(LTP_TOPIC, self._on_ticker),
            self.bus.subscribe(TOKENS_TOPIC, self._on_token),
        ]

    def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    def _on_ticker(self, topic: str, payload: bytes) -> None:
        if self.ingesting():
            return  # our own update, already applied
        try:
            self.prices.apply_replica(LtpView.from_body(payload))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("dropping a malformed ltp update", error=str(exc))
            return
        self.metrics.replicated.labels("ltp").inc()

    def _on_token(self, topic: str, payload: bytes) -> None:
        if self.ingesting():
            return
        try:
            self.tokens.apply_replica(snapshot_from_json(orjson.loads(payload)))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("dropping a malformed token update", error=str(exc))
            return
        self.metrics.replicated.labels("tokens").inc()
