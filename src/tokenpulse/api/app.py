"""The app factory: FastAPI for routing and OpenAPI, wrapped by the raw ASGI edge.

It is given the services the composition root built (:class:`~tokenpulse.api.deps.ApiServices`)
and the lifecycle that starts and stops them, and builds the API's own objects from them: the
LTP and token answers, the authenticator and the streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from tokenpulse import __version__
from tokenpulse.api.access.gate import AccessGate
from tokenpulse.api.access.routes import access_router
from tokenpulse.api.access_log import AccessLog, access_logged
from tokenpulse.api.auth import CombinedAuthenticator, authenticator_for
from tokenpulse.api.clientip import ClientIpResolver
from tokenpulse.api.cors import CorsPolicy
from tokenpulse.api.dashboard import install_dashboard
from tokenpulse.api.deps import ApiServices, Lifecycle
from tokenpulse.api.edge import (
    EdgeMiddleware,
    FastHandler,
    Receive,
    Scope,
    Send,
    send_json,
)
from tokenpulse.api.errors import error_body, error_headers, install_error_handlers, status_for
from tokenpulse.api.limits import limits_for
from tokenpulse.api.ltp.answers import LtpEndpoints
from tokenpulse.api.ltp.direct import LTP_CACHE, LTP_ROUTE, DirectLtp
from tokenpulse.api.ltp.routes import router as ltp_router
from tokenpulse.api.openapi import install_openapi
from tokenpulse.api.ops import health_body, router
from tokenpulse.api.streams import Streams, mount_streams
from tokenpulse.api.tokens.answers import TokenEndpoints
from tokenpulse.api.tokens.routes import router as token_router
from tokenpulse.domain.errors import TokenpulseError

log = structlog.get_logger(__name__)

Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]


def create_app(
    container: ApiServices, *, lifecycle: Lifecycle, streams: Streams | None = None
) -> Any:
    """Build the ASGI application over ``container``'s services; ``lifecycle`` starts and
    stops them with the app's lifespan (``runtime.Runtime``).

    The result is the edge middleware, in front of the Socket.IO app at ``/socket.io/``, in
    front of FastAPI; it has ``.container`` and ``.streams``.
    """
    settings = container.settings
    access = container.access
    authenticator = authenticator_for(settings)
    if access is not None and access.keys is not None:
        authenticator = CombinedAuthenticator(authenticator, access.keys)
    ltp = LtpEndpoints(
        prices=container.prices, registry=container.registry, supervisor=container.supervisor
    )
    token_api = TokenEndpoints(
        tokens=container.tokens,
        history=container.history,
        stale_after=settings.stale_after,
        expected_interval=timedelta(seconds=settings.market_poll_interval),
    )
    streams = streams or Streams(
        container,
        bulk_interval=settings.bulk_interval,
        sse_heartbeat=settings.sse_heartbeat,
        authenticator=authenticator,
        access=access,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await lifecycle.start()
        try:
            yield
        finally:
            try:
                await asyncio.wait_for(lifecycle.stop(), settings.shutdown_timeout)
            except TimeoutError:
                log.error("shutdown did not finish within SHUTDOWN_TIMEOUT: closing at once")
                await lifecycle.abort()

    # Swagger UI and ReDoc from fastapi-offline's installed files, never a CDN.
    api = FastAPIOffline(
        title="tokenpulse",
        version=__version__,
        description="Real-time crypto market data: last traded prices (a drop-in for the "
        "BTC LTP Service), with freshness on every value.",
        lifespan=lifespan,
        swagger_ui_parameters={"displayOperationId": True, "persistAuthorization": True},
    )
    api.state.services = container
    api.state.ltp = ltp
    api.state.token_api = token_api
    install_error_handlers(api)
    api.include_router(ltp_router)
    api.include_router(router)
    # Before the tokens router: /api/v1/tokens/{token_id} would otherwise take /tokens/live.
    api.include_router(streams.sse_router())
    api.include_router(token_router)
    install_dashboard(api, auth_enabled=settings.auth_enabled, stale_after=settings.stale_after)
    if access is not None:
        api.include_router(access_router(access))
    install_openapi(api, auth_enabled=settings.auth_enabled)

    app: Any = api  # CORS is the edge's, for every route (api/cors.py)

    def fast(build: Callable[[Scope], Answer]) -> FastHandler:
        """A route served by the edge: ``build`` makes the answer; errors get the error model."""

        async def handle(
            scope: Scope, receive: Receive, send: Send, headers: list[tuple[bytes, bytes]]
        ) -> tuple[int, int]:
            try:
                status, body, extra = build(scope)
            except TokenpulseError as exc:
                request_id = scope["state"]["request_id"].decode()
                status = status_for(exc)
                body = error_body(scope["path"], exc, request_id)
                extra = error_headers(exc)
            return await send_json(send, status, body, headers, extra)

        return handle

    def ltp_answer(scope: Scope) -> Answer:
        answer = ltp.ltp(scope["query_string"])
        # For the access log: every value is served from the price cache, or none is there.
        scope["state"]["cache"] = LTP_CACHE.get(answer.status)
        return answer.status, answer.body, answer.headers

    def tokens_answer(scope: Scope) -> Answer:
        answer = token_api.list_tokens(scope["query_string"])
        if answer.status == 200:
            scope["state"]["cache"] = "hit" if answer.body.endswith(b'"hit"}}') else "miss"
        return answer.status, answer.body, answer.headers

    def health_answer(scope: Scope) -> Answer:
        return 200, health_body(container), []

    def route_of(scope: Scope) -> str:
        if scope["path"].startswith("/socket.io/"):
            return "/socket.io/"
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        for candidate in api.router.routes:
            match, _ = candidate.matches(scope)
            if match.name == "FULL":
                return str(getattr(candidate, "path", "unmatched"))
        return "unmatched"

    client_ip = ClientIpResolver(settings.forwarded_allow_ips)
    gate = AccessGate(
        authenticator=authenticator,
        limiter=container.limiter,
        client_ip=client_ip,
        metrics=container.metrics,
        tier_limiters=access.tier_limiters if access is not None else None,
        tier_costs=(
            {tier: limits.costs for tier, limits in access.tiers.items()}
            if access is not None
            else None
        ),
        sessions=access.sessions if access is not None else None,
        guard=access.guard if access is not None else None,
        usage=access.metrics.usage if access is not None else None,
    )
    access_log = AccessLog(client_ip) if access_logged(settings) else None
    direct = DirectLtp(ltp=ltp, gate=gate, http=container.metrics.http, access_log=access_log)
    # Socket.IO sits inside the edge: the fast routes are answered before any other layer,
    # and /socket.io/ long-polling still gets request ids and metrics.
    edge = EdgeMiddleware(
        mount_streams(app, container, streams=streams),
        metrics=container.metrics,
        authenticator=authenticator,
        limiter=container.limiter,
        client_ip=client_ip,
        fast_routes={
            ("GET", "/api/v1/ltp"): fast(ltp_answer),
            ("GET", "/health"): fast(health_answer),
            ("GET", "/api/v1/tokens"): fast(tokens_answer),
        },
        gate=gate,
        route_of=route_of,
        cors=CorsPolicy(settings.cors_origins),
        limits=limits_for(settings),
        access_log=access_log,
        direct_routes={LTP_ROUTE: direct},
    )
    edge.container = container
    edge.streams = streams
    edge.ltp = ltp
    edge.token_api = token_api
    return edge
