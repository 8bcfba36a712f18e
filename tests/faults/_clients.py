"""Stream clients and instance settings the fault scenarios share."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import socketio

from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.server import app_settings
from tokenpulse.settings import Settings


def instance_settings(
    ws: FakeKrakenWs,
    rest: FakeKrakenRest,
    redis_url: str,
    prefix: str,
    tmp: Path,
    **extra: Any,
) -> Settings:
    """An instance on Redis (through a proxy, when ``redis_url`` is one) with a fast bus
    heartbeat, so an outage is noticed in test time."""
    options: dict[str, Any] = {
        "kraken_ws_url": ws.url,
        "kraken_rest_url": rest.base_url,
        "cache_backend": "redis",
        "redis_url": redis_url,
        "redis_key_prefix": prefix,
        "database_url": f"sqlite+aiosqlite:///{tmp}/history.db",
        "bus_heartbeat_interval": "200ms",
        **extra,
    }
    return app_settings(**options)


class SseReader:
    """Reads an SSE response into ``{event, id, data}`` dicts."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.events: list[dict[str, Any]] = []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        current: dict[str, Any] = {}
        with contextlib.suppress(httpx.HTTPError):
            async for line in self.response.aiter_lines():
                if line == "":
                    if "data" in current:
                        current["data"] = json.loads(current["data"])
                        self.events.append(current)
                    current = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    current[name] = value

    def messages(self) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events]

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def sse(base_url: str, path: str) -> AsyncIterator[SseReader]:
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream("GET", base_url + path) as response,
    ):
        assert response.status_code == 200
        reader = SseReader(response)
        try:
            yield reader
        finally:
            await reader.close()


@contextlib.asynccontextmanager
async def sio(base_url: str) -> AsyncIterator[tuple[socketio.AsyncClient, list[Any]]]:
    """A python-socketio client; the list collects every ``ltp_update``."""
    client = socketio.AsyncClient(reconnection=False)
    received: list[Any] = []
    client.on("ltp_update", received.append)
    await client.connect(base_url, transports=["websocket"], wait_timeout=5)
    try:
        yield client, received
    finally:
        await client.disconnect()


def amounts(messages: list[dict[str, Any]]) -> list[float]:
    """Every ``amount`` an LTP stream carried (snapshots and deltas)."""
    out = []
    for message in messages:
        body = message.get("data") or message.get("changes") or {}
        if "amount" in body:
            out.append(body["amount"])
    return out


def metric(text: str, name: str) -> float:
    """The value of an unlabelled sample in a Prometheus text exposition (0 if absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0
