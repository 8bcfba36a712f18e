"""The churn scenario of ``test_churn.py``, run in a fresh process of its own (``python -m
tests.faults._churn socketio|sse``) so its RSS is not the test worker's history: the app
and the abrupt clients in one process, one JSON line of results on stdout."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

from engineio.async_socket import AsyncSocket
from websockets.asyncio.client import ClientConnection, connect

from tests.e2e._streams import streaming_app
from tests.helpers import in_memory_settings, wait_for

ROUNDS = 5
CYCLES = 1000
CONCURRENCY = 50
MAX_GROWTH_MB = 10.0
FRAMES = 4
TRACED_CYCLES = 200
# Seconds until Engine.IO lets go of the aborted sockets: well under its default ping hold
# (20-25 s, see test_engineio_release.py), with room for a full collection on a loaded machine.
RELEASE_DEADLINE = 15.0


def rss_mb() -> float:
    """The process's resident memory, after handing freed heap pages back to the OS (glibc's
    ``malloc_trim``): what is measured is what is still in use, not fragmentation."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def socketio_cycle(port: int) -> None:
    """Engine.IO v4 over WebSocket by hand: open, connect, subscribe (acked), then reset."""
    url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    ws = await connect(url, open_timeout=60)  # a loaded machine, tracemalloc on: slow
    try:
        assert str(await ws.recv()).startswith("0")  # engine.io open
        await ws.send("40")
        await _until(ws, "40")  # namespace connected
        await ws.send('420["subscribe_pair",{"pair":"BTC/USD"}]')
        await _until(ws, "430")  # the ack (events may come first)
    finally:
        ws.transport.abort()


async def _until(ws: ClientConnection, prefix: str) -> None:
    """Read packets until one starts with ``prefix``, answering pings on the way."""
    while not (packet := str(await ws.recv())).startswith(prefix):
        if packet == "2":
            await ws.send("3")


async def sse_cycle(port: int) -> None:
    """GET an SSE stream, read its first event, then reset the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /api/v1/ltp/live?pair=BTC/USD HTTP/1.1\r\nHost: test\r\n\r\n")
        await reader.readuntil(b"event: ")
    finally:
        writer.transport.abort()


async def churn(cycle: Callable[[int], Awaitable[None]], port: int, cycles: int) -> None:
    queue = iter(range(cycles))

    async def worker() -> None:
        for _ in queue:
            await cycle(port)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


async def run(transport: str) -> dict[str, object]:
    """Rounds of abrupt cycles of one transport; RSS per round, what is left, tracemalloc."""
    cycle = socketio_cycle if transport == "socketio" else sse_cycle
    settings = in_memory_settings(log_level="error", access_log=False, rate_limit_enabled=False)
    # Engine.IO's default ping (25 s interval, 20 s timeout): an aborted socket must be let
    # go at its disconnect, not at its next ping (``tokenpulse.api.streams._engineio``).
    async with streaming_app(settings) as app:
        port = int(app.base_url.rsplit(":", 1)[1])
        hub = app.streams.hub
        await wait_for(app.container.prices.views, 10, message="prices from the replay")

        def at_rest() -> bool:
            stats = hub.stats()
            return (
                sum(stats.connections.values()) == 0
                and stats.pending == 0
                and stats.timers == 0
                and stats.index_entries == 0
            )

        eio = app.streams.gateway.sio.eio

        released_after: list[float] = []

        async def released() -> None:
            """Wait until Engine.IO let go of the aborted sockets (its service task's loop
            variable may keep the last one it looked at). Polled slowly: a full collection
            is not cheap."""
            start = time.monotonic()
            while True:
                gc.collect()
                alive = sum(isinstance(o, AsyncSocket) for o in gc.get_objects())
                if not eio.sockets and alive <= 1:
                    released_after.append(round(time.monotonic() - start, 2))
                    return
                if time.monotonic() - start > RELEASE_DEADLINE:
                    raise AssertionError(
                        f"Engine.IO still holds {alive} sockets after {RELEASE_DEADLINE} s"
                    )
                await asyncio.sleep(0.2)

        rss: list[float] = []
        for _ in range(ROUNDS):  # RSS without tracemalloc: its own tables would count
            await churn(cycle, port, CYCLES)
            await wait_for(at_rest, 30, message="every connection forgotten")
            await released()
            rss.append(rss_mb())
        # Then what one more (shorter) round keeps, by allocation site.
        tracemalloc.start(FRAMES)
        try:
            before = tracemalloc.take_snapshot()
            await churn(cycle, port, TRACED_CYCLES)
            await wait_for(at_rest, 30, message="every connection forgotten")
            await released()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        top = []
        for stat in after.compare_to(before, "traceback")[:10]:
            top.append(str(stat))
            top.extend(f"    {line}" for line in stat.traceback.format()[-FRAMES * 2 :])
        return {
            "rss": rss,
            "engine_sockets": len(app.streams.gateway.sio.eio.sockets),
            "ping_interval": eio.ping_interval,
            "released_after": released_after,
            "tracemalloc": top,
        }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(sys.argv[1]))))
