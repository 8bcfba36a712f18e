"""Pre-framed WebSocket writes for Socket.IO delivery (SPEC §7.3, §12).

python-engineio sends each packet of each socket through the socket's writer task: it wakes on
the socket's queue, encodes the packet, and hands one ``websocket.send`` to the ASGI server,
which builds the WebSocket frame and writes it. For a message that thousands of clients get
at once, all of that is the same work repeated per client. A server-to-client WebSocket text
frame is not masked, so the frame of one Engine.IO packet is the same bytes on every
connection: the dispatcher builds it once and writes it straight to each connection's
transport.

That is only done where it is known to be safe:

- the ASGI server is uvicorn with its ``websockets-sansio`` protocol (its default), found
  behind the ASGI ``send`` callable handed to Engine.IO; anything else (another server, another
  protocol class, a wrapper we cannot see through) keeps the Engine.IO queue path;
- the socket is on the WebSocket transport, not upgrading, and Engine.IO's own queue is empty
  (no ack, ping or close of Engine.IO's waits to be written first: order is kept);
- the connection is open (handshake done, no close frame sent, transport not closing) and its
  transport is not paused (a paused transport is back-pressure: the dispatcher gives that
  client nothing more until it drains, and cuts it off after ``send_timeout``).

A message sent this way is never compressed, even on a connection that negotiated
permessage-deflate: RFC 7692 lets each message be compressed or not (RSV1), and an
uncompressed message leaves both compression contexts untouched.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from tokenpulse.api.streams._eio_lean import LeanQueue, LeanWebSocket

_SansIO: type | None
try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # pragma: no cover - uvicorn without the websockets package
    _SansIO = None
else:
    _SansIO = WebSocketsSansIOProtocol

#: The attribute of an Engine.IO socket that holds its :class:`RawSocket`.
RAW_ATTR = "_tokenpulse_raw"


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final WebSocket text frame carrying ``payload`` (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


class RawSocket:
    """The transport of one uvicorn WebSocket connection, written to directly."""

    __slots__ = ("protocol", "transport")

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.transport = protocol.transport

    @classmethod
    def behind(cls, send: Any) -> RawSocket | None:
        """The connection behind an ASGI ``send`` (None: not one we know how to write to)."""
        while True:
            owner = getattr(send, "__self__", None)
            if _SansIO is not None and isinstance(owner, _SansIO):
                return cls(owner)
            inner = getattr(send, "__wrapped__", None)  # a pass-through wrapper says so
            if inner is None:
                return None
            send = inner

    @property
    def open(self) -> bool:
        """Handshake done, no close frame sent, transport still open."""
        protocol = self.protocol
        return (
            protocol.handshake_complete
            and not protocol.close_sent
            and not protocol.disconnected
            and not self.transport.is_closing()
        )

    @property
    def paused(self) -> bool:
        """The transport's buffer is over its high-water mark."""
        return not self.protocol.writable.is_set()

    async def drained(self) -> None:
        """Wait until the transport takes writes again (or the connection is lost)."""
        await self.protocol.writable.wait()

    def write(self, data: bytes) -> None:
        """Write pre-framed bytes."""
        self.transport.write(data)

    def trim(self) -> None:
        """After the handshake, let go of what uvicorn keeps of it and no longer reads (the
        parsed request and the response, with their headers), and give the connection a
        :class:`LeanQueue` for its incoming events (uvicorn reads it with ``get``,
        ``put_nowait`` and ``empty`` only)."""
        protocol = self.protocol
        if not protocol.handshake_complete:
            return
        protocol.request = None
        protocol.response = None
        queue = protocol.queue
        if isinstance(queue, asyncio.Queue) and not getattr(queue, "_getters", None):
            items = []
            while not queue.empty():
                items.append(queue.get_nowait())
            protocol.queue = LeanQueue(items)


class CapturingWebSocket(LeanWebSocket):
    """Engine.IO's ASGI WebSocket (lean), which also records the raw connection on its socket
    and trims uvicorn's handshake leftovers once the connection is accepted."""

    raw: RawSocket | None = None

    async def __call__(self, environ: dict[str, Any]) -> Any:
        socket = getattr(self.handler, "__self__", None)  # handler: socket._websocket_handler
        raw = RawSocket.behind(environ.get("asgi.send"))
        if socket is not None and raw is not None:
            setattr(socket, RAW_ATTR, raw)
            self.raw = raw
        return await super().__call__(environ)

    def accepted(self) -> None:
        if self.raw is not None:
            self.raw.trim()


def install(eio: Any) -> bool:
    """Make an Engine.IO ASGI server record raw connections; False when it cannot."""
    drivers = getattr(eio, "_async", None)
    if _SansIO is None or not isinstance(drivers, dict) or "websocket" not in drivers:
        return False
    eio._async = {**drivers, "websocket": CapturingWebSocket}
    return True


def raw_socket(sock: Any) -> RawSocket | None:
    """The raw connection of an Engine.IO socket when a frame may be written to it now."""
    raw: RawSocket | None = getattr(sock, RAW_ATTR, None)
    if raw is None or not sock.upgraded or sock.upgrading or not sock.queue.empty():
        return None
    return raw


__all__ = [
    "RAW_ATTR",
    "CapturingWebSocket",
    "RawSocket",
    "install",
    "raw_socket",
    "text_frame",
]
