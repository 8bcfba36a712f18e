"""Socket.IO streaming (SPEC §7.1) on python-socketio's ASGI server, protocol v5.

Handshake auth ``auth: {api_key}`` or ``auth: {token}`` (see ``access.py``); a refused
connection gets ``connect_error`` whose data is ``{message, code, data: {code, message}}``
(the JS client shows ``err.message`` and ``err.data.code``). Events, each acknowledged with
``{ok: true, subscribed: […], resume}`` or ``{ok: false, error: {code, message}}``:
``subscribe_pair`` / ``unsubscribe_pair`` (``{pair}`` or ``{pairs: […]}``),
``subscribe_token`` / ``unsubscribe_token`` (``{token_id}`` or ``{token_ids: […]}``), both
with optional ``min_interval_ms``; ``subscribe_all`` / ``unsubscribe_all`` (``bulk_update``
every ``bulk_interval``); ``resume`` (``{resume: <id>}``, also accepted as ``auth.resume``).
A subscribe (or ``resume``, or ``auth``) with ``numbers: "string"`` switches the connection's
market values to exact decimal strings (``"number"`` switches back; SPEC §4.6); the ack says
which form is in use. The whole contract is :mod:`tokenpulse.api.streams.asyncapi`.

Messages are written by ``delivery.py`` (no rooms, back-pressure per socket). Fan-out across
instances comes from the event bus (every instance's hub sees every update), so
python-socketio's Redis manager is not used: it would deliver each update twice.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import socketio
import structlog

from tokenpulse.api.auth import Authenticator
from tokenpulse.api.streams import access as acc
from tokenpulse.api.streams import requests as req
from tokenpulse.api.streams._engineio import PromptSocketServer
from tokenpulse.api.streams.delivery import (
    DEFAULT_MAX_BACKLOG,
    EVENT_BUCKET_CAPACITY,
    TRANSPORT,
    Connection,
    Dispatcher,
)
from tokenpulse.api.streams.hub import LimitExceeded, StreamHub
from tokenpulse.api.streams.requests import (
    ACK_ERROR_CODES,
    CLIENT_EVENTS,
    CONNECT_ERROR_CODES,
    INTERNAL_ERROR,
)
from tokenpulse.api.streams.resume import ResumeStore
from tokenpulse.bus.topics import PAIR_PREFIX, TOKEN_PREFIX, pair_key, token_key
from tokenpulse.domain.errors import InvalidParameter, RateLimited, TokenpulseError, Unauthorized
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.observability.metrics import Metrics
from tokenpulse.wire.numbers import NUMBERS_NUMBER, NUMBERS_STRING

log = structlog.get_logger(__name__)

NAMESPACE = "/"
EVENT_BUCKET_REFILL = 20.0  # … and sustain per second
MAX_REJECTED_EVENTS = 200  # a client still flooding after this many refusals is disconnected

Seeder = Callable[[str], dict[str, Any] | None]


class Refused(socketio.exceptions.ConnectionRefusedError):  # type: ignore[misc]
    """Refuse a handshake with ``{message, code, data: {code, message}}`` as connect_error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        detail = {"code": code, "message": message}
        self.error_args = {"message": message, "code": code, "data": detail}


class SocketIoGateway:
    """The Socket.IO server, its event handlers and the dispatcher that writes hub messages."""

    def __init__(
        self,
        hub: StreamHub,
        *,
        registry: PairRegistry,
        supported_pairs: Collection[Pair],
        authenticator: Authenticator | None,
        metrics: Metrics,
        token_resolver: req.TokenResolver = req.accept_any_token,
        seed: Seeder | None = None,
        known_keys: Callable[[str], list[str]] | None = None,
        cors_origins: list[str] | None = None,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        send_timeout: float = 10.0,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        access: acc.StreamAccess | None = None,
    ) -> None:
        self.hub = hub
        self.access = access
        self.registry = registry
        self.supported_pairs = supported_pairs
        self.authenticator = authenticator
        self.metrics = metrics
        self.token_resolver = token_resolver
        self.seed = seed
        self.known_keys = known_keys
        cors: Any = None if not cors_origins else ("*" if "*" in cors_origins else cors_origins)
        self.sio = PromptSocketServer(
            async_mode="asgi",
            cors_allowed_origins=cors,
            max_http_buffer_size=hub.limits.max_message_bytes,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            logger=False,
            engineio_logger=False,
        )
        self._conns: dict[str, Connection] = {}
        self._resume = ResumeStore()
        self.delivery = Dispatcher(
            self.sio,
            metrics,
            forget=self._forget,
            max_backlog=max_backlog,
            send_timeout=send_timeout,
        )
        if access is not None:
            access.bind(self.sio, self.delivery)
        self._failures: set[tuple[str, str]] = set()
        self._register()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the dispatcher (idempotent)."""
        await self.delivery.start()

    @property
    def max_backlog_seen(self) -> int:
        """The longest Engine.IO queue seen before a write (for tests and tuning)."""
        return self.delivery.max_backlog_seen

    async def disconnect_all(self) -> None:
        """Disconnect every client (they may reconnect elsewhere and resume)."""
        for sid in list(self._conns):
            with contextlib.suppress(Exception):
                await self.sio.disconnect(sid)
        for conn in list(self._conns.values()):
            self._forget(conn, "shutdown")

    async def stop(self) -> None:
        """Disconnect every client, stop the dispatcher and Engine.IO's background task."""
        await self.disconnect_all()
        if await self.delivery.stop():
            await self.sio.shutdown()

    def stats(self) -> dict[str, int]:
        """Connections, ready queue, drain waiters, resume entries and Socket.IO rooms."""
        rooms = self.sio.manager.rooms.get(NAMESPACE, {})
        return {
            "connections": len(self._conns),
            "ready": self.delivery.ready_count,
            "draining": sum(1 for c in self._conns.values() if c.drain is not None),
            "resume_entries": len(self._resume),
            "rooms": sum(len(members) for members in rooms.values()),
            "engine_sockets": sum(1 for s in self.sio.eio.sockets.values() if not s.closed),
        }

    # ------------------------------------------------------------------ handshake

    def _register(self) -> None:
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        handlers: dict[str, Callable[[Connection, Any], Awaitable[dict[str, Any]]]] = {
            "subscribe_pair": self._subscribe_pair,
            "unsubscribe_pair": self._unsubscribe_pair,
            "subscribe_token": self._subscribe_token,
            "unsubscribe_token": self._unsubscribe_token,
            "subscribe_all": self._subscribe_all,
            "unsubscribe_all": self._unsubscribe_all,
            "resume": self._resume_event,
        }
        assert tuple(handlers) == CLIENT_EVENTS  # the documented events are the handled ones
        for event, handler in handlers.items():
            self.sio.on(event, self._guarded(event, handler))

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        principal = await self._authenticate(environ, auth, sid)
        try:
            strings = req.numbers_form(auth)
            subscriber = self.hub.open(TRANSPORT, lambda: self._ready(sid), principal=principal)
        except (InvalidParameter, LimitExceeded) as exc:
            if isinstance(exc, LimitExceeded):
                self.metrics.stream_rejected.labels(TRANSPORT, "too_many_connections").inc()
            if self.access is not None:
                self.access.close(sid)  # admitted by _authenticate: free its slot
            raise Refused(exc.code, exc.message) from None
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        conn = Connection(sid, eio_sid, subscriber, principal, secrets.token_urlsafe(12))
        self._conns[sid] = conn
        self._set_numbers(conn, strings)
        resume_id = auth.get("resume") if isinstance(auth, dict) else None
        if isinstance(resume_id, str):
            self._restore(conn, resume_id)

    async def _authenticate(self, environ: dict[str, Any], auth: Any, sid: str) -> str | None:
        if self.authenticator is None:
            return None
        try:
            principal = await acc.handshake(self.authenticator, self.access, environ, auth, sid)
        except acc.StreamRefused as exc:
            reason = acc.REFUSAL_REASONS.get(exc.code, "unauthorized")
            self.metrics.stream_rejected.labels(TRANSPORT, reason).inc()
            if reason == "unauthorized":
                self.metrics.auth_failures.labels(exc.reason).inc()
            raise Refused(exc.code, exc.message) from None
        return principal.key_id

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        conn = self._conns.get(sid)
        if conn is not None:
            self._forget(conn, "disconnect")

    def _forget(self, conn: Connection, reason: str) -> None:
        """Remember the subscriptions for resume, then drop every trace of the connection."""
        if self._conns.pop(conn.sid, None) is None:
            return
        if self.access is not None:
            self.access.close(conn.sid)
        self.delivery.forget(conn)
        sub = conn.subscriber
        self._resume.save(conn.resume_id, conn.principal, sub.intervals(), dict(sub.wildcards))
        self.hub.close(sub, reason)

    def _restore(self, conn: Connection, resume_id: str) -> list[str]:
        saved = self._resume.take(resume_id, conn.principal)
        if saved is None:
            return []
        conn.resume_id = resume_id
        by_interval: dict[int | None, list[str]] = {}
        for key, interval in saved.keys.items():
            by_interval.setdefault(interval, []).append(key)
        for interval, keys in by_interval.items():
            self._seed(keys)
            conn.subscriber.subscribe(keys, interval)
        for prefix, bulk in saved.wildcards.items():
            conn.subscriber.subscribe_prefix(prefix, bulk=bulk)
        return list(saved.keys)

    # ------------------------------------------------------------------ events

    def _guarded(
        self, event: str, handler: Callable[[Connection, Any], Awaitable[dict[str, Any]]]
    ) -> Callable[..., Awaitable[dict[str, Any]]]:
        async def run(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
            conn = self._conns.get(sid)
            if conn is None:
                return _error(Unauthorized.code, "not connected")
            try:
                self._take_token(conn)
                return await handler(conn, data)
            except TokenpulseError as exc:
                self.metrics.stream_rejected.labels(TRANSPORT, exc.code.lower()).inc()
                if isinstance(exc, RateLimited) and conn.rejected > MAX_REJECTED_EVENTS:
                    await self.sio.disconnect(sid)
                return _error(exc.code, exc.message)
            except Exception as exc:  # a bug in one handler must not take the connection down
                self._log_failure(event, exc)
                self.metrics.stream_rejected.labels(TRANSPORT, "internal_error").inc()
                return _error(INTERNAL_ERROR, "the server could not handle this request")

        return run

    def _log_failure(self, event: str, exc: Exception) -> None:
        """The traceback once per event and exception type; a short line after that."""
        kind = (event, type(exc).__name__)
        if kind in self._failures:
            log.warning("stream event handler failed again", stream_event=event, error=kind[1])
            return
        self._failures.add(kind)
        log.error("stream event handler failed", stream_event=event, exc_info=exc)

    def _take_token(self, conn: Connection) -> None:
        now = time.monotonic()
        conn.tokens = min(
            EVENT_BUCKET_CAPACITY, conn.tokens + (now - conn.refilled) * EVENT_BUCKET_REFILL
        )
        conn.refilled = now
        if conn.tokens < 1:
            conn.rejected += 1
            raise RateLimited("too many requests on this connection", retry_after=1.0)
        conn.tokens -= 1

    def _ok(self, conn: Connection, **fields: Any) -> dict[str, Any]:
        numbers = NUMBERS_STRING if conn.subscriber.strings else NUMBERS_NUMBER
        return {"ok": True, **fields, "numbers": numbers, "resume": conn.resume_id}

    @staticmethod
    def _set_numbers(conn: Connection, strings: bool | None) -> None:
        if strings is not None:
            conn.subscriber.strings = strings

    async def _subscribe_pair(self, conn: Connection, data: Any) -> dict[str, Any]:
        texts = req.names(data, "pair", "pairs", limit=self.hub.limits.max_subscriptions)
        interval, strings = self._interval(conn, data), req.numbers_form(data)
        pairs = req.resolve_pairs(texts, self.registry, self.supported_pairs)
        self._subscribe(conn, [pair_key(p) for p in pairs], interval, strings)
        return self._ok(conn, subscribed=pairs)

    async def _unsubscribe_pair(self, conn: Connection, data: Any) -> dict[str, Any]:
        texts = req.names(data, "pair", "pairs", limit=self.hub.limits.max_subscriptions)
        pairs = req.resolve_pairs(texts, self.registry, self.supported_pairs)
        removed = conn.subscriber.unsubscribe(pair_key(p) for p in pairs)
        return self._unsubscribed(conn, removed, PAIR_PREFIX)

    async def _subscribe_token(self, conn: Connection, data: Any) -> dict[str, Any]:
        texts = req.names(data, "token_id", "token_ids", limit=self.hub.limits.max_subscriptions)
        interval, strings = self._interval(conn, data), req.numbers_form(data)
        ids = req.resolve_tokens(texts, self.token_resolver)
        self._subscribe(conn, [token_key(t) for t in ids], interval, strings)
        return self._ok(conn, subscribed=ids)

    async def _unsubscribe_token(self, conn: Connection, data: Any) -> dict[str, Any]:
        texts = req.names(data, "token_id", "token_ids", limit=self.hub.limits.max_subscriptions)
        ids = req.resolve_tokens(texts, self.token_resolver)
        removed = conn.subscriber.unsubscribe(token_key(t) for t in ids)
        return self._unsubscribed(conn, removed, TOKEN_PREFIX)

    def _subscribe(
        self, conn: Connection, keys: list[str], interval: int | None, strings: bool | None
    ) -> None:
        """Within the tier's subscription cap: seed, switch the number form, subscribe."""
        keys = self._capped(conn, keys)
        self._seed(keys)
        self._set_numbers(conn, strings)
        conn.subscriber.subscribe(keys, interval)

    def _unsubscribed(self, conn: Connection, removed: list[str], prefix: str) -> dict[str, Any]:
        left = [k.removeprefix(prefix) for k in conn.subscriber.keys(prefix)]
        return self._ok(
            conn, unsubscribed=[k.removeprefix(prefix) for k in removed], subscribed=left
        )

    async def _subscribe_all(self, conn: Connection, data: Any) -> dict[str, Any]:
        if data is not None and not isinstance(data, dict):
            raise InvalidParameter("subscribe_all takes no payload or an object")
        self._set_numbers(conn, req.numbers_form(data))
        if self.known_keys is not None:
            self._seed(self.known_keys(PAIR_PREFIX) + self.known_keys(TOKEN_PREFIX))
        for prefix in (PAIR_PREFIX, TOKEN_PREFIX):
            conn.subscriber.subscribe_prefix(prefix, bulk=True)
        interval_ms = int(self.hub.limits.bulk_interval * 1000)
        return self._ok(conn, subscribed=["*"], bulk_interval_ms=interval_ms)

    async def _unsubscribe_all(self, conn: Connection, data: Any) -> dict[str, Any]:
        for prefix in (PAIR_PREFIX, TOKEN_PREFIX):
            conn.subscriber.unsubscribe_prefix(prefix)
        return self._ok(conn, unsubscribed=["*"], subscribed=conn.subscriber.keys())

    async def _resume_event(self, conn: Connection, data: Any) -> dict[str, Any]:
        resume_id = data.get("resume") if isinstance(data, dict) else data
        if not isinstance(resume_id, str) or not resume_id:
            raise InvalidParameter("expected {resume: <id>}", parameter="resume")
        self._set_numbers(conn, req.numbers_form(data))
        restored = self._restore(conn, resume_id)
        return self._ok(conn, subscribed=[k.partition(":")[2] for k in restored])

    def _interval(self, conn: Connection, data: Any) -> int | None:
        asked = req.interval_ms(data.get("min_interval_ms"), self.hub.limits)
        return asked if self.access is None else self.access.interval(conn.sid, asked)

    def _capped(self, conn: Connection, keys: list[str]) -> list[str]:
        if self.access is not None:
            have = set(conn.subscriber.keys())
            self.access.check_subscriptions(conn.sid, len(have), len(set(keys) - have))
        return keys

    def _ready(self, sid: str) -> None:
        conn = self._conns.get(sid)
        if conn is not None:
            self.delivery.mark_ready(conn)

    def _seed(self, keys: list[str]) -> None:
        """Give the hub a first state for keys it has none of (values from before it started)."""
        if self.seed is None:
            return
        for key in keys:
            if self.hub.stream(key) is None and (data := self.seed(key)) is not None:
                self.hub.publish(key, data)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


__all__ = [
    "ACK_ERROR_CODES",
    "CLIENT_EVENTS",
    "CONNECT_ERROR_CODES",
    "DEFAULT_MAX_BACKLOG",
    "Refused",
    "SocketIoGateway",
]
