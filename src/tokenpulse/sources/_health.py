"""What every source shares: health, backoff, request pacing, circuit breaker, hand-off buffer.

A source turns one provider's wire format into domain events. Its I/O loop retries forever
with capped, jittered exponential backoff; a malformed message is counted, logged once per
kind with a sample, and dropped. The socket reader never stores or fans out anything itself:
it puts events into a :class:`LatestValueBuffer`, and a consumer elsewhere drains it, so a slow
store can never stall the reader.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

import structlog

from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.events import DomainEvent
from tokenpulse.domain.time import isoformat_z, utcnow
from tokenpulse.observability.metrics import CIRCUIT_STATES, Metrics

log = structlog.get_logger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

EventSink = Callable[[DomainEvent], None]
"""Where a source hands its events: must not block (it is the buffer's ``put``)."""


class Backoff:
    """Capped exponential backoff with full jitter; ``reset()`` after a healthy period."""

    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The next wait: uniform in [cap/2, cap] where cap grows to ``maximum``."""
        cap = min(self.maximum, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return self._rng.uniform(cap / 2, cap)

    def reset(self) -> None:
        self.attempt = 0


class RequestLimiter:
    """Spaces the requests of everyone sharing it at least ``min_interval`` seconds apart.

    Providers limit calls per IP or key, so all calls to one provider share one limiter.
    Callers reserve the next free slot under an :class:`asyncio.Lock` (the lock is never held
    while sleeping) and then wait for it; a slot beyond the caller's deadline is not taken.
    """

    def __init__(
        self,
        min_interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.min_interval = min_interval
        self._lock = asyncio.Lock()
        self._next_slot = float("-inf")
        self._clock = clock
        self._sleep = sleep

    async def acquire(self, deadline: float | None = None) -> bool:
        """Wait for this caller's turn; False (without waiting) if it would pass ``deadline``."""
        async with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            if deadline is not None and slot >= deadline:
                return False
            self._next_slot = slot + self.min_interval
        if slot > now:
            await self._sleep(slot - now)
        return True

    def defer(self, seconds: float) -> None:
        """Take no request for ``seconds`` from now (the provider asked us via Retry-After)."""
        self._next_slot = max(self._next_slot, self._clock() + seconds)

    def free_at(self) -> float:
        """Time (on the limiter's clock) of the next free slot."""
        return max(self._clock(), self._next_slot)


class CircuitBreaker:
    """Closed -> open after ``threshold`` consecutive failures; half-open after ``cooldown``.

    While open, :meth:`allow` is False, so a dead provider is not hammered; the first call
    after the cooldown is a trial whose outcome closes or re-opens the circuit.
    """

    def __init__(
        self,
        threshold: int = 5,
        cooldown: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.failures = 0
        self.state = "closed"
        self._opened_at = 0.0
        self._clock = clock
        self._on_change = on_change

    def allow(self) -> bool:
        if self.state == "open" and self._clock() - self._opened_at >= self.cooldown:
            self._set("half_open")
        return self.state != "open"

    def record_success(self) -> None:
        self.failures = 0
        if self.state != "closed":
            self._set("closed")

    def record_failure(self) -> None:
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.threshold:
            self._opened_at = self._clock()
            if self.state != "open":
                self._set("open")

    def _set(self, state: str) -> None:
        self.state = state
        if self._on_change is not None:
            self._on_change(state)


@dataclass
class SourceHealth:
    """What a source reports about itself (``/api/v1/sources``, ``/ready``, metrics)."""

    name: str
    kind: str  # "websocket", "rest", "replay"
    connected: bool = False
    state: str = "starting"  # starting, connected, reconnecting, polling, idle, disabled, failed
    detail: str = ""
    last_message_at: datetime | None = None
    last_message_mono: float | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    messages: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    circuit: str = "closed"

    def heard(self, at: datetime | None = None, mono: float | None = None) -> None:
        """The provider said something (data or heartbeat), at ``at`` (default: now); a
        reader that already took the time for the frame passes it (and ``mono``)."""
        self.last_message_at = utcnow() if at is None else at
        self.last_message_mono = time.monotonic() if mono is None else mono
        self.messages += 1

    def silent_for(self) -> float | None:
        """Seconds since the provider last said anything, None if it never did."""
        if self.last_message_mono is None:
            return None
        return time.monotonic() - self.last_message_mono

    def failed(self, kind: str, error: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.last_error = error
        self.last_error_at = utcnow()

    def to_json(self) -> dict[str, Any]:
        silent = self.silent_for()
        return {
            "name": self.name,
            "kind": self.kind,
            "connected": self.connected,
            "state": self.state,
            "detail": self.detail,
            "last_message_at": isoformat_z(self.last_message_at) if self.last_message_at else None,
            "last_message_age_ms": None if silent is None else int(silent * 1000),
            "messages": self.messages,
            "errors": dict(self.errors),
            "error_count": sum(self.errors.values()),
            "last_error": self.last_error,
            "last_error_at": isoformat_z(self.last_error_at) if self.last_error_at else None,
            "reconnects": self.reconnects,
            "circuit": self.circuit,
        }


class Source(Protocol):
    """A provider adapter the supervisor runs."""

    name: str
    health: SourceHealth

    async def run(self) -> None:
        """Run until cancelled; never returns on its own and never raises on provider faults."""
        ...


class ParseErrorReporter:
    """Counts malformed messages and logs the first sample of each kind (per source)."""

    def __init__(self, source: str, metrics: Metrics | None) -> None:
        self.source = source
        self.metrics = metrics
        self.seen_kinds: set[str] = set()

    def report(self, error: ParseError, sample: str | bytes) -> None:
        if self.metrics is not None:
            self.metrics.source_parse_errors.labels(self.source, error.kind).inc()
        if error.kind not in self.seen_kinds:
            self.seen_kinds.add(error.kind)
            text = sample if isinstance(sample, str) else sample.decode("utf-8", "replace")
            log.warning(
                "malformed provider message dropped",
                source=self.source,
                kind=error.kind,
                error=str(error),
                sample=text[:500],
            )


def bind_health_metrics(health: SourceHealth, metrics: Metrics) -> None:
    """Export a source's connection state, circuit and silence as scrape-time gauges."""
    name = health.name
    metrics.source_connected.labels(name).set_function(lambda: 1.0 if health.connected else 0.0)
    metrics.source_circuit_state.labels(name).set_function(
        lambda: float(CIRCUIT_STATES.get(health.circuit, 0))
    )
    metrics.source_last_message_age.labels(name).set_function(lambda: health.silent_for() or 0.0)


def message_counter(metrics: Metrics | None, source: str) -> Callable[[str], None]:
    """``count(kind)``: one more message of ``kind`` from ``source`` on
    ``tokenpulse_source_messages_total`` (each labelled child looked up once: every frame)."""
    if metrics is None:
        return lambda kind: None
    children: dict[str, Any] = {}

    def count(kind: str) -> None:
        child = children.get(kind)
        if child is None:
            child = children[kind] = metrics.source_messages.labels(source, kind)
        child.inc()

    return count


class LatestValueBuffer(Generic[K, V]):
    """Bounded hand-off between a reader and its consumer, keeping the newest value per key.

    ``put`` never blocks and never awaits: a newer value for a key replaces the queued one
    (conflation); a new key when ``max_keys`` are queued is dropped and counted. ``drain``
    waits until something is queued and takes everything, oldest key first.

    With ``epoch`` (a value's period, e.g. the second its history sample is filed under),
    values of different periods are not conflated: the queued one is kept, ahead of the new
    one, so the last value of every period reaches the consumer (at most ``max_keys`` kept
    so; beyond that the oldest is dropped and counted).
    """

    def __init__(
        self,
        max_keys: int = 10_000,
        *,
        on_conflated: Callable[[], None] | None = None,
        on_dropped: Callable[[], None] | None = None,
        epoch: Callable[[V], Hashable] | None = None,
    ) -> None:
        self.max_keys = max_keys
        self._items: dict[K, V] = {}
        self._epoch = epoch
        self._earlier: list[V] = []  # the last value of an earlier period, oldest first
        self._ready = asyncio.Event()
        self._on_conflated = on_conflated
        self._on_dropped = on_dropped
        self.conflated = 0
        self.dropped = 0

    def put(self, key: K, value: V) -> bool:
        """Queue ``value`` for ``key``; False when it was dropped for lack of room."""
        items = self._items
        if key in items:
            queued = items[key]
            if self._epoch is not None and self._epoch(queued) != self._epoch(value):
                self._keep_earlier(queued)
            else:
                self.conflated += 1
                if self._on_conflated is not None:
                    self._on_conflated()
        elif len(items) >= self.max_keys:
            self.dropped += 1
            if self._on_dropped is not None:
                self._on_dropped()
            return False
        items[key] = value
        self._ready.set()
        return True

    def _keep_earlier(self, value: V) -> None:
        if len(self._earlier) >= self.max_keys:
            del self._earlier[0]
            self.dropped += 1
            if self._on_dropped is not None:
                self._on_dropped()
        self._earlier.append(value)

    def __len__(self) -> int:
        return len(self._items) + len(self._earlier)

    def drain_nowait(self) -> list[V]:
        """Take whatever is queued without waiting (used on shutdown)."""
        items, self._items = self._items, {}
        earlier, self._earlier = self._earlier, []
        self._ready.clear()
        return earlier + list(items.values())

    async def drain(self) -> list[V]:
        """Wait for at least one queued value, then take them all."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        items, self._items = self._items, {}
        earlier, self._earlier = self._earlier, []
        self._ready.clear()
        return earlier + list(items.values())
