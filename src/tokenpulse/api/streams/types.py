"""The types the stream hub and its subscribers share: a key's state, a message, the limits.

They live apart from ``hub.py`` and ``subscriber.py`` so that the hub imports its subscribers
and a subscriber sees the hub only through the :class:`Hub` protocol (no import cycle).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tokenpulse.api.streams.timers import Cancellable
from tokenpulse.bus.topics import LTP_EVENT, TOKEN_EVENT
from tokenpulse.domain.errors import LimitExceeded
from tokenpulse.observability.metrics import Metrics
from tokenpulse.wire.ltp import LTP_MARKET_FIELDS
from tokenpulse.wire.numbers import convert_market_fields
from tokenpulse.wire.tokens import QUALITY_MARKET_FIELDS, TOKEN_MARKET_FIELDS

#: The market values of each event's ``data``/``changes``: numbers, or exact strings when the
#: client subscribed with ``numbers: "string"`` (SPEC §4.6).
MARKET_FIELDS: dict[str, frozenset[str]] = {
    LTP_EVENT: LTP_MARKET_FIELDS,
    TOKEN_EVENT: TOKEN_MARKET_FIELDS,
}


def market_form(event: str, body: dict[str, Any], strings: bool) -> dict[str, Any]:
    """``body`` (a value's ``data`` or ``changes``) with its market values in one form."""
    fields = MARKET_FIELDS.get(event)
    if fields is None:
        return dict(body)
    out = convert_market_fields(body, fields, strings)
    quality = out.get("quality")
    if isinstance(quality, dict):
        out["quality"] = convert_market_fields(quality, QUALITY_MARKET_FIELDS, strings)
    return out


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Bounds on streaming, per connection unless said otherwise."""

    max_connections: int = 20_000  # per instance, all transports
    max_subscriptions: int = 200  # explicit keys per connection
    max_message_bytes: int = 16 * 1024  # inbound Socket.IO frame
    min_interval_ms: int = 50  # the shortest interval a client may ask for
    max_interval_ms: int = 60_000
    fast_interval_ms: int = 100  # adaptive default while the price moves
    flat_interval_ms: int = 1_000  # adaptive default while it is flat
    fast_move_bps: float = 5.0  # "moving": at least this far from what the client last got
    bulk_interval: float = 1.0  # seconds between bulk_update messages


@dataclass(frozen=True, slots=True)
class Message:
    """One message for one client: a snapshot, a delta, or a bulk of both."""

    event: str  # ltp_update | token_update | bulk_update
    kind: str  # snapshot | delta | bulk
    key: str
    id: str
    seq: int
    base_seq: int | None
    body: dict[str, Any]  # data (snapshot) or changes (delta)
    accepted_at: float  # perf_counter() of the newest update it carries
    items: tuple[Message, ...] = ()
    # ``freshness(key, unix_seconds)`` -> (age_ms, stale) of the key's value, or None.
    freshness: Callable[[str, float], tuple[int, bool] | None] | None = field(
        default=None, compare=False, repr=False
    )
    # Encoded forms by (transport, ts_ms, strings), shared by the clients that get this object.
    frames: dict[tuple[str, int, bool], bytes] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def cache_key(self) -> tuple[str, str, int, int | None] | None:
        """Equal for every client that gets exactly this message (None: per-client content)."""
        if self.kind == "bulk":
            return None
        return (self.key, self.kind, self.seq, self.base_seq)

    def payload(
        self, ts_ms: int | None, *, at_ms: int | None = None, strings: bool = False
    ) -> dict[str, Any]:
        """The JSON object sent: ``type, id, seq, [base_seq], ts, data|changes``.

        ``data`` and ``changes`` carry the value's ``age_ms`` and ``stale`` at ``ts_ms`` (or
        ``at_ms`` when the message goes without its own ``ts``, inside a bulk), and market
        values as numbers (``strings``: exact decimal strings).
        """
        if self.kind == "bulk":
            return {
                "type": "bulk",
                "ts": ts_ms,
                "updates": [
                    {"event": m.event, **m.payload(None, at_ms=ts_ms, strings=strings)}
                    for m in self.items
                ],
            }
        out: dict[str, Any] = {"type": self.kind, "id": self.id, "seq": self.seq}
        if self.kind == "delta":
            out["base_seq"] = self.base_seq
        if ts_ms is not None:
            out["ts"] = ts_ms
        body = market_form(self.event, self.body, strings)
        moment = ts_ms if ts_ms is not None else at_ms
        if self.freshness is not None and moment is not None:
            fresh = self.freshness(self.key, moment / 1000)
            if fresh is not None:
                body["age_ms"], body["stale"] = fresh
        out["data" if self.kind == "snapshot" else "changes"] = body
        return out


@dataclass(slots=True)
class Stream:
    """The last full state of one key."""

    key: str
    id: str
    event: str
    data: dict[str, Any]
    seq: int
    accepted_at: float  # perf_counter() when the update reached the hub
    price: float | None
    received: float | None = None  # unix seconds of the value's received_at, if it has one
    stale_timer: Cancellable | None = field(default=None, repr=False)
    stale_due: float = 0.0  # unix seconds the armed stale check is for
    # Messages already built for this seq, by (kind, base_seq): every client in step gets the
    # same object (and so the same encoded frame). Cleared by each update.
    messages: dict[tuple[str, int | None], Message] = field(default_factory=dict)


class Hub(Protocol):
    """The hub as a subscriber calls it back (implemented by ``StreamHub``)."""

    limits: StreamLimits
    metrics: Metrics | None
    clock: Callable[[], float]

    def index(self, key: str, subscriber: Any, present: bool) -> None:
        """Add or remove ``subscriber`` (a ``Subscriber``) from the fan-out set of ``key``."""
        ...

    def index_prefix(self, prefix: str, subscriber: Any, present: bool) -> None:
        """Add or remove ``subscriber`` from the wildcard set of ``prefix``."""
        ...

    def schedule(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        """Run ``callback`` after ``delay`` seconds."""
        ...

    def stream(self, key: str) -> Stream | None:
        """The current state of ``key``, if it has one."""
        ...

    def streams_with(self, prefix: str) -> Iterable[Stream]:
        """Every stream whose key starts with ``prefix``."""
        ...

    def freshness(self, key: str, now: float) -> tuple[int, bool] | None:
        """``(age_ms, stale)`` of the value of ``key`` at unix time ``now`` (None: untimed)."""
        ...


__all__ = [
    "MARKET_FIELDS",
    "Hub",
    "LimitExceeded",
    "Message",
    "Stream",
    "StreamLimits",
    "market_form",
]
