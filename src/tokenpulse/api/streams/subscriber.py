"""One streaming connection as the hub sees it: its subscriptions and conflated pending slots.

A :class:`Subscriber` has one :class:`Slot` per key with at most one pending message: a
snapshot (first message, resubscribe) or a delta merged from every update since the last
message written (``base_seq`` names the state it applies to). Wildcards (``subscribe_all``,
SSE "all tokens") adopt new keys as they appear, optionally delivered as one
``bulk_update`` every ``bulk_interval``. Transports call :meth:`Subscriber.take`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from tokenpulse.api.streams.timers import Cancellable
from tokenpulse.api.streams.types import Hub, LimitExceeded, Message, Stream
from tokenpulse.bus.topics import BULK_EVENT

NONE, SNAPSHOT, DELTA = 0, 1, 2


class Slot:
    """A subscriber's state for one key."""

    __slots__ = (
        "base_seq",
        "bulk",
        "changes",
        "due",
        "explicit",
        "interval_ms",
        "last_sent",
        "pending",
        "sent_price",
        "sent_seq",
    )

    def __init__(self, *, explicit: bool, bulk: bool, interval_ms: int | None) -> None:
        self.explicit = explicit
        self.bulk = bulk
        self.interval_ms = interval_ms
        self.sent_seq: int | None = None
        self.sent_price: float | None = None
        self.last_sent = -math.inf
        self.pending = NONE
        self.base_seq = 0
        self.changes: dict[str, Any] = {}
        self.due = 0.0


class Subscriber:
    """A connection's subscriptions and pending messages (created by ``StreamHub.open``)."""

    def __init__(
        self,
        hub: Hub,
        transport: str,
        notify: Callable[[], None],
        *,
        principal: str | None = None,
    ) -> None:
        self.hub = hub
        self.transport = transport
        self.notify = notify
        self.principal = principal
        self.strings = False  # numbers=string: market values as exact decimal strings
        self.subs: dict[str, Slot] = {}
        self.wildcards: dict[str, bool] = {}  # prefix -> bulk
        self.closed = False
        self._pending: set[str] = set()
        self._timer: Cancellable | None = None
        self._timer_due = math.inf
        self._bulk_due = 0.0
        self._conflated = 0

    # ------------------------------------------------------------------ subscriptions

    @property
    def explicit_count(self) -> int:
        """Keys subscribed by name (what the per-connection limit counts)."""
        return sum(1 for slot in self.subs.values() if slot.explicit)

    def subscribe(self, keys: Iterable[str], interval_ms: int | None = None) -> list[str]:
        """Subscribe by name; each key gets a fresh snapshot. Raises LimitExceeded."""
        wanted = list(dict.fromkeys(keys))
        new = sum(1 for k in wanted if k not in self.subs or not self.subs[k].explicit)
        limit = self.hub.limits.max_subscriptions
        if self.explicit_count + new > limit:
            raise LimitExceeded(f"at most {limit} subscriptions per connection")
        now = self.hub.clock()
        for key in wanted:
            slot = self.subs.get(key)
            if slot is None:
                slot = self.subs[key] = Slot(explicit=True, bulk=False, interval_ms=interval_ms)
                self.hub.index(key, self, True)
            slot.explicit, slot.bulk, slot.interval_ms = True, False, interval_ms
            self._resnapshot(key, slot, now)
        self._kick(now)
        return wanted

    def unsubscribe(self, keys: Iterable[str]) -> list[str]:
        """Drop named subscriptions; returns the keys that were subscribed."""
        removed = []
        for key in dict.fromkeys(keys):
            if key in self.subs:
                self._drop(key)
                removed.append(key)
        return removed

    def subscribe_prefix(self, prefix: str, *, bulk: bool) -> None:
        """Every key of a kind, present and future (``subscribe_all``: ``bulk=True``)."""
        self.wildcards[prefix] = bulk
        self.hub.index_prefix(prefix, self, True)
        now = self.hub.clock()
        for stream in self.hub.streams_with(prefix):
            slot = self.subs.get(stream.key)
            if slot is None:
                self.adopt(stream, now)
            elif not slot.explicit:
                slot.bulk = bulk
                self._resnapshot(stream.key, slot, now)
        self._bulk_due = 0.0
        self._kick(now)

    def unsubscribe_prefix(self, prefix: str) -> bool:
        """Leave a wildcard; keys subscribed by name stay."""
        if self.wildcards.pop(prefix, None) is None:
            return False
        self.hub.index_prefix(prefix, self, False)
        for key in [k for k, s in self.subs.items() if not s.explicit and k.startswith(prefix)]:
            self._drop(key)
        return True

    def resnapshot_all(self) -> None:
        """A fresh snapshot of every subscribed key (a resync after a bus outage)."""
        now = self.hub.clock()
        for key, slot in self.subs.items():
            self._resnapshot(key, slot, now)
        self._kick(now)

    def keys(self, prefix: str = "", *, explicit: bool = True) -> list[str]:
        """Subscribed keys with ``prefix`` (named ones only, unless ``explicit=False``)."""
        return [
            k for k, s in self.subs.items() if k.startswith(prefix) and (s.explicit or not explicit)
        ]

    def intervals(self) -> dict[str, int | None]:
        """Named subscriptions and their chosen interval (for resume)."""
        return {k: s.interval_ms for k, s in self.subs.items() if s.explicit}

    # ------------------------------------------------------------------ fan-out (hub side)

    def adopt(self, stream: Stream, now: float) -> None:
        """A wildcard picks up ``stream``: a new slot with a snapshot pending."""
        bulk = self.wildcards.get(stream.key[: stream.key.index(":") + 1])
        if bulk is None:
            return
        slot = self.subs[stream.key] = Slot(explicit=False, bulk=bulk, interval_ms=None)
        self.hub.index(stream.key, self, True)
        self._resnapshot(stream.key, slot, now)
        self._kick(now)

    def offer(self, stream: Stream, changes: dict[str, Any] | None, now: float) -> None:
        """A new state for a subscribed key: conflate it into the slot's pending message."""
        slot = self.subs[stream.key]
        if slot.pending == SNAPSHOT:
            pass  # the snapshot will carry the newest data
        elif slot.sent_seq is None or changes is None:
            slot.pending, slot.due = SNAPSHOT, now
        elif slot.pending == DELTA:
            slot.changes = {**slot.changes, **changes}  # never mutate: shared by every client
            self._conflated += 1
            slot.due = min(slot.due, slot.last_sent + self._interval(slot, stream))
        else:
            slot.pending, slot.base_seq, slot.changes = DELTA, slot.sent_seq, changes
            slot.due = slot.last_sent + self._interval(slot, stream)
        self._pending.add(stream.key)
        due = self._bulk_due if slot.bulk else slot.due
        if due <= now:
            self.notify()
        else:
            self._arm(due, now)

    def _interval(self, slot: Slot, stream: Stream) -> float:
        limits = self.hub.limits
        if slot.interval_ms is not None:
            return slot.interval_ms / 1000
        price, sent = stream.price, slot.sent_price
        if price is not None and sent:
            moved_bps = abs(price - sent) / abs(sent) * 10_000
            if moved_bps < limits.fast_move_bps:
                return limits.flat_interval_ms / 1000
        return limits.fast_interval_ms / 1000

    # ------------------------------------------------------------------ delivery (transport side)

    def take(self, now: float | None = None) -> list[Message]:
        """The messages due now, in one batch; arms a timer for the rest."""
        if not self._pending or self.closed:
            return []
        now = self.hub.clock() if now is None else now
        out: list[Message] = []
        bulk: list[Message] = []
        next_due = math.inf
        bulk_open = now >= self._bulk_due
        for key in list(self._pending):
            slot = self.subs.get(key)
            stream = self.hub.stream(key)
            if slot is None or slot.pending == NONE or stream is None:
                self._pending.discard(key)
                continue
            if slot.bulk:
                if bulk_open:
                    bulk.append(self._flush(key, slot, stream, now))
                else:
                    next_due = min(next_due, self._bulk_due)
            elif slot.due <= now:
                out.append(self._flush(key, slot, stream, now))
            else:
                next_due = min(next_due, slot.due)
        if bulk:
            self._bulk_due = now + self.hub.limits.bulk_interval
            newest = max(m.accepted_at for m in bulk)
            out.append(Message(BULK_EVENT, "bulk", "", "", 0, None, {}, newest, tuple(bulk)))
        if next_due < math.inf:
            self._arm(next_due, now)
        if self._conflated and self.hub.metrics is not None:
            self.hub.metrics.stream_messages_conflated.labels(self.transport).inc(self._conflated)
        self._conflated = 0
        return out

    @property
    def pending_count(self) -> int:
        """Keys with a message waiting (at most one each)."""
        return len(self._pending)

    @property
    def has_timer(self) -> bool:
        """A wake-up is armed."""
        return self._timer is not None

    def discard_all(self) -> int:
        """Used by ``StreamHub.close``: drop everything; returns pending messages dropped."""
        self.closed = True
        dropped = len(self._pending)
        for key in list(self.subs):
            self.hub.index(key, self, False)
        for prefix in self.wildcards:
            self.hub.index_prefix(prefix, self, False)
        self.subs.clear()
        self.wildcards.clear()
        self._pending.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return dropped

    # ------------------------------------------------------------------ internals

    def _flush(self, key: str, slot: Slot, stream: Stream, now: float) -> Message:
        snapshot = slot.pending == SNAPSHOT
        # The merge of the updates after ``base_seq`` is the same for every client, so one
        # Message per (kind, base_seq) and seq serves them all.
        shared = ("snapshot", None) if snapshot else ("delta", slot.base_seq)
        message = stream.messages.get(shared)
        if message is None:
            message = stream.messages[shared] = Message(
                stream.event, shared[0], key, stream.id, stream.seq, shared[1],
                stream.data if snapshot else slot.changes, stream.accepted_at,
                freshness=self.hub.freshness,
            )  # fmt: skip
        slot.sent_seq, slot.sent_price, slot.last_sent = stream.seq, stream.price, now
        slot.pending, slot.changes = NONE, {}
        self._pending.discard(key)
        return message

    def _resnapshot(self, key: str, slot: Slot, now: float) -> None:
        slot.sent_seq, slot.changes = None, {}
        if self.hub.stream(key) is not None:
            slot.pending, slot.due = SNAPSHOT, now
            self._pending.add(key)
        else:
            slot.pending = NONE
            self._pending.discard(key)

    def _drop(self, key: str) -> None:
        del self.subs[key]
        self._pending.discard(key)
        self.hub.index(key, self, False)

    def _kick(self, now: float) -> None:
        if self._pending:
            self.notify()

    def _arm(self, due: float, now: float) -> None:
        if self._timer is not None and self._timer_due <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = self.hub.schedule(max(0.0, due - now), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_due = math.inf
        if not self.closed:
            self.notify()


__all__ = ["Message", "Slot", "Subscriber"]
