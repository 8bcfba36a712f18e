"""The bytes of Server-Sent Events (SPEC §7.2): one event's frame, encoded once for every
client in step, and the writer that puts a stream's body chunks straight onto uvicorn's
connection.

An event stream's body goes out as HTTP/1.1 chunks. Through ASGI, each write passes
Starlette's exception wrapper, the edge's header-and-size wrapper and uvicorn's ``send``,
three coroutines per message per client, and uvicorn then writes ``<size>\r\n<body>\r\n``.
:class:`ChunkWriter` writes those same bytes itself, and only where that is known to be
exactly what uvicorn would do: behind the edge's ``send`` is uvicorn's httptools
``RequestResponseCycle``, the response has started with chunked encoding and is not
complete, the connection is up and its transport is not paused. Anything else (another
server or protocol class, back-pressure) keeps the ASGI path, which waits for the drain.
The bytes written this way are counted in the request's state (``direct_bytes``), so the
access log and the HTTP metrics still see the stream's size.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import orjson
import structlog

from tokenpulse.api.streams.subscriber import Message

log = structlog.get_logger(__name__)

TRANSPORT = "sse"
CHUNK = "sse-chunk"


def format_event(message: Message, ts_ms: int, strings: bool = False) -> bytes:
    """One SSE event: ``event``, ``id`` (the key's seq) and the JSON ``data`` line
    (``strings``: market values as exact decimal strings).

    Clients in step share the Message object, so each event is encoded once per millisecond
    and number form.
    """
    frames = message.frames
    frame = frames.get((TRANSPORT, ts_ms, strings))
    if frame is None:
        frame = b"event: %s\nid: %d\ndata: %s\n\n" % (
            message.event.encode(),
            message.seq,
            orjson.dumps(message.payload(ts_ms, strings=strings)),
        )
        if any(key[1] != ts_ms for key in frames):
            frames.clear()  # only the current millisecond is worth keeping
        frames[(TRANSPORT, ts_ms, strings)] = frame
    return frame


def chunk_event(message: Message, ts_ms: int, strings: bool = False) -> tuple[bytes, int]:
    """:func:`format_event` framed as one HTTP/1.1 chunk, and the event's own size: the
    bytes :class:`ChunkWriter` writes for a single message, shared by every client in step."""
    frames = message.frames
    key = (CHUNK, ts_ms, strings)
    framed = frames.get(key)
    event = format_event(message, ts_ms, strings)  # also clears another millisecond's frames
    if framed is None:
        framed = frames[key] = b"%x\r\n%s\r\n" % (len(event), event)
    return framed, len(event)


_Cycle: type | None
try:
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle
except ImportError:  # pragma: no cover - uvicorn without httptools
    _Cycle = None
else:
    _Cycle = RequestResponseCycle


class ChunkWriter:
    """Writes chunks of one event stream's body straight to its uvicorn connection."""

    __slots__ = ("cycle", "state")

    def __init__(self, cycle: Any, state: dict[str, Any]) -> None:
        self.cycle = cycle
        self.state = state

    @classmethod
    def behind(cls, scope: Any) -> ChunkWriter | None:
        """The writer of this request's connection (None: not one we know how to write to)."""
        state = scope.get("state")
        if not isinstance(state, dict) or _Cycle is None:
            return None
        owner = getattr(state.get("server_send"), "__self__", None)
        return cls(owner, state) if isinstance(owner, _Cycle) else None

    @property
    def ready(self) -> bool:
        """A chunk can go out now as uvicorn would write it."""
        cycle = self.cycle
        return bool(
            cycle.response_started
            and cycle.chunked_encoding is True
            and not cycle.response_complete
            and not cycle.disconnected
            and not cycle.flow.write_paused
            and not cycle.transport.is_closing()
        )

    def write(self, body: bytes) -> None:
        """One chunk (``ready`` first; an empty body would end the response: not written)."""
        if body:
            self.write_framed(b"%x\r\n%s\r\n" % (len(body), body), len(body))

    def write_framed(self, framed: bytes, size: int) -> None:
        """One chunk already framed (:func:`chunk_event`) carrying ``size`` bytes of body."""
        self.cycle.transport.write(framed)
        self.state["direct_bytes"] = self.state.get("direct_bytes", 0) + size


class Deliverable(Protocol):
    """An event stream the dispatcher can write for."""

    def deliver(self, ts_ms: int) -> None: ...

    def wake(self) -> None: ...


class SseDispatcher:
    """Writes every ready event stream's due messages in one pass per loop iteration.

    The hub notifies a stream when it has messages; a stream that writes straight to its
    connection asks to be marked here instead of waking its own task, and one pass (scheduled
    once, however many streams are marked) takes and writes the messages of each, with one
    ``ts`` for the pass, so clients in step share one encoded event. A stream that cannot be
    written that way now (a write of its own pending, back-pressure) is woken to do it.
    """

    def __init__(self) -> None:
        self._ready: dict[Deliverable, None] = {}
        self._scheduled = False

    def mark(self, stream: Deliverable) -> None:
        """``stream`` has messages due: write them with the next pass."""
        self._ready[stream] = None
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._pass)

    def _pass(self) -> None:
        self._scheduled = False
        ready, self._ready = self._ready, {}
        ts_ms = int(time.time() * 1000)
        for stream in ready:
            try:
                stream.deliver(ts_ms)
            except Exception:  # one stream's failure must not starve the others
                log.exception("SSE delivery failed; the stream writes for itself")
                stream.wake()


__all__ = [
    "CHUNK",
    "TRANSPORT",
    "ChunkWriter",
    "Deliverable",
    "SseDispatcher",
    "chunk_event",
    "format_event",
]
