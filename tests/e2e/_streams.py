"""Serve the real app with streams mounted, on a real port, for the streaming e2e tests.

The same pattern as ``tests/server.py``, with a ``Streams`` of the test's own options handed
to the app factory. The composition root publishes every accepted value on the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import uvicorn

from tokenpulse.api.app import create_app
from tokenpulse.api.streams import Streams
from tokenpulse.bootstrap import Container, build_container
from tokenpulse.bus.base import EventBus
from tokenpulse.bus.topics import TOKENS_TOPIC
from tokenpulse.runtime import Runtime
from tokenpulse.settings import Settings


@dataclass
class StreamingApp:
    base_url: str
    container: Container
    streams: Streams
    server: uvicorn.Server


def _wire(
    settings: Settings, options: dict[str, Any], bus: Any = None
) -> tuple[Any, Container, Streams]:
    container = build_container(settings)
    if bus is not None:  # e.g. a RedisBus shared by several "instances"
        container.bus = bus
    streams = Streams(container, **options)
    app = create_app(container, lifecycle=Runtime(container), streams=streams)
    return app, container, streams


@contextlib.asynccontextmanager
async def streaming_app(
    settings: Settings, *, port: int = 0, bus: Any = None, **options: Any
) -> AsyncIterator[StreamingApp]:
    """Serve ``settings`` with streams (``options`` go to ``Streams``) until the block exits.

    ``bus`` replaces the container's event bus (it is started here and closed with the app).
    """
    app, container, streams = _wire(settings, options, bus)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        access_log=False,
        proxy_headers=False,
        log_config=None,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server exited before it started")
        if loop.time() > deadline:
            raise TimeoutError("server did not start within 10 s")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    if bus is not None and hasattr(bus, "start"):
        await bus.start()
    try:
        yield StreamingApp(f"http://127.0.0.1:{port}", container, streams, server)
    finally:
        # Stop accepting first, as uvicorn does on SIGTERM: a client that reconnects when its
        # stream ends must find the port closed, not a server that is going away.
        for listener in server.servers:
            listener.close()
        await streams.drain()  # end open streams so the graceful shutdown does not wait
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def publish_token_json(bus: EventBus, token_id: str, data: dict[str, Any]) -> None:
    """Put a token's JSON on the bus as the token service's publisher does (``id`` set).

    For hand-written partial states; without a ``received_at`` the hub streams no age.
    """
    await bus.publish(TOKENS_TOPIC, orjson.dumps({**data, "id": token_id}))
