"""SSE body chunks written straight to uvicorn's connection (``api/streams/sse_wire.py``):
the client reads what uvicorn's own ``send`` would have written, the access log counts them,
and a server the writer does not know keeps the ASGI path."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import structlog

from tests.api.conftest import OFFLINE
from tests.helpers import wait_for
from tests.server import app_settings, running_app, serving_asgi
from tokenpulse.api.streams.sse_wire import ChunkWriter

EVENT = "HTTP request processed"


@pytest.mark.parametrize(("http", "direct"), [("httptools", True), ("h11", False)])
async def test_direct_chunks_read_as_uvicorns_own(http: str, direct: bool) -> None:
    found: list[ChunkWriter | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        scope["state"] = {"server_send": send}
        start = {"type": "http.response.start", "status": 200, "headers": []}
        await send(start)
        writer = ChunkWriter.behind(scope)
        found.append(writer)
        for body in (b"event: a\ndata: 1\n\n", b"", b"x" * 70_000):
            if writer is not None and writer.ready:
                writer.write(body)
            else:
                await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async with serving_asgi(app, http=http) as port, httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(f"http://127.0.0.1:{port}")
    assert answer.content == b"event: a\ndata: 1\n\n" + b"x" * 70_000
    assert (found[0] is not None) is direct
    if found[0] is not None:
        assert found[0].state["direct_bytes"] == len(answer.content)


async def test_the_access_log_counts_the_bytes_written_past_asgi(http: httpx.AsyncClient) -> None:
    """Keepalives every second go out straight to the connection; the close line's bytes
    are every byte of the body the client read."""
    settings = app_settings(**OFFLINE, log_level="info", sse_heartbeat="1s")
    async with running_app(settings) as app:
        with structlog.testing.capture_logs() as lines:
            received = bytearray()
            url = f"{app.base_url}/api/v1/ltp/live?pair=BTC/USD"
            async with http.stream("GET", url) as response:
                assert response.status_code == 200
                async for chunk in response.aiter_raw():
                    received += chunk
                    if received.count(b": keepalive") >= 2:
                        break
            await wait_for(lambda: any(line["event"] == EVENT for line in lines), 10)
        (closed,) = [line for line in lines if line["event"] == EVENT]
    assert closed["stream"] == "sse"
    assert closed["bytes"] == len(received)
