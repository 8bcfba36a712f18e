"""No growth after churn (SPEC §7.3): rounds of abrupt Socket.IO and SSE connect, subscribe,
abort (a TCP reset, no goodbye) leave the hub empty and the process's memory where the
first round left it. Prints the RSS per round and the top ``tracemalloc`` differences."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.e2e._streams import streaming_app
from tests.helpers import in_memory_settings, wait_for

ROUNDS = 5
CYCLES = 1000
CONCURRENCY = 50
MAX_GROWTH_MB = 10.0
FRAMES = 4
TRACED_CYCLES = 200
PING = 5.0  # seconds (the default, 25 s, holds 25 s worth of aborted sockets)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def socketio_cycle(port: int) -> None:
    """Engine.IO v4 over WebSocket by hand: open, connect, subscribe (acked), then reset."""
    ws = await connect(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")
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


@pytest.mark.parametrize("transport", ["socketio", "sse"])
async def test_abrupt_stream_churn_leaves_nothing_behind(transport: str) -> None:
    """One transport per test, so the two run side by side in a parallel run."""
    cycle = socketio_cycle if transport == "socketio" else sse_cycle
    settings = in_memory_settings(log_level="error", access_log=False, rate_limit_enabled=False)
    # Engine.IO keeps an aborted socket until its next ping is due (its ping task holds it):
    # a short ping interval makes that transient hold short, so what stays is a real leak.
    async with streaming_app(settings, ping_interval=PING, ping_timeout=PING) as app:
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

        rss: list[float] = []
        for _ in range(ROUNDS):  # RSS without tracemalloc: its own tables would count
            await churn(cycle, port, CYCLES)
            await wait_for(at_rest, 30, message="every connection forgotten")
            gc.collect()
            rss.append(rss_mb())
        # Then what one more (shorter) round keeps, by allocation site.
        tracemalloc.start(FRAMES)
        try:
            before = tracemalloc.take_snapshot()
            await churn(cycle, port, TRACED_CYCLES)
            await wait_for(at_rest, 30, message="every connection forgotten")
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
        engine_sockets = len(app.streams.gateway.sio.eio.sockets)
    growth = rss[-1] - rss[0]
    print(
        f"\nFIGURE churn {transport}: RSS per round (MB) {[round(r, 1) for r in rss]}, "
        f"growth after round 1: {growth:.1f} MB ({ROUNDS} x {CYCLES} abrupt cycles)"
    )
    print(f"tracemalloc, kept by {TRACED_CYCLES} more cycles of each, top 10:")
    for stat in after.compare_to(before, "traceback")[:10]:
        print(f"  {stat}")
        for line in stat.traceback.format()[-FRAMES * 2 :]:
            print(f"      {line}")
    assert engine_sockets == 0  # Engine.IO forgot every aborted socket too
    assert growth < MAX_GROWTH_MB
