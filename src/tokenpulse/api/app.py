"""The app factory: FastAPI for routing and OpenAPI, wrapped by the raw ASGI edge."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from tokenpulse import __version__
from tokenpulse.api.clientip import ClientIpResolver
from tokenpulse.api.errors import error_body, error_headers, install_error_handlers
from tokenpulse.api.middleware import EdgeMiddleware, Receive, Scope, Send
from tokenpulse.api.routes import health_body, router
from tokenpulse.api.streams import Streams, mount_streams
from tokenpulse.api.token_routes import router as token_router
from tokenpulse.bootstrap import Container, build_container
from tokenpulse.domain.errors import TokenpulseError
from tokenpulse.settings import Settings

log = structlog.get_logger(__name__)

ENDPOINT_COSTS = {"/api/v1/ltp/refresh": 10.0, "/api/v1/ltp/cached": 2.0, "/api/v1/tokens": 2.0}


def create_app(
    settings: Settings, *, container: Container | None = None, streams: Streams | None = None
) -> Any:
    """Build the ASGI application for ``settings`` (the container starts with the lifespan).

    The result is the Socket.IO app at ``/socket.io/`` in front of the edge middleware in
    front of FastAPI; it has ``.container`` and ``.streams``.
    """
    container = container or build_container(settings)
    streams = streams or Streams(
        container, bulk_interval=settings.bulk_interval, sse_heartbeat=settings.sse_heartbeat
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await container.start()
        try:
            yield
        finally:
            try:
                await asyncio.wait_for(container.stop(), settings.shutdown_timeout)
            except TimeoutError:
                log.error("shutdown did not finish within SHUTDOWN_TIMEOUT")

    api = FastAPI(
        title="tokenpulse",
        version=__version__,
        description="Real-time crypto market data: last traded prices (a drop-in for the "
        "BTC LTP Service), with freshness on every value.",
        lifespan=lifespan,
    )
    api.state.container = container
    install_error_handlers(api)
    api.include_router(router)
    # Before the tokens router: /api/v1/tokens/{token_id} would otherwise take /tokens/live.
    api.include_router(streams.sse_router())
    api.include_router(token_router)

    app: Any = api
    if settings.cors_origins:
        app = CORSMiddleware(
            app,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["X-API-Key", "X-Request-ID", "Content-Type", "Last-Event-ID"],
            expose_headers=[
                "X-Request-ID",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "Retry-After",
            ],
        )

    ltp = container.ltp

    async def ltp_fast(
        scope: Scope, receive: Receive, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, int]:
        answer = ltp.ltp(scope["query_string"], time.time())
        body = answer.body
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                    *answer.headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return answer.status, len(body)

    async def health_fast(
        scope: Scope, receive: Receive, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, int]:
        body = health_body(container)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return 200, len(body)

    token_api = container.token_api

    async def tokens_fast(
        scope: Scope, receive: Receive, send: Send, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, int]:
        try:
            answer = token_api.list_tokens(scope["query_string"])
            status, body, extra = answer.status, answer.body, answer.headers
        except TokenpulseError as exc:
            status = exc.status
            body = error_body(scope["path"], exc, scope["state"]["request_id"].decode())
            extra = error_headers(exc)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return status, len(body)

    def route_of(scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        for candidate in api.router.routes:
            match, _ = candidate.matches(scope)
            if match.name == "FULL":
                return str(getattr(candidate, "path", "unmatched"))
        return "unmatched"

    edge = EdgeMiddleware(
        app,
        metrics=container.metrics,
        authenticator=container.authenticator,
        limiter=container.limiter,
        client_ip=ClientIpResolver(settings.forwarded_allow_ips),
        fast_routes={
            ("GET", "/api/v1/ltp"): ltp_fast,
            ("GET", "/health"): health_fast,
            ("GET", "/api/v1/tokens"): tokens_fast,
        },
        costs=ENDPOINT_COSTS,
        max_cost=float(settings.rate_limit_capacity),
        route_of=route_of,
    )
    edge.container = container
    return mount_streams(edge, container, streams=streams)
