"""Cheap load clients for the fan-out benchmark: asyncio protocols, no task per message.

A client on aiohttp costs a task wake-up, a queue hand-off and a message object per message
received, which at tens of thousands of messages per second made the load generator as
expensive as the server it measures. These clients parse what arrives in the transport's
``data_received`` callback and account for each message there:

- :class:`EngineIOClient`: Engine.IO v4 / Socket.IO v5 over a bare RFC 6455 WebSocket (client
  frames masked, server frames read unmasked; ping answered with pong, Engine.IO ``2`` with
  ``3``); no extension is offered, so no frame is compressed.
- :class:`SSEClient`: ``GET`` with ``Accept: text/event-stream`` over HTTP/1.1, chunked or
  not, each event's ``data:`` line parsed.

Both end when the connection is lost; ``run`` raises if that happened before it was
cancelled, or if the server refused.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

Handle = Callable[[bytes, float], None]  # (JSON text of one message, receipt time in ms)


class _Client(asyncio.Protocol):
    """What both clients share: the HTTP head, the outcome, the transport."""

    def __init__(self, request: bytes, on_message: Handle, subscribed: asyncio.Event) -> None:
        self.request = request
        self.on_message = on_message
        self.subscribed = subscribed
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.head_done = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("connection closed by the server"))

    def fail(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_exception(RuntimeError(reason))
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.head_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            self.head_done = True
            if not self.head(head):
                return
        self.body()

    def head(self, head: str) -> bool:
        raise NotImplementedError

    def body(self) -> None:
        raise NotImplementedError


class EngineIOClient(_Client):
    """One Socket.IO client on a bare WebSocket."""

    def __init__(
        self,
        request: bytes,
        on_message: Handle,
        subscribed: asyncio.Event,
        *,
        auth: dict[str, Any],
        subscribe: dict[str, Any],
    ) -> None:
        super().__init__(request, on_message, subscribed)
        self.auth = auth
        self.subscribe = subscribe

    def head(self, head: str) -> bool:
        if not head.startswith("HTTP/1.1 101"):
            self.fail(f"no WebSocket upgrade: {head[:80]}")
            return False
        return True

    def send_frame(self, payload: bytes, opcode: int = 0x1) -> None:
        size = len(payload)
        assert size < 126, "the load client only sends short frames"
        mask = os.urandom(4)
        key = int.from_bytes(mask * (size // 4 + 1), "big") >> (8 * (4 - size % 4))
        masked = (int.from_bytes(payload, "big") ^ key).to_bytes(size, "big") if size else b""
        assert self.transport is not None
        self.transport.write(bytes((0x80 | opcode, 0x80 | size)) + mask + masked)

    def body(self) -> None:
        buf, pos, end = self.buf, 0, len(self.buf)
        while end - pos >= 2:
            opcode, size = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            start = pos + 2
            if size == 126:
                if end - start < 2:
                    break
                size, start = int.from_bytes(buf[start : start + 2], "big"), start + 2
            elif size == 127:
                if end - start < 8:
                    break
                size, start = int.from_bytes(buf[start : start + 8], "big"), start + 8
            if end - start < size:
                break
            payload = bytes(buf[start : start + size])
            pos = start + size
            if opcode == 0x1:
                self.packet(payload)
            elif opcode == 0x9:  # ping: pong with the same payload
                self.send_frame(payload, 0xA)
            elif opcode == 0x8:
                self.fail("close frame from the server")
                return
        del buf[:pos]

    def packet(self, data: bytes) -> None:
        if data[:2] == b"42":
            self.on_message(data, time.time() * 1000)
        elif data == b"2":
            self.send_frame(b"3")  # Engine.IO pong
        elif data[:1] == b"0":
            self.send_frame(b"40" + json.dumps(self.auth).encode())
        elif data[:3] == b"431":
            ack = json.loads(data[3:])[0]
            if not ack.get("ok"):
                self.fail(f"subscribe refused: {ack}")
            self.subscribed.set()
        elif data[:2] == b"40":
            self.send_frame(b"421" + json.dumps(["subscribe_pair", self.subscribe]).encode())
        elif data[:2] in (b"41", b"44"):
            self.fail(f"refused or disconnected: {data[:200]!r}")


class SSEClient(_Client):
    """One SSE client."""

    chunked = False

    def __init__(self, request: bytes, on_message: Handle, subscribed: asyncio.Event) -> None:
        super().__init__(request, on_message, subscribed)
        self.events = bytearray()  # the de-chunked body not yet split into events
        self.chunk_left = 0  # bytes of the current chunk still to come (+2 for its CRLF)

    def head(self, head: str) -> bool:
        if not head.startswith("HTTP/1.1 200"):
            self.fail(f"SSE answered: {head[:200]}")
            return False
        self.chunked = "transfer-encoding: chunked" in head.lower()
        self.subscribed.set()
        return True

    def body(self) -> None:
        buf = self.buf
        if not self.chunked:
            self.events += buf
            buf.clear()
        else:
            pos, end = 0, len(buf)
            while pos < end:
                if self.chunk_left:
                    take = min(self.chunk_left, end - pos)
                    self.events += buf[pos : pos + take]
                    self.chunk_left -= take
                    pos += take
                    if not self.chunk_left:
                        del self.events[-2:]  # the CRLF after the chunk's data
                    continue
                line = buf.find(b"\r\n", pos)
                if line < 0:
                    break
                size = int(bytes(buf[pos:line]).split(b";")[0], 16)
                pos = line + 2
                if size == 0:
                    self.fail("the stream ended")
                    return
                self.chunk_left = size + 2
            del buf[:pos]
        events = self.events
        last = events.rfind(b"\n\n")
        if last < 0:
            return
        now_ms = time.time() * 1000
        for block in bytes(events[:last]).split(b"\n\n"):
            at = block.find(b"data: ")
            if at >= 0:
                self.on_message(block[at + 6 :], now_ms)
        del events[: last + 2]


async def run(
    kind: str,
    base_url: str,
    api_key: str | None,
    pairs: list[str],
    interval_ms: int | None,
    on_message: Handle,
    subscribed: asyncio.Event,
) -> None:
    """One client until cancelled (``kind``: socketio or sse); raises when it was dropped."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    protocol: _Client
    if kind == "socketio":
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        subscribe: dict[str, Any] = {"pairs": pairs}
        if interval_ms is not None:
            subscribe["min_interval_ms"] = interval_ms
        auth = {"api_key": api_key} if api_key else {}
        protocol = EngineIOClient(request, on_message, subscribed, auth=auth, subscribe=subscribe)
    else:
        query = "pair=" + ",".join(pairs)
        if interval_ms is not None:
            query += f"&min_interval_ms={interval_ms}"
        key_header = f"X-API-Key: {api_key}\r\n" if api_key else ""
        request = (
            f"GET /api/v1/ltp/live?{query} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Accept: text/event-stream\r\n{key_header}\r\n"
        ).encode()
        protocol = SSEClient(request, on_message, subscribed)
    loop = asyncio.get_running_loop()
    await loop.create_connection(lambda: protocol, host, port)
    try:
        await protocol.done
    finally:
        if protocol.transport is not None:
            protocol.transport.close()
