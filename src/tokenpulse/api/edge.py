"""The edge of every HTTP request, as one raw ASGI middleware (no per-request framework cost).

In order: request id (echoed or generated), the header and body limits (``api/limits.py``),
CORS (``api/cors.py``: a preflight is answered here, before auth and the rate limiter), then
admission (``api/access/gate.py``: blocked IPs, API key or session token on ``/api/*`` when
auth is on, the route's role, the token bucket of the key's tier or the client IP), then the
handler — the LTP fast path or the FastAPI app, with Socket.IO and SSE behind it — and finally
metrics by route template and the access line (``api/access_log.py``).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog

from tokenpulse.api.access.gate import AccessGate
from tokenpulse.api.access_log import AccessLog
from tokenpulse.api.auth import Authenticator
from tokenpulse.api.clientip import ClientIpResolver
from tokenpulse.api.cors import CorsPolicy, without_cors
from tokenpulse.api.errors import (
    error_body,
    error_headers,
    flat_error_body,
    standard_error_body,
    status_for,
    uses_flat_errors,
)
from tokenpulse.api.limits import RequestLimits, read_body_capped, replay
from tokenpulse.domain.errors import TokenpulseError
from tokenpulse.observability.metrics import Metrics
from tokenpulse.store.ratelimit import RateLimiter

log = structlog.get_logger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
FastHandler = Callable[
    [Scope, Receive, Send, list[tuple[bytes, bytes]]], Awaitable[tuple[int, int]]
]
#: A route answered whole, metrics and access line included (``api/ltp/direct.py``), called
#: as ``(scope, send, request_id, api_key, forwarded, started)``: True when it answered,
#: False (having done nothing) to leave the request to the general path.
DirectHandler = Callable[[Scope, Send, bytes, bytes | None, bytes | None, float], Awaitable[bool]]

MAX_REQUEST_ID = 128
# Generated request ids: a random per-process prefix and a counter — unique, and cheaper
# than a syscall for randomness on every request.
_ID_PREFIX = os.urandom(6).hex().encode()
_ID_COUNTER = itertools.count(1)
JSON_HEADERS = [(b"content-type", b"application/json")]


async def send_json(
    send: Send, status: int, body: bytes, *header_lists: list[tuple[bytes, bytes]]
) -> tuple[int, int]:
    """Send a complete JSON response; returns (status, body size) for the metrics."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *JSON_HEADERS,
                (b"content-length", str(len(body)).encode()),
                *(header for headers in header_lists for header in headers),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
    return status, len(body)


def _valid_request_id(value: bytes) -> bool:
    return 0 < len(value) <= MAX_REQUEST_ID and all(33 <= byte < 127 for byte in value)


class EdgeMiddleware:
    """Request id, auth, rate limit, fast routes and HTTP metrics around an ASGI app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        authenticator: Authenticator | None,
        limiter: RateLimiter | None,
        client_ip: ClientIpResolver,
        fast_routes: dict[tuple[str, str], FastHandler],
        gate: AccessGate | None = None,
        route_of: Callable[[Scope], str] | None = None,
        cors: CorsPolicy | None = None,
        limits: RequestLimits | None = None,
        access_log: AccessLog | None = None,
        direct_routes: dict[str, DirectHandler] | None = None,
    ) -> None:
        self.app = app
        self.direct_routes = direct_routes or {}  # GET path -> handler
        self.metrics = metrics
        self.authenticator = authenticator
        self.limiter = limiter
        self.client_ip = client_ip
        self.fast_routes = fast_routes
        self.gate = gate or AccessGate(
            authenticator=authenticator,
            limiter=limiter,
            client_ip=client_ip,
            metrics=metrics,
        )
        self.route_of = route_of or (lambda scope: "unmatched")
        self.cors = cors or CorsPolicy(())
        self.limits = limits or RequestLimits()
        self.access_log = access_log
        self.container: Any = None  # set by the app factory, for tests and tooling
        self.streams: Any = None
        self.ltp: Any = None  # the LTP and token answer builders (tests inject clocks)
        self.token_api: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and self.access_log is not None:
                await self._websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = api_key = forwarded = length = origin = chunked = bearer = None
        header_bytes = 0
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value)
            if name == b"x-request-id":
                request_id = value
            elif name == b"x-api-key":
                api_key = value
            elif name == b"x-forwarded-for":
                forwarded = value
            elif name == b"content-length":
                length = value
            elif name == b"origin":
                origin = value
            elif name == b"transfer-encoding":
                chunked = value
            elif name == b"authorization":
                bearer = value
        if request_id is None or not _valid_request_id(request_id):
            request_id = b"%s%012x" % (_ID_PREFIX, next(_ID_COUNTER))
        path: str = scope["path"]
        request_size = int(length) if length is not None and length.isdigit() else 0
        limits = self.limits
        direct = self.direct_routes.get(path)
        if (
            direct is not None
            and origin is None
            and chunked is None
            and request_size == 0
            and scope["method"] == "GET"
            and header_bytes <= limits.max_header_bytes
            and len(scope["headers"]) <= limits.max_header_count
            and await direct(scope, send, request_id, api_key, forwarded, started)
        ):
            return
        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        state["request_id"] = request_id  # bytes; decoded only where an error body needs it
        headers: list[tuple[bytes, bytes]] = [(b"x-request-id", request_id)]
        fast = self.fast_routes.get((scope["method"], path))

        status, size, route = 0, 0, path if fast is not None else ""
        try:
            if origin is not None:
                if scope["method"] == "OPTIONS" and _preflight(scope) is not None:
                    status, size = await self._preflight(scope, origin, send, headers)
                else:
                    headers += self.cors.response_headers(origin)
            if status:
                pass
            elif (
                header_bytes > limits.max_header_bytes
                or len(scope["headers"]) > limits.max_header_count
            ):
                body = limits.headers_too_large(path, request_id.decode())
                status, size = await send_json(send, 431, body, headers, CLOSE)
            elif request_size > limits.max_body_bytes:
                status, size = await self._too_large(path, send, headers)
            elif chunked is not None:
                messages = await read_body_capped(receive, limits.max_body_bytes)
                if messages is None:
                    status, size = await self._too_large(path, send, headers)
                else:
                    receive = replay(messages, receive)
            if status == 0 and path.startswith("/api/"):
                rejection = await self.gate.admit(scope, path, api_key, bearer, forwarded, headers)
                if rejection is not None:
                    status, size = await self._send_error(path, rejection, send, headers, state)
            if status == 0:
                if fast is not None:
                    status, size = await fast(scope, receive, send, headers)
                else:
                    status, size = await self._call_app(
                        scope, receive, send, headers, origin, forwarded
                    )
        finally:
            if not route:
                route = self.route_of(scope)
            self._observe(scope["method"], route, status or 500, started, request_size, size)
            if self.access_log is not None:
                self.access_log.request(
                    scope, route, status or 500, started, size, forwarded, state.get("stream")
                )

    # ------------------------------------------------------------ answers

    async def _send_error(
        self,
        path: str,
        exc: TokenpulseError,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        state: dict[str, Any],
    ) -> tuple[int, int]:
        body = error_body(path, exc, state["request_id"].decode())
        return await send_json(send, status_for(exc), body, headers, error_headers(exc))

    async def _too_large(
        self, path: str, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, int]:
        body = self.limits.body_too_large(path, headers[0][1].decode())
        return await send_json(send, 413, body, headers, CLOSE)

    async def _preflight(
        self, scope: Scope, origin: bytes, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, int]:
        """Answer a CORS preflight: 204 with the grant, or 403 when the origin, method or a
        requested header is not allowed. Never needs a key, never takes from a bucket."""
        method, requested = _preflight(scope) or (b"", None)
        grant = self.cors.preflight(origin, method, requested)
        if grant is not None:
            await send({"type": "http.response.start", "status": 204, "headers": headers + grant})
            await send({"type": "http.response.body", "body": b""})
            return 204, 0
        path = scope["path"]
        message = "origin, method or header not allowed by CORS_ORIGINS"
        body = (
            flat_error_body("FORBIDDEN", message)
            if uses_flat_errors(path)
            else standard_error_body("FORBIDDEN", message, request_id=headers[0][1].decode())
        )
        return await send_json(send, 403, body, headers)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket (Socket.IO): one access line when accepted, one when it ends."""
        assert self.access_log is not None
        started = time.perf_counter()
        request_id = b"%s%012x" % (_ID_PREFIX, next(_ID_COUNTER))
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        route = self.route_of(scope)
        status = [403]

        async def logging_send(message: Message) -> None:
            if message["type"] == "websocket.accept":
                status[0] = 101
                self.access_log.stream_opened(scope, route, "websocket", None)  # type: ignore[union-attr]
            await send(message)

        # Only the accept is looked at: the Socket.IO delivery may write past this wrapper.
        logging_send.__wrapped__ = send  # type: ignore[attr-defined]
        try:
            await self.app(scope, receive, logging_send)
        finally:
            self.access_log.request(scope, route, status[0], started, 0, None, "websocket")

    async def _call_app(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: list[tuple[bytes, bytes]],
        origin: bytes | None = None,
        forwarded: bytes | None = None,
    ) -> tuple[int, int]:
        result = [0, 0]
        access_log = self.access_log

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                result[0] = message["status"]
                inner = message.get("headers", ())
                if origin is not None:
                    inner = without_cors(inner)
                message["headers"] = [*inner, *headers]
                if access_log is not None and _is_event_stream(inner):
                    scope["state"]["stream"] = "sse"
                    access_log.stream_opened(scope, self.route_of(scope), "sse", forwarded)
            elif message["type"] == "http.response.body":
                result[1] += len(message.get("body", b""))
            await send(message)

        # An event stream may write its body chunks past the wrappers, straight to the
        # server's connection (``api/streams/sse_wire.py``), and counts their bytes in its state.
        scope["state"]["server_send"] = send
        # Anything logged while the framework handles the request carries its id.
        with structlog.contextvars.bound_contextvars(request_id=headers[0][1].decode()):
            await self.app(scope, receive, send_with_headers)
        return result[0], result[1] + scope["state"].get("direct_bytes", 0)

    # ------------------------------------------------------------ metrics

    def _observe(
        self, method: str, route: str, status: int, started: float, request_size: int, size: int
    ) -> None:
        self.metrics.http.observe(
            method, route, status, time.perf_counter() - started, request_size, size
        )


CLOSE = [(b"connection", b"close")]


def _preflight(scope: Scope) -> tuple[bytes, bytes | None] | None:
    """(requested method, requested headers) when the request is a CORS preflight."""
    method = requested = None
    for name, value in scope["headers"]:
        if name == b"access-control-request-method":
            method = value
        elif name == b"access-control-request-headers":
            requested = value
    return None if method is None else (method, requested)


def _is_event_stream(headers: Any) -> bool:
    return any(
        name == b"content-type" and value.startswith(b"text/event-stream")
        for name, value in headers
    )
