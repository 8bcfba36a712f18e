"""The bookkeeping every sharded WebSocket ticker source shares (Kraken's and the venues'
generic one): what the supervisor reads, the event sink, errors, reconnects and health."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from websockets.exceptions import ConnectionClosed

from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.events import DomainEvent
from tokenpulse.domain.pairs import Pair
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._health import ParseErrorReporter, SourceHealth

log = structlog.get_logger(__name__)


class ShardedWsBook:
    """Mixed into a source that spreads its pairs over shards (one connection each)."""

    label = "venue"  # names the source in log lines: "<label> ws connection lost"
    name: str
    url: str
    sink: Callable[[DomainEvent], None]
    metrics: Metrics | None
    health: SourceHealth
    _parse_errors: ParseErrorReporter
    _running: bool
    _attempted: bool
    _shards: list[Any]
    _shard_of: dict[Pair, Any]

    @property
    def pairs(self) -> list[Pair]:
        """Every pair this source subscribes, in shard order."""
        return list(self._shard_of)

    @property
    def connection_count(self) -> int:
        """How many connections (shards) the pairs are spread over."""
        return len(self._shards)

    def _emit(self, event: DomainEvent) -> None:
        try:
            self.sink(event)
        except Exception:  # a consumer bug must not take the feed down; it is counted
            self._count_error("sink", "sink raised")
            log.exception("event sink failed", source=self.name)

    def _malformed(self, error: ParseError, frame: str | bytes) -> None:
        self._parse_errors.report(error, frame)
        self.health.failed(f"parse:{error.kind}", str(error))

    def _session_failed(self, shard: Any, exc: Exception) -> None:
        if not shard.connected:
            kind = "connect"
        elif isinstance(exc, ConnectionClosed):
            kind = "connection_closed"
        else:
            kind = "unexpected"
        self._count_error(kind, f"{type(exc).__name__}: {exc}")
        if kind == "unexpected":
            log.exception(f"{self.label} ws session failed", source=self.name, shard=shard.index)
        else:
            log.warning(
                f"{self.label} ws connection lost"
                if shard.connected
                else f"{self.label} ws connect failed",
                source=self.name,
                shard=shard.index,
                url=self.url,
                error=f"{type(exc).__name__}: {exc}",
            )

    def _mark_disconnected(self, shard: Any) -> None:
        self._attempted = True
        shard.disconnected()
        self._refresh_health()

    def _count_error(self, kind: str, message: str) -> None:
        self.health.failed(kind, message)
        if self.metrics is not None:
            self.metrics.source_errors.labels(self.name, kind).inc()

    def _count_reconnect(self) -> None:
        self.health.reconnects += 1
        if self.metrics is not None:
            self.metrics.source_reconnects.labels(self.name).inc()

    def _refresh_health(self) -> None:
        shards = len(self._shards)
        up = sum(shard.connected for shard in self._shards)
        subscribed = sum(len(shard.subscribed) for shard in self._shards if shard.connected)
        rejected = sum(len(shard.rejected) for shard in self._shards)
        self.health.connected = shards > 0 and up == shards
        if not shards or (not self._running and self._attempted):
            self.health.state = "idle"
        elif not self._running:
            self.health.state = "starting"
        elif self.health.connected:
            self.health.state = "connected"
        else:
            self.health.state = "reconnecting" if self._attempted else "starting"
        detail = f"{up}/{shards} connections, {subscribed}/{len(self._shard_of)} pairs subscribed"
        if rejected:
            detail += f", {rejected} rejected"
        self.health.detail = detail


__all__ = ["ShardedWsBook"]
