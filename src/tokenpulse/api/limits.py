"""Request limits (SPEC §8.5): header bytes and count (431), body bytes, chunked too (413).

Two layers, because of where each server buffers. uvicorn's h11 parser refuses a head larger
than ``h11_max_incomplete_event_size`` itself (set to ``MAX_HEADER_BYTES``); its httptools
parser has no limit and buffers a whole header before the app sees any of it, so
:func:`bounded_httptools` gives the server a protocol that answers 431 and closes as soon as
the head outgrows the cap, while the bytes are still arriving. The edge then checks what
reaches the app, whatever the server: the header count and bytes, ``Content-Length``, and a
chunked body, read only up to the cap (:func:`read_body_capped`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tokenpulse.api.errors import flat_error_body, standard_error_body, uses_flat_errors
from tokenpulse.settings import Settings

LINGER_SECONDS = 1.0  # how long a refused connection's remaining bytes are read and dropped
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """``MAX_HEADER_BYTES`` (names and values), ``MAX_HEADER_COUNT``, ``MAX_BODY_BYTES``."""

    max_header_bytes: int = 16 * 1024
    max_header_count: int = 100
    max_body_bytes: int = 64 * 1024

    def headers_too_large(self, path: str, request_id: str | None) -> bytes:
        """The 431 body, in the shape ``path`` uses."""
        message = (
            f"request headers exceed {self.max_header_bytes} bytes "
            f"or {self.max_header_count} fields"
        )
        return _error(path, "HEADERS_TOO_LARGE", message, request_id)

    def body_too_large(self, path: str, request_id: str | None) -> bytes:
        """The 413 body, in the shape ``path`` uses."""
        message = f"request body exceeds {self.max_body_bytes} bytes"
        return _error(path, "PAYLOAD_TOO_LARGE", message, request_id)


def limits_for(settings: Settings) -> RequestLimits:
    """The limits ``MAX_HEADER_BYTES``, ``MAX_HEADER_COUNT`` and ``MAX_BODY_BYTES`` set."""
    return RequestLimits(
        max_header_bytes=settings.max_header_bytes,
        max_header_count=settings.max_header_count,
        max_body_bytes=settings.max_body_bytes,
    )


def _error(path: str, code: str, message: str, request_id: str | None) -> bytes:
    if uses_flat_errors(path):
        return flat_error_body(code, message)
    return standard_error_body(code, message, request_id=request_id)


async def read_body_capped(receive: Receive, limit: int) -> list[Message] | None:
    """The request's body messages, or None as soon as they exceed ``limit`` bytes (the rest
    is never read)."""
    messages: list[Message] = []
    total = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        total += len(message.get("body", b""))
        if total > limit:
            return None
        if not message.get("more_body", False):
            return messages


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` again, then defers to the real one."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def head_cap(limits: RequestLimits) -> int:
    """The most bytes a request head may take on the wire: the header cap plus room for the
    request line and the separators, beyond which no head is legitimate."""
    return limits.max_header_bytes + 2 * 4 * limits.max_header_count + 8 * 1024


def bounded_httptools(limits: RequestLimits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, answering 431 while a head outgrows the header cap."""
    cap = head_cap(limits)

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        _head_bytes = 0
        _in_head = True

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head = True

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._head_bytes = 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head = True

        _rejected = False

        def data_received(self, data: bytes) -> None:
            if self._rejected:
                return  # lingering after the 431: discard, never buffer
            if self._in_head:
                self._head_bytes += len(data)
            super().data_received(data)
            if self._in_head and self._head_bytes > cap and not self.transport.is_closing():
                self._reject()

        def _reject(self) -> None:
            url = getattr(self, "url", None) or b"/"
            path = url.split(b"?", 1)[0].decode("latin-1")
            body = limits.headers_too_large(path, None)
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
            # A lingering close: closing now, with the client's bytes unread, would send a
            # reset that can destroy the 431 before the client reads it. Half-close, discard
            # what still arrives for a moment, then close.
            self._rejected = True
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)

    return BoundedHttpToolsProtocol
