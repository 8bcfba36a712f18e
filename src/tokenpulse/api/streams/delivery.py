"""Writing hub messages into Socket.IO connections, with back-pressure (SPEC §7.3).

Delivery does not use python-socketio rooms or ``emit``: the hub knows who wants what, and one
dispatcher task takes every ready connection's due messages and puts them straight into its
Engine.IO socket queue — one encoded packet per distinct message per pass, shared by every
client in step. A socket with ``max_backlog`` packets still queued is given nothing more (its
messages keep conflating in the hub) until Engine.IO has handed its queue to the transport;
one that does not drain within ``send_timeout`` is disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from engineio import packet as eio_packet

from tokenpulse.api.streams.subscriber import Message, Subscriber
from tokenpulse.api.streams.wire import (
    RawSocket,
    install,
    raw_socket,
    text_frame,
)
from tokenpulse.observability.metrics import Metrics

log = structlog.get_logger(__name__)

TRANSPORT = "socketio"
DEFAULT_MAX_BACKLOG = 16  # Engine.IO packets queued for one socket before we hold back
EVENT_BUCKET_CAPACITY = 50.0  # inbound events a connection may burst


@dataclass(eq=False)
class Connection:
    """One Socket.IO connection: its hub subscriber and its inbound event budget."""

    sid: str
    eio_sid: str
    subscriber: Subscriber
    principal: str | None
    resume_id: str
    tokens: float = EVENT_BUCKET_CAPACITY
    refilled: float = field(default_factory=time.monotonic)
    rejected: int = 0
    drain: asyncio.Task[None] | None = None


def encode(message: Message, ts_ms: int, strings: bool = False) -> str:
    """The Socket.IO v5 EVENT packet (``2["event",{…}]``, default namespace) for a message
    (``strings``: market values as exact decimal strings)."""
    return "2" + orjson.dumps([message.event, message.payload(ts_ms, strings=strings)]).decode()


class Dispatcher:
    """The task that writes due messages of ready connections into their Engine.IO sockets."""

    def __init__(
        self,
        sio: Any,
        metrics: Metrics,
        *,
        forget: Callable[[Connection, str], None],
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        send_timeout: float = 10.0,
    ) -> None:
        self.sio = sio
        self.metrics = metrics
        self.preframed = install(sio.eio)  # frames written straight to uvicorn's WebSockets
        self._forget = forget
        self.max_backlog = max_backlog
        self.send_timeout = send_timeout
        self.max_backlog_seen = 0
        self.raw_writes = 0  # writes of pre-framed bytes straight to a transport
        self.on_sent: Callable[[str, int], None] | None = None  # (key id, messages): usage
        self._ready: dict[str, Connection] = {}
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the dispatcher task (idempotent)."""
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="sio-dispatch")

    async def stop(self) -> bool:
        """Stop the task; False if it was not running."""
        if self._task is None:
            return False
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        return True

    @property
    def ready_count(self) -> int:
        """Connections waiting for the next pass."""
        return len(self._ready)

    def mark_ready(self, conn: Connection) -> None:
        """``conn`` has messages due (the hub's notify)."""
        if conn.drain is None:
            self._ready[conn.sid] = conn
            if self._wake is not None:
                self._wake.set()

    def forget(self, conn: Connection) -> None:
        """Drop every trace of ``conn`` here (it is gone)."""
        self._ready.pop(conn.sid, None)
        if conn.drain is not None:
            conn.drain.cancel()
            conn.drain = None

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            ready, self._ready = self._ready, {}
            try:
                await self._dispatch(ready)
            except Exception:  # the dispatcher must survive anything one client does
                log.exception("stream dispatch failed")

    async def _dispatch(self, ready: dict[str, Connection]) -> None:
        sockets = self.sio.eio.sockets
        ts_ms = int(time.time() * 1000)
        packets: dict[tuple[int, bool], Any] = {}
        frames: dict[tuple[int, bool], bytes] = {}
        sent: dict[str, int] = {}
        latency = self.metrics.stream_send_latency.labels(TRANSPORT)
        for conn in ready.values():
            sock = sockets.get(conn.eio_sid)
            if sock is None or sock.closed or conn.subscriber.closed:
                continue
            raw = raw_socket(sock)
            if raw is not None:
                if not raw.open:
                    continue  # closing: Engine.IO ends the socket and we forget it then
                if raw.paused:
                    conn.drain = asyncio.create_task(self._await_raw(conn, sock, raw))
                    continue
            else:
                backlog = sock.queue.qsize()
                self.max_backlog_seen = max(self.max_backlog_seen, backlog)
                if backlog >= self.max_backlog:
                    conn.drain = asyncio.create_task(self._await_drain(conn, sock))
                    continue
            strings = conn.subscriber.strings
            taken = conn.subscriber.take()
            if not taken:
                continue
            if self.on_sent is not None and conn.principal is not None:
                self.on_sent(conn.principal, len(taken))
            chunk: list[bytes] = []
            for message in taken:
                # Clients in step share one Message object (the hub keeps it alive for this
                # seq), so its id (and the number form) names the frame; a bulk is per client.
                shared = message.kind != "bulk"
                frame_id = (id(message), strings)
                if raw is not None:
                    frame = frames.get(frame_id) if shared else None
                    if frame is None:
                        data = "4" + encode(message, ts_ms, strings)  # Engine.IO MESSAGE
                        frame = text_frame(data.encode())
                        if shared:
                            frames[frame_id] = frame
                    chunk.append(frame)
                else:
                    pkt = packets.get(frame_id) if shared else None
                    if pkt is None:
                        data = encode(message, ts_ms, strings)
                        pkt = eio_packet.Packet(eio_packet.MESSAGE, data=data)
                        if shared:
                            packets[frame_id] = pkt
                    # Straight into the socket's (unbounded) outgoing queue: the same packet
                    # object for every client of this message, and none of eio.send's per-call
                    # overhead. The backlog check above is what bounds the queue; ping
                    # timeouts are still enforced by Engine.IO's monitor task.
                    sock.queue.put_nowait(pkt)
                latency.observe(time.perf_counter() - message.accepted_at)
                sent[message.event] = sent.get(message.event, 0) + 1
            if chunk:
                # One write per connection and pass, of frames built once for every client.
                raw.write(chunk[0] if len(chunk) == 1 else b"".join(chunk))  # type: ignore[union-attr]
                self.raw_writes += 1
        for event, count in sent.items():
            self.metrics.stream_messages_sent.labels(TRANSPORT, event).inc(count)

    async def _await_raw(self, conn: Connection, sock: Any, raw: RawSocket) -> None:
        """Wait until the connection's transport takes writes again, or cut it off."""
        try:
            async with asyncio.timeout(self.send_timeout):
                await raw.drained()
        except TimeoutError:
            conn.drain = None
            await self._cut_off(conn, sock)
            return
        conn.drain = None
        self.mark_ready(conn)

    async def _await_drain(self, conn: Connection, sock: Any) -> None:
        """Wait until Engine.IO has handed this socket's queue to the transport, or cut it off."""
        try:
            await asyncio.wait_for(sock.queue.join(), self.send_timeout)
        except TimeoutError:
            conn.drain = None
            await self._cut_off(conn, sock)
            return
        conn.drain = None
        self.mark_ready(conn)

    async def _cut_off(self, conn: Connection, sock: Any) -> None:
        self.metrics.stream_slow_disconnects.labels(TRANSPORT).inc()
        log.warning("stream client too slow; disconnecting", transport=TRANSPORT)
        self._forget(conn, "slow_client")
        with contextlib.suppress(Exception):
            await self.sio.disconnect(conn.sid)
        with contextlib.suppress(Exception):
            await sock.close(wait=False, abort=True)


__all__ = ["DEFAULT_MAX_BACKLOG", "TRANSPORT", "Connection", "Dispatcher", "encode"]
