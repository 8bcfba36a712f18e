"""The stream hub: the state of every stream key and its fan-out to subscribers (SPEC §7).

For each key (``pair:BTC/USD``, ``token:bitcoin``) the hub keeps the last full state, a
monotonic ``seq`` (+1 for each update that changed something; nothing changes, nothing is
sent) and the time the update was accepted. Each connection is a :class:`Subscriber` with
one slot per subscribed key holding at most one pending message (§7.3 conflation): a new
update for a key whose message has not been written yet is merged into it, so a slow client
gets fewer, newer messages and never an unbounded queue. A delta carries ``base_seq``, the
``seq`` of the state it applies to (the last one this client was sent), so a client tells a
merged delta (``base_seq`` = its last seq) from a lost message (anything else).

Rate per subscription (§7.4): at most one message per ``min_interval_ms``. Without a
client-chosen interval the default is adaptive and deliberately simple: a price that moved
at least ``fast_move_bps`` (5 bps) away from the value this client last received goes out
after ``fast_interval_ms`` (100 ms); smaller moves wait for ``flat_interval_ms`` (1 s).
Snapshots are never delayed.

Freshness (SPEC §4.6): a value's ``age_ms`` depends on the moment it is read, so it is not
part of a key's state (it would make every update a change); each message gets the age and
``stale`` of its key at its ``ts``, from the same functions the REST answers use
(:mod:`tokenpulse.domain.freshness`). ``stale`` is also state: when a key's value stops
updating, a timer notices it crossing ``stale_after`` and publishes the change, so its
subscribers get a delta ``{"stale": true}``.

The hub is synchronous and transport-agnostic: it calls a subscriber's ``notify`` when
something is ready (or arms a timer for when it will be), and the transport calls
:meth:`Subscriber.take` to get the messages due now. See ``socketio_server.py`` and
``sse.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from tokenpulse.api.streams.subscriber import Subscriber
from tokenpulse.api.streams.timers import Cancellable, TimerWheel
from tokenpulse.api.streams.types import LimitExceeded, Message, Stream, StreamLimits
from tokenpulse.bus.base import EventBus
from tokenpulse.bus.topics import (
    AGGREGATE_SUFFIX,
    AGGREGATE_TOPIC,
    KINDS,
    LTP_TOPIC,
    PAIR_PREFIX,
    TOKEN_PREFIX,
    TOKENS_TOPIC,
    split_key,
)
from tokenpulse.domain.freshness import age_ms, is_stale, stale_at
from tokenpulse.domain.time import parse_iso
from tokenpulse.observability.metrics import Metrics

log = structlog.get_logger(__name__)

TRANSPORTS = ("socketio", "sse")
#: Fields that describe the moment of asking, not the value: a producer's are dropped, and
#: the hub computes them itself (``stale`` as state, ``age_ms`` per message).
VOLATILE_FIELDS = frozenset({"age_ms", "stale"})
_MISSING = object()
_MS = 0.001  # the timer waits one more ms: the state is measured at whole milliseconds


@dataclass(frozen=True, slots=True)
class HubStats:
    """What the hub holds right now (for gauges, tests and leak checks)."""

    streams: int
    connections: dict[str, int]
    subscriptions: dict[str, int]
    pending: int
    timers: int
    index_entries: int = field(default=0)  # subscriber references in the key indexes


def _received(data: Mapping[str, Any]) -> float | None:
    """The unix time of a value's ``received_at`` (None when it has none we can read)."""
    value = data.get("received_at")
    if not isinstance(value, str):
        return None
    try:
        return parse_iso(value).timestamp()
    except ValueError:
        return None


def _price(data: Mapping[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class StreamHub:
    """State, ``seq`` and conflating fan-out for every stream key of this instance."""

    def __init__(
        self,
        *,
        limits: StreamLimits | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        call_later: Callable[[float, Callable[[], None]], Cancellable] | None = None,
        stale_after: float | None = None,
        wall_clock: Callable[[], float] = time.time,
        pair_fresh_at: Callable[[str, float], float] | None = None,
    ) -> None:
        """``stale_after`` (seconds, ``STALE_AFTER``) turns on ``age_ms``/``stale`` for values
        with a ``received_at``; ``wall_clock`` is the unix time they are measured against.
        ``pair_fresh_at(source, received)`` says when an LTP value was last known current
        (``PriceService.fresh_at``: a heartbeat of its source confirms it)."""
        self.limits = limits or StreamLimits()
        self.metrics = metrics
        self.clock = clock
        self.stale_after = stale_after
        self.wall_clock = wall_clock
        self._pair_fresh_at = pair_fresh_at
        self._call_later = call_later or TimerWheel().call_later
        self._streams: dict[str, Stream] = {}
        self._by_key: dict[str, set[Subscriber]] = {}
        self._wild: dict[str, set[Subscriber]] = {PAIR_PREFIX: set(), TOKEN_PREFIX: set()}
        self._subscribers: set[Subscriber] = set()
        self._suspect = False  # every value may be out of date: the bus is down (follower)
        if metrics is not None:
            for transport in TRANSPORTS:
                metrics.gauge_function(
                    metrics.stream_connections,
                    {"transport": transport},
                    lambda t=transport: float(self.connection_count(t)),  # type: ignore[misc]
                )
                metrics.gauge_function(
                    metrics.stream_subscriptions,
                    {"transport": transport},
                    lambda t=transport: float(self.subscription_count(t)),  # type: ignore[misc]
                )

    # ------------------------------------------------------------------ producers

    def publish(self, key: str, data: Mapping[str, Any]) -> bool:
        """Make ``data`` the state of ``key``; fan out the change. False when nothing changed."""
        prefix, ident = split_key(key)
        event = KINDS[prefix][0]
        clean = {k: v for k, v in data.items() if k not in VOLATILE_FIELDS}
        received = _received(clean)
        stream = self._streams.get(key)
        if stream is None:
            stream = Stream(key, ident, event, clean, 1, time.perf_counter(), None, received)
            self._streams[key] = stream
            self._check_stale(stream)
            self._fan_out(stream, None, prefix)
            return True
        stream.received = received
        self._check_stale(stream, clean)
        old = stream.data
        changes = {k: v for k, v in clean.items() if old.get(k, _MISSING) != v}
        for removed in old.keys() - clean.keys():
            changes[removed] = None
        if not changes:
            return False
        self._change(stream, clean, changes, prefix)
        return True

    def _change(
        self, stream: Stream, data: dict[str, Any], changes: dict[str, Any], prefix: str
    ) -> None:
        stream.seq += 1
        stream.data = data
        stream.accepted_at = time.perf_counter()
        stream.messages.clear()
        self._fan_out(stream, changes, prefix)

    def _fan_out(self, stream: Stream, changes: dict[str, Any] | None, prefix: str) -> None:
        now = self.clock()
        stream.price = _price(stream.data, KINDS[prefix][1])
        for subscriber in self._by_key.get(stream.key, ()):
            subscriber.offer(stream, changes, now)
        wild = self._wild[prefix]
        if wild:
            for subscriber in wild:
                if stream.key not in subscriber.subs:
                    subscriber.adopt(stream, now)

    # ------------------------------------------------------------------ freshness

    def freshness(self, key: str, now: float) -> tuple[int, bool] | None:
        """``(age_ms, stale)`` of the value of ``key`` at unix time ``now`` (None: untimed)."""
        stream = self._streams.get(key)
        if stream is None or stream.received is None or self.stale_after is None:
            return None
        age = age_ms(self._fresh_at(stream), now)
        return age, self._suspect or is_stale(age, self.stale_after)

    def _fresh_at(self, stream: Stream) -> float:
        assert stream.received is not None
        if self._pair_fresh_at is not None and stream.key.startswith(PAIR_PREFIX):
            return self._pair_fresh_at(str(stream.data.get("source")), stream.received)
        return stream.received

    def _check_stale(self, stream: Stream, data: dict[str, Any] | None = None) -> None:
        """Set ``stale`` in ``data`` (default: the stream's state) and arm the next check."""
        target = stream.data if data is None else data
        if stream.received is None or self.stale_after is None:
            return
        fresh = self._fresh_at(stream)
        stale = is_stale(age_ms(fresh, self._now()), self.stale_after)
        target["stale"] = stale
        if not stale:
            self._arm_stale(stream, stale_at(fresh, self.stale_after))

    def _now(self) -> float:
        """Now, truncated to the millisecond like a message's ``ts``: a message sent after a
        state change is never measured at an earlier instant than the change was."""
        return int(self.wall_clock() * 1000) / 1000

    def _arm_stale(self, stream: Stream, due: float) -> None:
        if stream.stale_timer is not None:
            if stream.stale_due <= due:
                return  # an earlier check re-arms itself for the new due time
            stream.stale_timer.cancel()
        key = stream.key
        stream.stale_due = due
        stream.stale_timer = self.schedule(
            max(0.0, due - self.wall_clock()) + _MS, lambda: self._sweep(key)
        )

    def _sweep(self, key: str) -> None:
        """The armed check of one key: publish ``stale: true`` if its value has gone stale."""
        stream = self._streams.get(key)
        if stream is None:
            return
        stream.stale_timer = None
        data = dict(stream.data)
        self._check_stale(stream, data)
        if data.get("stale") and not stream.data.get("stale"):
            self._change(stream, data, {"stale": True}, split_key(key)[0])

    def mark_all_stale(self) -> int:
        """Flag every key's value stale (the bus is down and this instance does not ingest:
        it cannot know whether its values are current); returns the keys that changed."""
        self._suspect = True
        changed = 0
        for stream in list(self._streams.values()):
            if not stream.data.get("stale"):
                data = {**stream.data, "stale": True}
                self._change(stream, data, {"stale": True}, split_key(stream.key)[0])
                changed += 1
        return changed

    def resync(self) -> int:
        """Send every subscriber a fresh snapshot of every key it follows (the bus is back:
        whatever was missed is replaced by the current state); ``stale`` is measured again
        from each value's age. Returns the subscribers resynced."""
        self._suspect = False
        for stream in self._streams.values():
            if stream.data.get("stale"):
                data = dict(stream.data)
                self._check_stale(stream, data)
                if not data.get("stale"):
                    stream.seq += 1
                    stream.data = data
                    stream.messages.clear()
        subscribers = list(self._subscribers)
        for subscriber in subscribers:
            subscriber.resnapshot_all()
        return len(subscribers)

    def publish_pair(self, pair: str, data: Mapping[str, Any]) -> bool:
        """Publish the LTP state of a canonical pair (``BTC/USD``) on this instance."""
        return self.publish(PAIR_PREFIX + pair, data)

    def publish_token(self, token_id: str, data: Mapping[str, Any]) -> bool:
        """Publish the state of a token on this instance (use the bus publisher to reach all)."""
        return self.publish(TOKEN_PREFIX + token_id, data)

    def attach(self, bus: EventBus) -> Callable[[], None]:
        """Feed the hub from the bus topics ``ltp`` and ``tokens``; returns the detach function."""
        detach = [
            bus.subscribe(LTP_TOPIC, self._on_bus),
            bus.subscribe(TOKENS_TOPIC, self._on_bus),
            bus.subscribe(AGGREGATE_TOPIC, self._on_bus),
        ]

        def detach_all() -> None:
            for undo in detach:
                undo()

        return detach_all

    def _on_bus(self, topic: str, payload: bytes) -> None:
        data = orjson.loads(payload)
        if not isinstance(data, dict):
            raise ValueError(f"bus topic {topic}: not a JSON object")
        name = "id" if topic == TOKENS_TOPIC else "pair"
        ident = data.get(name)
        if not isinstance(ident, str) or not ident:
            raise ValueError(f"bus topic {topic}: no {name!r} in the event")
        if topic == AGGREGATE_TOPIC:
            ident += AGGREGATE_SUFFIX
        self.publish((TOKEN_PREFIX if topic == TOKENS_TOPIC else PAIR_PREFIX) + ident, data)

    # ------------------------------------------------------------------ connections

    def open(
        self, transport: str, notify: Callable[[], None], *, principal: str | None = None
    ) -> Subscriber:
        """Register a connection; ``notify`` is called whenever it has messages due."""
        if len(self._subscribers) >= self.limits.max_connections:
            raise LimitExceeded(
                f"this instance serves at most {self.limits.max_connections} stream connections"
            )
        subscriber = Subscriber(self, transport, notify, principal=principal)
        self._subscribers.add(subscriber)
        return subscriber

    def close(self, subscriber: Subscriber, reason: str = "disconnect") -> None:
        """Forget a connection entirely: subscriptions, pending messages, timer (idempotent)."""
        if subscriber not in self._subscribers:
            return
        self._subscribers.discard(subscriber)
        dropped = subscriber.discard_all()
        if dropped and self.metrics is not None:
            self.metrics.stream_messages_dropped.labels(subscriber.transport, reason).inc(dropped)

    def close_all(self, reason: str = "shutdown") -> list[Subscriber]:
        """Close every connection (shutdown); returns them so transports can hang up."""
        subscribers = list(self._subscribers)
        for subscriber in subscribers:
            self.close(subscriber, reason)
            subscriber.notify()  # wake writers so they see ``closed`` and end
        return subscribers

    # ------------------------------------------------------------------ used by Subscriber

    def index(self, key: str, subscriber: Subscriber, present: bool) -> None:
        """Add or remove ``subscriber`` from the fan-out set of ``key``."""
        if present:
            self._by_key.setdefault(key, set()).add(subscriber)
            return
        subscribers = self._by_key.get(key)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._by_key[key]

    def index_prefix(self, prefix: str, subscriber: Subscriber, present: bool) -> None:
        """Add or remove ``subscriber`` from the wildcard set of ``prefix``."""
        if present:
            self._wild[prefix].add(subscriber)
        else:
            self._wild[prefix].discard(subscriber)

    def schedule(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        """Run ``callback`` after ``delay`` seconds on the event loop (in 5 ms slots)."""
        return self._call_later(delay, callback)

    def stream(self, key: str) -> Stream | None:
        """The current state of ``key``, if it has one."""
        return self._streams.get(key)

    def streams_with(self, prefix: str) -> Iterable[Stream]:
        """Every stream whose key starts with ``prefix``."""
        return [s for k, s in self._streams.items() if k.startswith(prefix)]

    # ------------------------------------------------------------------ introspection

    def connection_count(self, transport: str | None = None) -> int:
        """Open connections of one transport (of all: no scan, for a check per connect)."""
        if transport is None:
            return len(self._subscribers)
        return sum(1 for s in self._subscribers if s.transport == transport)

    def subscription_count(self, transport: str) -> int:
        """Subscriptions (connection x key) of one transport."""
        return sum(len(s.subs) for s in self._subscribers if s.transport == transport)

    def stats(self) -> HubStats:
        """Counts of everything the hub holds, for gauges, tests and leak checks."""
        return HubStats(
            streams=len(self._streams),
            connections={t: self.connection_count(t) for t in TRANSPORTS},
            subscriptions={t: self.subscription_count(t) for t in TRANSPORTS},
            pending=sum(s.pending_count for s in self._subscribers),
            timers=sum(1 for s in self._subscribers if s.has_timer),
            index_entries=sum(len(v) for v in self._by_key.values())
            + sum(len(v) for v in self._wild.values()),
        )


__all__ = ["HubStats", "LimitExceeded", "Message", "Stream", "StreamHub", "StreamLimits"]
