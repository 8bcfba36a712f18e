"""Streaming (SPEC §7): Socket.IO at ``/socket.io/`` and Server-Sent Events under ``/api/v1``.

The app factory (``api/app.py``) wires it from the services it is given::

    streams = streams or Streams(services, authenticator=authenticator)  # hub + gateway
    api.include_router(streams.sse_router())        # before the tokens router
    ...
    mount_streams(app, services, streams=streams)   # Socket.IO in front of the HTTP app

The hub listens to the bus; the composition root (``bootstrap.py``) puts every accepted
value on it (``bus/topics.py``), so the hubs of all instances see it. ``mount_streams`` runs
:meth:`Streams.start` after the app's own start-up and :meth:`Streams.stop` before its
shutdown (``manage_lifespan=False`` to call them yourself); :meth:`Streams.drain` ends open
streams at once (call it when SIGTERM arrives). Tokens are resolved and seeded through
``services.tokens`` unless ``token_resolver``/``token_seed`` say otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import socketio
from fastapi import APIRouter
from fastapi.responses import Response

from tokenpulse.api.access import AccessServices
from tokenpulse.api.auth import Authenticator, authenticator_for
from tokenpulse.api.deps import ApiServices
from tokenpulse.api.streams._asyncapi_access import add_access
from tokenpulse.api.streams.access import StreamAccess
from tokenpulse.api.streams.asyncapi import ASYNCAPI_PATH, asyncapi_document
from tokenpulse.api.streams.delivery import DEFAULT_MAX_BACKLOG
from tokenpulse.api.streams.hub import HubStats, LimitExceeded, StreamHub, StreamLimits
from tokenpulse.api.streams.requests import TokenResolver
from tokenpulse.api.streams.socketio_server import SocketIoGateway
from tokenpulse.api.streams.sse import DEFAULT_HEARTBEAT, DEFAULT_SEND_TIMEOUT
from tokenpulse.api.streams.sse_routes import sse_router
from tokenpulse.bus.topics import (
    LATEST_SAVED_TOPIC,
    PAIR_PREFIX,
    TOKEN_PREFIX,
    TokenPublisher,
    make_ltp_publisher,
    make_token_publisher,
    split_key,
)
from tokenpulse.domain.errors import TokenpulseError
from tokenpulse.services.ltp.venues import AGGREGATE

DEFAULT_BULK_INTERVAL = 1.0

#: ``token_seed(token_id)`` -> ``{token_id: data}`` for that token (empty if unknown);
#: ``token_seed(None)`` -> every served token. ``data`` is the token's JSON (``TokenView.body``).
TokenSeed = Callable[[str | None], Mapping[str, dict[str, Any]]]


class Streams:
    """The streaming side of one app: the hub, the Socket.IO gateway and the SSE routes."""

    def __init__(
        self,
        container: ApiServices,
        *,
        bulk_interval: float = DEFAULT_BULK_INTERVAL,
        token_resolver: TokenResolver | None = None,
        limits: StreamLimits | None = None,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        send_timeout: float = DEFAULT_SEND_TIMEOUT,
        sse_heartbeat: float = DEFAULT_HEARTBEAT,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        token_seed: TokenSeed | None = None,
        authenticator: Authenticator | None = None,
        access: AccessServices | None = None,
    ) -> None:
        """``authenticator``: the app's (by default the one ``AUTH_ENABLED`` asks for);
        ``access``: tiers, session tokens and revocations (SPEC §8)."""
        self.container = container
        limits = dataclasses.replace(limits or StreamLimits(), bulk_interval=bulk_interval)
        self.hub = StreamHub(
            limits=limits,
            metrics=container.metrics,
            stale_after=container.settings.stale_after,
            pair_fresh_at=container.prices.fresh_at,
        )
        # By default tokens are resolved and seeded through the container's token service.
        self.token_resolver = token_resolver or self.resolve_token
        self.token_seed = token_seed or self.served_tokens
        self.send_timeout = send_timeout
        self.sse_heartbeat = sse_heartbeat
        self.access = _stream_access(access)
        self.gateway = SocketIoGateway(
            self.hub,
            registry=container.registry,
            supported_pairs=container.prices.supported,
            authenticator=authenticator or authenticator_for(container.settings),
            metrics=container.metrics,
            token_resolver=self.token_resolver,
            seed=self.seed,
            known_keys=self.known_keys,
            cors_origins=list(container.settings.cors_origins),
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            send_timeout=send_timeout,
            max_backlog=max_backlog,
            access=self.access,
        )
        self._detach: Any = None
        self._unwatch: Any = None
        self._bus_down = False
        self._resync_task: asyncio.Task[None] | None = None
        self._reload_task: asyncio.Task[None] | None = None
        self._reload_again = False

    def seed(self, key: str) -> dict[str, Any] | None:
        """The value this instance already serves for a key (before the hub heard of it)."""
        prefix, ident = split_key(key)
        if prefix == TOKEN_PREFIX:
            return self.token_seed(ident).get(ident)
        base, _, kind = ident.partition("@")
        try:
            pair = self.container.registry.resolve(base)
        except TokenpulseError:
            return None
        supervisor = self.container.supervisor
        if kind:  # pair:BTC/USD@aggregate
            book = supervisor.book if supervisor is not None else None
            view = book.view(AGGREGATE, pair) if book is not None else None
        else:
            view = self.container.prices.view(pair)
        return None if view is None else orjson.loads(view.body)

    def known_keys(self, prefix: str) -> list[str]:
        """Every key of a kind this instance serves (what a wildcard starts with)."""
        if prefix == PAIR_PREFIX:
            return [PAIR_PREFIX + str(p) for p in self.container.prices.pairs]
        return [TOKEN_PREFIX + t for t in self.token_seed(None)]

    def resolve_token(self, text: str) -> str | None:
        """The default token resolver: id, CMC id, CoinGecko id or symbol -> our id.

        Raises TokenNotFound / AmbiguousToken (answered with their codes)."""
        return self.container.tokens.resolve(text).id

    def served_tokens(self, token_id: str | None) -> dict[str, dict[str, Any]]:
        """The default token seed: the JSON of one served token, or of all (``None``)."""
        tokens = self.container.tokens
        views = tokens.views() if token_id is None else [tokens.view(token_id)]
        return {v.snapshot.id: orjson.loads(v.body) for v in views if v is not None}

    def sse_router(self) -> APIRouter:
        """The SSE routes of this hub (include before ``/api/v1/tokens/{token_id}``) and
        ``GET /asyncapi.json``, the stream contract."""
        router = sse_router(
            self.hub,
            registry=self.container.registry,
            supported_pairs=self.container.prices.supported,
            metrics=self.container.metrics,
            token_resolver=self.token_resolver,
            heartbeat=self.sse_heartbeat,
            send_timeout=self.send_timeout,
            seed=self.seed,
            known_keys=self.known_keys,
            access=self.access,
        )
        document = orjson.dumps(add_access(asyncapi_document(self.hub.limits)))

        async def get_asyncapi() -> Response:
            """The AsyncAPI 3.0 document of the Socket.IO events and the SSE streams."""
            return Response(document, media_type="application/json")

        router.add_api_route(ASYNCAPI_PATH, get_asyncapi, methods=["GET"], include_in_schema=False)
        return router

    async def start(self) -> None:
        """Feed the hub from the bus and start the Socket.IO dispatcher (idempotent)."""
        if self._detach is None:
            detach_hub = self.hub.attach(self.container.bus)
            unsubscribe = self.container.bus.subscribe(LATEST_SAVED_TOPIC, self._leader_saved)

            def detach() -> None:
                detach_hub()
                unsubscribe()

            self._detach = detach
            self._unwatch = self.container.bus.watch(self.bus_state_changed)
        await self.gateway.start()

    def bus_state_changed(self, healthy: bool) -> None:
        """The bus went down: a follower flags every key stale (its streams stay open). The
        bus came back: every subscriber gets a fresh snapshot (a resync, counted)."""
        faults = self.container.metrics.faults
        if not healthy:
            self._bus_down = True
            if not self.container.state.ingesting:
                self.hub.mark_all_stale()
                faults.stream_stale_signals.inc()
            return
        if self._bus_down:
            self._bus_down = False
            self._resync_task = asyncio.create_task(self._resync(), name="stream-resync")

    async def _resync(self) -> None:
        """After a bus outage: a follower first loads the leader's latest values (what it
        missed) into its services and the hub; then every subscriber gets a snapshot."""
        container = self.container
        if not container.state.ingesting:
            await self._reload()
        self.hub.resync()
        container.metrics.faults.stream_resyncs.inc()

    async def _reload(self) -> None:
        """Load the leader's saved latest values and hand the hub what changed."""
        container = self.container
        await container.state.reload_latest()
        for pair, view in container.prices.views().items():
            self.hub.publish_pair(str(pair), orjson.loads(view.body))
        for token in container.tokens.views():
            self.hub.publish_token(token.snapshot.id, orjson.loads(token.body))

    def _leader_saved(self, _topic: str, _payload: bytes) -> None:
        """The leader's saves caught up after an outage: a follower reloads them (an update
        the bus lost meanwhile reaches its clients now, not with the key's next change)."""
        if self.container.state.ingesting:
            return
        self._reload_again = True
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.create_task(self._reload_saved(), name="stream-reload")

    async def _reload_saved(self) -> None:
        while self._reload_again:
            self._reload_again = False
            await self._reload()

    async def drain(self) -> None:
        """End every stream now (SSE responses finish, Socket.IO clients are disconnected)."""
        self.hub.close_all("shutdown")
        await self.gateway.disconnect_all()

    async def stop(self) -> None:
        """Drain the streams and stop listening to the bus (idempotent)."""
        await self.drain()
        await self.gateway.stop()
        if self.access is not None:
            await self.access.stop()
        if self._detach is not None:
            self._detach()
            self._unwatch()
            self._detach = self._unwatch = None
        for task in (self._resync_task, self._reload_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _stream_access(access: AccessServices | None) -> StreamAccess | None:
    """The streams' side of access control: tier limits, token expiry, revocations."""
    if access is None:
        return None
    usage = access.metrics.usage
    stream_access = StreamAccess(
        tiers=access.tiers,
        verify_token=access.sessions.verify if access.sessions is not None else None,
        count=lambda key_id, tier: usage.count(key_id, tier, 2),
        messages=usage.messages,
        guard=access.guard,
        slots=access.stream_slots,
        slot_errors=access.metrics.stream_slot_errors.inc,
    )
    if access.keys is not None:
        access.keys.on_revoked(stream_access.revoked)
    return stream_access


class StreamsApp(socketio.ASGIApp):  # type: ignore[misc]
    """``socketio.ASGIApp`` in front of the HTTP app; runs the streams with its lifespan."""

    def __init__(
        self, streams: Streams, app: Any, container: ApiServices, *, manage_lifespan: bool
    ) -> None:
        super().__init__(streams.gateway.sio, other_asgi_app=app, socketio_path="socket.io")
        self.streams = streams
        self.container = container
        self.manage_lifespan = manage_lifespan

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan" or not self.manage_lifespan:
            await super().__call__(scope, receive, send)
            return

        async def send_after_start(message: Any) -> None:
            if message["type"] == "lifespan.startup.complete":
                await self.streams.start()
            await send(message)

        async def receive_stopping_first() -> Any:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self.streams.stop()
            return message

        await self.other_asgi_app(scope, receive_stopping_first, send_after_start)


def mount_streams(
    app: Any,
    container: ApiServices,
    *,
    streams: Streams | None = None,
    manage_lifespan: bool = True,
    **options: Any,
) -> StreamsApp:
    """Serve Socket.IO at ``/socket.io/`` in front of ``app`` (everything else goes to it).

    ``options`` build the :class:`Streams` when none is given. The returned app has
    ``.streams`` and ``.container``.
    """
    streams = streams or Streams(container, **options)
    return StreamsApp(streams, app, container, manage_lifespan=manage_lifespan)


__all__ = [
    "HubStats",
    "LimitExceeded",
    "StreamHub",
    "StreamLimits",
    "Streams",
    "StreamsApp",
    "TokenPublisher",
    "TokenSeed",
    "make_ltp_publisher",
    "make_token_publisher",
    "mount_streams",
]
