"""Server-Sent Events streaming (SPEC §7.2): LTP and token updates as ``text/event-stream``.

``GET /api/v1/ltp/live?pair=A,B`` (every supported pair without ``pair``),
``GET /api/v1/tokens/live?ids=a,b`` (every token without ``ids``) and
``GET /api/v1/tokens/{token_id}/live``, each with optional ``min_interval_ms``. Events are
``event: ltp_update|token_update``, ``id: <seq>``, ``data: <json>`` with the same JSON as
Socket.IO (a ``snapshot`` first, then ``delta``s with ``base_seq``). A comment
``: keepalive`` goes out when nothing else was written for ``heartbeat`` seconds. A
reconnecting client (``Last-Event-ID``) gets fresh snapshots: nothing is replayed.

Auth and rate limiting are the edge middleware's (``X-API-Key``, ``?api_key=`` or a session
``?token=`` on ``/api/*``); a key holds at most its tier's stream connections (429 beyond).
The stream ends when the client disconnects, when the service shuts down, when a write
blocks longer than ``send_timeout`` (a client that stopped reading), or — with a last
``event: session_expired`` / ``key_revoked`` ``{code, message}`` — when its session token
expires or its key is revoked; it then leaves no subscription, task or buffer behind.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import structlog
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tokenpulse.api.streams.access import StreamAccess
from tokenpulse.api.streams.hub import LimitExceeded, StreamHub
from tokenpulse.api.streams.sse_wire import (
    TRANSPORT,
    ChunkWriter,
    SseDispatcher,
    chunk_event,
    format_event,
)
from tokenpulse.api.streams.subscriber import Message, Subscriber
from tokenpulse.observability.metrics import Metrics

log = structlog.get_logger(__name__)

DEFAULT_HEARTBEAT = 15.0
DEFAULT_SEND_TIMEOUT = 10.0
RECONNECT_HINT = b"retry: 2000\n\n"
KEEPALIVE = b": keepalive\n\n"
SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    "Content-Type": "text/event-stream; charset=utf-8",
}


class EventStream(Response):
    """The streaming response of one SSE connection (a hub subscriber while it runs)."""

    media_type = "text/event-stream"

    def __init__(
        self,
        hub: StreamHub,
        metrics: Metrics,
        *,
        keys: list[str],
        prefix: str | None,
        interval_ms: int | None,
        heartbeat: float,
        send_timeout: float,
        strings: bool = False,
        access: StreamAccess | None = None,
        dispatcher: SseDispatcher | None = None,
    ) -> None:
        """``strings``: market values as exact decimal strings (``numbers=string``);
        ``dispatcher``: writes this stream's messages when they can go straight to the
        connection (else this stream's own task writes them)."""
        self.access = access
        self.key_id: str | None = None  # the caller's key, once admitted
        self.status_code = 200
        self.background = None
        self.init_headers(SSE_HEADERS)
        self.hub = hub
        self.metrics = metrics
        self.keys = keys
        self.prefix = prefix
        self.interval_ms = interval_ms
        self.heartbeat = heartbeat
        self.send_timeout = send_timeout
        self.strings = strings
        self._tick = max(0.01, min(heartbeat, send_timeout) / 2)  # the watchdog's period
        self._task: asyncio.Task[Any] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._writing_since: float | None = None  # loop time the pending write began
        self._last_write = 0.0
        self._cut_off = False
        self._direct: ChunkWriter | None = None  # body chunks straight to the connection
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher = dispatcher
        self._wake: asyncio.Event | None = None
        self._subscriber: Subscriber | None = None
        self._latency = metrics.stream_send_latency.labels(TRANSPORT)
        self._counters: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        wake = self._wake = asyncio.Event()
        subscriber = self._subscriber = self.hub.open(TRANSPORT, self._notify, principal=None)
        subscriber.strings = self.strings
        gone = asyncio.Event()
        ended: dict[str, str] = {}
        sid = f"sse-{id(subscriber)}"
        if not await self._admit(scope, sid, subscriber, ended, wake, send):
            return

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()
            wake.set()

        watcher = asyncio.create_task(watch_disconnect())
        reason = "disconnect"
        loop = asyncio.get_running_loop()
        self._task, self._last_write = asyncio.current_task(), loop.time()
        self._watchdog = loop.call_later(self._tick, self._watch, loop, wake)
        try:
            if self.keys:
                subscriber.subscribe(self.keys, self.interval_ms)
            if self.prefix is not None:
                subscriber.subscribe_prefix(self.prefix, bulk=False)
            start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
            if not await self._send(send, start) or not await self._write(send, RECONNECT_HINT):
                reason = "slow_client"
                return
            self._direct, self._loop = ChunkWriter.behind(scope), loop
            reason = await self._pump(subscriber, wake, gone, send)
            if ended:  # the session expired or the key was revoked: say so, then end
                event = "session_expired" if ended["code"] == "TOKEN_EXPIRED" else "key_revoked"
                await self._write(
                    send, b"event: %s\ndata: %s\n\n" % (event.encode(), orjson.dumps(ended))
                )
            if reason == "shutdown":  # finish the response cleanly; a client reconnects
                await self._send(send, {"type": "http.response.body", "body": b""})
        finally:
            self.hub.close(subscriber, reason)  # first: nothing below may skip it
            self._watchdog.cancel()
            if self.access is not None:
                self.access.close(sid)
            watcher.cancel()
            try:
                await watcher
            except asyncio.CancelledError:
                # The watcher's own cancellation ends here; a cancellation of this request
                # (server shutdown, a vanished client) must go on, not be swallowed.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    async def _admit(
        self,
        scope: Scope,
        sid: str,
        subscriber: Any,
        ended: dict[str, str],
        wake: asyncio.Event,
        send: Send,
    ) -> bool:
        """Count the connection against its key's tier; answer 429 when it has no room."""
        principal = scope.get("state", {}).get("principal")
        if self.access is None or principal is None:
            return True

        def end(reason: dict[str, str]) -> None:
            ended.update(reason)
            self.hub.close(subscriber, "session_end")
            wake.set()

        self.key_id = principal.key_id
        try:
            await self.access.open(sid, principal, end)
        except LimitExceeded as exc:
            self.hub.close(subscriber, "limit")
            body = orjson.dumps(
                {"status": "error", "error": {"code": exc.code, "message": exc.message}}
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return False
        return True

    def _watch(self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> None:
        """Every ``_tick`` s: cut off a write blocked past ``send_timeout``, or wake the pump
        for a keepalive when idle (one timer per connection, not one per write and wait)."""
        now = loop.time()
        if self._writing_since is not None and now - self._writing_since >= self.send_timeout:
            if self._task is not None and not self._cut_off:
                self._cut_off = True
                self._task.cancel()
        elif now - self._last_write >= self.heartbeat:
            wake.set()
        self._watchdog = loop.call_later(self._tick, self._watch, loop, wake)

    async def _pump(
        self, subscriber: Any, wake: asyncio.Event, gone: asyncio.Event, send: Send
    ) -> str:
        loop = asyncio.get_running_loop()
        while True:
            if gone.is_set():
                return "disconnect"
            if subscriber.closed:
                return "shutdown"
            wake.clear()
            messages = subscriber.take()
            if messages:
                ts_ms = int(time.time() * 1000)
                chunk = b"".join(format_event(m, ts_ms, self.strings) for m in messages)
                if not await self._write(send, chunk):
                    return "slow_client"
                self._sent(messages)
                continue
            if loop.time() - self._last_write >= self.heartbeat:
                if not await self._write(send, KEEPALIVE):
                    return "slow_client"
                continue
            await wake.wait()  # set by the hub, the disconnect watcher or the watchdog

    def _notify(self) -> None:
        """The hub has messages due: the dispatcher writes them with its next pass when they
        go straight to the connection; else this stream's task is woken to write them."""
        if self._dispatcher is not None and self._direct is not None:
            self._dispatcher.mark(self)
        else:
            self.wake()

    def wake(self) -> None:
        """Wake this stream's task (it writes what is due itself)."""
        if self._wake is not None:
            self._wake.set()

    def deliver(self, ts_ms: int) -> None:
        """The dispatcher's pass: write the due messages straight to the connection, or wake
        the task when they cannot go that way now (its own write pending, back-pressure)."""
        direct, subscriber = self._direct, self._subscriber
        if direct is None or subscriber is None or self._loop is None:
            return
        if subscriber.closed or self._writing_since is not None or not direct.ready:
            self.wake()
            return
        messages = subscriber.take()
        if len(messages) == 1:  # the common case: the chunk every client in step shares
            direct.write_framed(*chunk_event(messages[0], ts_ms, self.strings))
        elif messages:
            direct.write(b"".join(format_event(m, ts_ms, self.strings) for m in messages))
        else:
            return
        self._last_write = self._loop.time()
        self._sent(messages)

    def _sent(self, messages: list[Message]) -> None:
        """Count delivered messages: latency, per event, and against the caller's key."""
        now = time.perf_counter()
        for message in messages:
            self._latency.observe(now - message.accepted_at)
            counter = self._counters.get(message.event)
            if counter is None:
                labels = self.metrics.stream_messages_sent.labels
                counter = self._counters[message.event] = labels(TRANSPORT, message.event)
            counter.inc()
        if self.key_id is not None and self.access and self.access.messages:
            self.access.messages(self.key_id, len(messages))

    async def _write(self, send: Send, body: bytes) -> bool:
        direct = self._direct
        if direct is not None and direct.ready and self._loop is not None:
            direct.write(body)
            self._last_write = self._loop.time()
            return True
        message = {"type": "http.response.body", "body": body, "more_body": True}
        return await self._send(send, message)

    async def _send(self, send: Send, message: dict[str, Any]) -> bool:
        """False when the write blocked past the send timeout (the client stopped reading)."""
        loop = asyncio.get_running_loop()
        self._writing_since = loop.time()
        try:
            await send(message)
        except asyncio.CancelledError:
            task = self._task
            if not self._cut_off or task is None or task.uncancel() > 0:
                raise  # a cancellation of the request itself (shutdown), not the watchdog's
            self.metrics.stream_slow_disconnects.labels(TRANSPORT).inc()
            log.warning("SSE client stopped reading; closing the stream")
            return False
        finally:
            self._writing_since = None
        self._last_write = loop.time()
        return True


__all__ = ["DEFAULT_HEARTBEAT", "DEFAULT_SEND_TIMEOUT", "EventStream"]
