"""Socket.IO streaming (SPEC §7.1) on python-socketio's ASGI server, protocol v5.

Handshake auth ``auth: {api_key}`` (or the ``X-API-Key`` header) when auth is on; a refused
connection gets ``connect_error`` whose data is ``{message, code, data: {code, message}}``
(the JS client shows ``err.message`` and ``err.data.code``). Events, each acknowledged with
``{ok: true, subscribed: […], resume}`` or ``{ok: false, error: {code, message}}``:
``subscribe_pair`` / ``unsubscribe_pair`` (``{pair}`` or ``{pairs: […]}``),
``subscribe_token`` / ``unsubscribe_token`` (``{token_id}`` or ``{token_ids: […]}``), both
with optional ``min_interval_ms``; ``subscribe_all`` / ``unsubscribe_all`` (``bulk_update``
every ``bulk_interval``); ``resume`` (``{resume: <id>}``, also accepted as ``auth.resume``).

Delivery does not use rooms: the hub knows who wants what, and one dispatcher task writes
every due message straight into the Engine.IO socket, encoding each distinct message once
per pass. Back-pressure: a socket with ``max_backlog`` packets still queued in Engine.IO is
not given more — its messages keep conflating in the hub — until its queue drains; one that
does not drain within ``send_timeout`` is disconnected. Fan-out across instances comes
from the event bus (every instance's hub sees every update), so python-socketio's Redis
manager is not used: it would deliver each update twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import orjson
import socketio
import structlog

from tokenpulse.api.auth import Authenticator, Principal
from tokenpulse.api.streams import requests as req
from tokenpulse.api.streams.hub import LimitExceeded, StreamHub
from tokenpulse.api.streams.subscriber import Message, Subscriber
from tokenpulse.api.streams.topics import PAIR_PREFIX, TOKEN_PREFIX, pair_key, token_key
from tokenpulse.domain.errors import InvalidParameter, RateLimited, TokenpulseError
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.observability.metrics import Metrics

log = structlog.get_logger(__name__)

TRANSPORT = "socketio"
NAMESPACE = "/"
EVENT_BUCKET_CAPACITY = 50.0  # inbound events a connection may burst
EVENT_BUCKET_REFILL = 20.0  # … and sustain per second
MAX_REJECTED_EVENTS = 200  # a client still flooding after this many refusals is disconnected
DEFAULT_MAX_BACKLOG = 16  # Engine.IO packets queued for one socket before we hold back
RESUME_TTL = 300.0
RESUME_MAX = 50_000

Seeder = Callable[[str], dict[str, Any] | None]


class Refused(socketio.exceptions.ConnectionRefusedError):  # type: ignore[misc]
    """Refuse a handshake with ``{message, code, data: {code, message}}`` as connect_error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        detail = {"code": code, "message": message}
        self.error_args = {"message": message, "code": code, "data": detail}


@dataclass(eq=False)
class _Conn:
    sid: str
    eio_sid: str
    subscriber: Subscriber
    principal: str | None
    resume_id: str
    tokens: float = EVENT_BUCKET_CAPACITY
    refilled: float = field(default_factory=time.monotonic)
    rejected: int = 0
    drain: asyncio.Task[None] | None = None


def encode(message: Message, ts_ms: int) -> str:
    """The Socket.IO v5 EVENT packet (``2["event",{…}]``, default namespace) for a message."""
    return "2" + orjson.dumps([message.event, message.payload(ts_ms)]).decode()


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
        cors_origins: list[str] | None = None,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        send_timeout: float = 10.0,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
    ) -> None:
        self.hub = hub
        self.registry = registry
        self.supported_pairs = supported_pairs
        self.authenticator = authenticator
        self.metrics = metrics
        self.token_resolver = token_resolver
        self.seed = seed
        self.send_timeout = send_timeout
        self.max_backlog = max_backlog
        self.max_backlog_seen = 0
        cors: Any = None if not cors_origins else ("*" if "*" in cors_origins else cors_origins)
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=cors,
            max_http_buffer_size=hub.limits.max_message_bytes,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            logger=False,
            engineio_logger=False,
        )
        self._conns: dict[str, _Conn] = {}
        self._ready: dict[str, _Conn] = {}
        self._resume: OrderedDict[str, tuple[str | None, float, dict[str, Any]]] = OrderedDict()
        self._wake: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._failures: set[tuple[str, str]] = set()
        self._register()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the dispatcher (idempotent)."""
        if self._dispatcher is None:
            self._wake = asyncio.Event()
            self._dispatcher = asyncio.create_task(self._dispatch_forever(), name="sio-dispatch")

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
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
            await self.sio.shutdown()

    def stats(self) -> dict[str, int]:
        """Connections, ready queue, drain waiters, resume entries and Socket.IO rooms."""
        rooms = self.sio.manager.rooms.get(NAMESPACE, {})
        return {
            "connections": len(self._conns),
            "ready": len(self._ready),
            "draining": sum(1 for c in self._conns.values() if c.drain is not None),
            "resume_entries": len(self._resume),
            "rooms": sum(len(members) for members in rooms.values()),
            "engine_sockets": sum(1 for s in self.sio.eio.sockets.values() if not s.closed),
        }

    # ------------------------------------------------------------------ handshake

    def _register(self) -> None:
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        handlers: dict[str, Callable[[_Conn, Any], Awaitable[dict[str, Any]]]] = {
            "subscribe_pair": self._subscribe_pair,
            "unsubscribe_pair": self._unsubscribe_pair,
            "subscribe_token": self._subscribe_token,
            "unsubscribe_token": self._unsubscribe_token,
            "subscribe_all": self._subscribe_all,
            "unsubscribe_all": self._unsubscribe_all,
            "resume": self._resume_event,
        }
        for event, handler in handlers.items():
            self.sio.on(event, self._guarded(event, handler))

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        principal = self._authenticate(environ, auth)
        try:
            subscriber = self.hub.open(
                TRANSPORT, lambda: self._mark_ready(sid), principal=principal
            )
        except LimitExceeded as exc:
            self.metrics.stream_rejected.labels(TRANSPORT, "too_many_connections").inc()
            raise Refused(exc.code, exc.message) from None
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        conn = _Conn(sid, eio_sid, subscriber, principal, secrets.token_urlsafe(12))
        self._conns[sid] = conn
        resume_id = auth.get("resume") if isinstance(auth, dict) else None
        if isinstance(resume_id, str):
            self._restore(conn, resume_id)

    def _authenticate(self, environ: dict[str, Any], auth: Any) -> str | None:
        if self.authenticator is None:
            return None
        key = auth.get("api_key") if isinstance(auth, dict) else None
        if key is None:
            key = environ.get("HTTP_X_API_KEY")
        if not isinstance(key, str) or not key:
            self.metrics.auth_failures.labels("missing").inc()
            self.metrics.stream_rejected.labels(TRANSPORT, "unauthorized").inc()
            raise Refused("UNAUTHORIZED", "missing API key: connect with auth: {api_key: …}")
        principal: Principal | None = self.authenticator.authenticate(key.encode())
        if principal is None:
            self.metrics.auth_failures.labels("invalid").inc()
            self.metrics.stream_rejected.labels(TRANSPORT, "unauthorized").inc()
            raise Refused("UNAUTHORIZED", "invalid API key")
        return principal.key_id

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        conn = self._conns.get(sid)
        if conn is not None:
            self._forget(conn, "disconnect")

    def _forget(self, conn: _Conn, reason: str) -> None:
        """Remember the subscriptions for resume, then drop every trace of the connection."""
        if self._conns.pop(conn.sid, None) is None:
            return
        self._ready.pop(conn.sid, None)
        sub = conn.subscriber
        if sub.subs or sub.wildcards:
            self._resume[conn.resume_id] = (
                conn.principal,
                time.monotonic(),
                {"keys": sub.intervals(), "wildcards": dict(sub.wildcards)},
            )
            self._resume.move_to_end(conn.resume_id)
            while len(self._resume) > RESUME_MAX:
                self._resume.popitem(last=False)
        self.hub.close(sub, reason)
        if conn.drain is not None:
            conn.drain.cancel()
            conn.drain = None

    def _restore(self, conn: _Conn, resume_id: str) -> list[str]:
        now = time.monotonic()
        while self._resume:  # expire the oldest entries first
            oldest = next(iter(self._resume.values()))
            if now - oldest[1] <= RESUME_TTL:
                break
            self._resume.popitem(last=False)
        saved = self._resume.get(resume_id)
        if saved is None or saved[0] != conn.principal:
            return []
        del self._resume[resume_id]
        conn.resume_id = resume_id
        state = saved[2]
        by_interval: dict[int | None, list[str]] = {}
        for key, interval in state["keys"].items():
            by_interval.setdefault(interval, []).append(key)
        for interval, keys in by_interval.items():
            self._seed(keys)
            conn.subscriber.subscribe(keys, interval)
        for prefix, bulk in state["wildcards"].items():
            conn.subscriber.subscribe_prefix(prefix, bulk=bulk)
        return list(state["keys"])

    # ------------------------------------------------------------------ events

    def _guarded(
        self, event: str, handler: Callable[[_Conn, Any], Awaitable[dict[str, Any]]]
    ) -> Callable[..., Awaitable[dict[str, Any]]]:
        async def run(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
            conn = self._conns.get(sid)
            if conn is None:
                return _error("UNAUTHORIZED", "not connected")
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
                return _error("INTERNAL_ERROR", "the server could not handle this request")

        return run

    def _log_failure(self, event: str, exc: Exception) -> None:
        """The traceback once per event and exception type; a short line after that."""
        kind = (event, type(exc).__name__)
        if kind in self._failures:
            log.warning("stream event handler failed again", stream_event=event, error=kind[1])
            return
        self._failures.add(kind)
        log.error("stream event handler failed", stream_event=event, exc_info=exc)

    def _take_token(self, conn: _Conn) -> None:
        now = time.monotonic()
        conn.tokens = min(
            EVENT_BUCKET_CAPACITY, conn.tokens + (now - conn.refilled) * EVENT_BUCKET_REFILL
        )
        conn.refilled = now
        if conn.tokens < 1:
            conn.rejected += 1
            raise RateLimited("too many requests on this connection", retry_after=1.0)
        conn.tokens -= 1

    def _ok(self, conn: _Conn, **fields: Any) -> dict[str, Any]:
        return {"ok": True, **fields, "resume": conn.resume_id}

    async def _subscribe_pair(self, conn: _Conn, data: Any) -> dict[str, Any]:
        limit = self.hub.limits.max_subscriptions
        texts = req.names(data, "pair", "pairs", limit=limit)
        interval = req.interval_ms(data.get("min_interval_ms"), self.hub.limits)
        pairs = req.resolve_pairs(texts, self.registry, self.supported_pairs)
        keys = [pair_key(p) for p in pairs]
        self._seed(keys)
        conn.subscriber.subscribe(keys, interval)
        return self._ok(conn, subscribed=pairs)

    async def _unsubscribe_pair(self, conn: _Conn, data: Any) -> dict[str, Any]:
        texts = req.names(data, "pair", "pairs", limit=self.hub.limits.max_subscriptions)
        pairs = req.resolve_pairs(texts, self.registry, self.supported_pairs)
        removed = conn.subscriber.unsubscribe(pair_key(p) for p in pairs)
        left = [k.removeprefix(PAIR_PREFIX) for k in conn.subscriber.keys(PAIR_PREFIX)]
        return self._ok(
            conn, unsubscribed=[k.removeprefix(PAIR_PREFIX) for k in removed], subscribed=left
        )

    async def _subscribe_token(self, conn: _Conn, data: Any) -> dict[str, Any]:
        limit = self.hub.limits.max_subscriptions
        texts = req.names(data, "token_id", "token_ids", limit=limit)
        interval = req.interval_ms(data.get("min_interval_ms"), self.hub.limits)
        ids = req.resolve_tokens(texts, self.token_resolver)
        conn.subscriber.subscribe([token_key(t) for t in ids], interval)
        return self._ok(conn, subscribed=ids)

    async def _unsubscribe_token(self, conn: _Conn, data: Any) -> dict[str, Any]:
        texts = req.names(data, "token_id", "token_ids", limit=self.hub.limits.max_subscriptions)
        ids = req.resolve_tokens(texts, self.token_resolver)
        removed = conn.subscriber.unsubscribe(token_key(t) for t in ids)
        left = [k.removeprefix(TOKEN_PREFIX) for k in conn.subscriber.keys(TOKEN_PREFIX)]
        return self._ok(
            conn, unsubscribed=[k.removeprefix(TOKEN_PREFIX) for k in removed], subscribed=left
        )

    async def _subscribe_all(self, conn: _Conn, data: Any) -> dict[str, Any]:
        if data is not None and not isinstance(data, dict):
            raise InvalidParameter("subscribe_all takes no payload or an object")
        self._seed([pair_key(str(p)) for p in self.supported_pairs])
        for prefix in (PAIR_PREFIX, TOKEN_PREFIX):
            conn.subscriber.subscribe_prefix(prefix, bulk=True)
        interval_ms = int(self.hub.limits.bulk_interval * 1000)
        return self._ok(conn, subscribed=["*"], bulk_interval_ms=interval_ms)

    async def _unsubscribe_all(self, conn: _Conn, data: Any) -> dict[str, Any]:
        for prefix in (PAIR_PREFIX, TOKEN_PREFIX):
            conn.subscriber.unsubscribe_prefix(prefix)
        return self._ok(conn, unsubscribed=["*"], subscribed=conn.subscriber.keys())

    async def _resume_event(self, conn: _Conn, data: Any) -> dict[str, Any]:
        resume_id = data.get("resume") if isinstance(data, dict) else data
        if not isinstance(resume_id, str) or not resume_id:
            raise InvalidParameter("expected {resume: <id>}", parameter="resume")
        restored = self._restore(conn, resume_id)
        return self._ok(conn, subscribed=[k.partition(":")[2] for k in restored])

    def _seed(self, keys: list[str]) -> None:
        """Give the hub a first state for keys it has none of (values from before it started)."""
        if self.seed is None:
            return
        for key in keys:
            if self.hub.stream(key) is None and (data := self.seed(key)) is not None:
                self.hub.publish(key, data)

    # ------------------------------------------------------------------ delivery

    def _mark_ready(self, sid: str) -> None:
        conn = self._conns.get(sid)
        if conn is not None and conn.drain is None:
            self._ready[sid] = conn
            if self._wake is not None:
                self._wake.set()

    async def _dispatch_forever(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            ready, self._ready = self._ready, {}
            try:
                await self._dispatch(ready)
            except Exception:  # the dispatcher must survive anything one client does
                log.exception("stream dispatch failed")

    async def _dispatch(self, ready: dict[str, _Conn]) -> None:
        eio = self.sio.eio
        ts_ms = int(time.time() * 1000)
        frames: dict[Any, str] = {}
        sent: dict[str, int] = {}
        latency = self.metrics.stream_send_latency.labels(TRANSPORT)
        for conn in ready.values():
            sock = eio.sockets.get(conn.eio_sid)
            if sock is None or sock.closed or conn.subscriber.closed:
                continue
            backlog = sock.queue.qsize()
            self.max_backlog_seen = max(self.max_backlog_seen, backlog)
            if backlog >= self.max_backlog:
                conn.drain = asyncio.create_task(self._await_drain(conn, sock))
                continue
            for message in conn.subscriber.take():
                key = message.cache_key
                frame = frames.get(key) if key is not None else None
                if frame is None:
                    frame = encode(message, ts_ms)
                    if key is not None:
                        frames[key] = frame
                await eio.send(conn.eio_sid, frame)
                latency.observe(time.perf_counter() - message.accepted_at)
                sent[message.event] = sent.get(message.event, 0) + 1
        for event, count in sent.items():
            self.metrics.stream_messages_sent.labels(TRANSPORT, event).inc(count)

    async def _await_drain(self, conn: _Conn, sock: Any) -> None:
        """Wait until Engine.IO has handed this socket's queue to the transport, or cut it off."""
        try:
            await asyncio.wait_for(sock.queue.join(), self.send_timeout)
        except TimeoutError:
            conn.drain = None
            await self._cut_off(conn, sock)
            return
        conn.drain = None
        self._mark_ready(conn.sid)

    async def _cut_off(self, conn: _Conn, sock: Any) -> None:
        self.metrics.stream_slow_disconnects.labels(TRANSPORT).inc()
        log.warning("stream client too slow; disconnecting", transport=TRANSPORT)
        self._forget(conn, "slow_client")
        with contextlib.suppress(Exception):
            await self.sio.disconnect(conn.sid)
        with contextlib.suppress(Exception):
            await sock.close(wait=False, abort=True)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


__all__ = ["DEFAULT_MAX_BACKLOG", "Refused", "SocketIoGateway", "encode"]
