"""Run the real app on a real port, in-process, for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from tests.helpers import wait_for
from tokenpulse.api.app import create_app
from tokenpulse.bootstrap import Container
from tokenpulse.runtime import create_runtime
from tokenpulse.settings import Settings, load_settings

# Fast, quiet settings for tests: small timeouts so failover happens in test time.
TEST_DEFAULTS: dict[str, Any] = {
    "sources": "kraken",
    "log_level": "warning",
    "kraken_fallback_timeout": "1s",
    "ws_idle_timeout": "1s",
    "rest_poll_interval": "500ms",
    "backoff_initial": "20ms",
    "backoff_max": "200ms",
    "kraken_request_timeout": "1s",
    "kraken_timeout": "3s",
    "shutdown_timeout": "5s",
    "leader_ttl": "1s",
    "pair_lists_fetch": False,  # no network at start; tests of the fetch turn it on
}


def app_settings(**overrides: Any) -> Settings:
    """Settings from defaults < TEST_DEFAULTS < overrides (no environment, no files)."""
    return load_settings(None, {}, overrides={**TEST_DEFAULTS, **overrides}).settings


@dataclass
class RunningApp:
    base_url: str
    container: Container
    server: uvicorn.Server
    app: Any = None  # the ASGI app: .ltp and .token_api are the API's answer builders


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[RunningApp]:
    """Serve ``settings`` on 127.0.0.1 and a free port until the block exits."""
    runtime = create_runtime(settings)
    app = create_app(runtime.container, lifecycle=runtime)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="on",
        access_log=False,
        proxy_headers=False,
        log_config=None,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + 10
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server exited before it started")
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("server did not start within 10 s")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningApp(f"http://127.0.0.1:{port}", app.container, server, app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@contextlib.asynccontextmanager
async def serving_asgi(app: Any, **config: Any) -> AsyncIterator[int]:
    """Any ASGI ``app`` on a real uvicorn (``config``: more ``uvicorn.Config`` options) on a
    free 127.0.0.1 port, yielded, until the block exits."""
    options: dict[str, Any] = {"log_level": "error", "lifespan": "off", "log_config": None}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, **{**options, **config}))
    task = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: server.started or task.done(), 10, message="uvicorn started")
        if task.done():
            task.result()
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
