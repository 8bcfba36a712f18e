"""What one idle Socket.IO WebSocket connection holds on the server, by package (issue 14).

Serves python-socketio on uvicorn in this process, stock (``socketio.AsyncServer``) and ours
(``PromptSocketServer`` with the pre-framed writer installed, as the gateway runs it), one
after the other; a separate client process opens N Engine.IO WebSocket connections to each,
joins the Socket.IO namespace and stays idle. tracemalloc snapshots taken before and with the N
clients give the Python heap per connection, grouped by the package of the allocating frame,
and the asyncio task count per connection.

    PYTHONPATH=src .venv/bin/python bench/conn_memory.py --clients 1000

No file is written; the figures are printed (the RSS figure is ``bench/fanout.py``'s).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

# bench/http.py would shadow the standard library's http package that engineio imports.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import socketio  # noqa: E402
import uvicorn  # noqa: E402

from tokenpulse.api.streams import wire  # noqa: E402
from tokenpulse.api.streams._engineio import PromptSocketServer  # noqa: E402

PACKAGES = ("engineio", "socketio", "uvicorn", "websockets", "tokenpulse", "asyncio")

CLIENT = """
import asyncio, sys
from websockets.asyncio.client import connect
async def main(port, n):
    url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    conns = []
    for _ in range(n):
        ws = await connect(url, compression=None)
        await ws.recv(); await ws.send("40"); await ws.recv()
        conns.append(ws)
    print("ready", flush=True)
    async def pong(ws):
        async for frame in ws:
            if frame == "2":
                await ws.send("3")
    pongs = [asyncio.create_task(pong(ws)) for ws in conns]
    await asyncio.to_thread(sys.stdin.read)  # until the server side closes our stdin
    for task in pongs:
        task.cancel()
asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


def _package(filename: str) -> str:
    for name in PACKAGES:
        if f"/{name}/" in filename:
            return name
    return "other"


def _by_package(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> Counter[str]:
    """Growth by the package of the allocating (innermost Python) frame: a task or a
    coroutine frame counts for the package whose code created it."""
    sizes: Counter[str] = Counter()
    for stat in after.compare_to(before, "filename"):
        sizes[_package(stat.traceback[0].filename)] += stat.size_diff
    return sizes


async def _measure(sio: socketio.AsyncServer, clients: int) -> dict[str, Any]:
    config = uvicorn.Config(
        socketio.ASGIApp(sio), host="127.0.0.1", port=0, log_level="error", lifespan="off"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:  # uvicorn offers no event for it
        if time.monotonic() > deadline:
            raise SystemExit("uvicorn did not start")
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    gc.collect()
    tasks_before = len(asyncio.all_tasks())
    before = tracemalloc.take_snapshot()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLIENT,
        str(port),
        str(clients),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 600)
    assert line.strip() == b"ready", line
    gc.collect()
    after = tracemalloc.take_snapshot()
    tasks = len(asyncio.all_tasks()) - tasks_before
    connected = len(sio.eio.sockets)
    proc.stdin.close()
    await proc.wait()
    server.should_exit = True
    await serving
    await sio.shutdown()
    sizes = _by_package(before, after)
    return {
        "connected": connected,
        "tasks_per_conn": tasks / clients,
        "bytes_per_conn": {k: v / clients for k, v in sizes.most_common()},
        "total_per_conn": sum(sizes.values()) / clients,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    args = parser.parse_args()
    tracemalloc.start(1)
    stock = socketio.AsyncServer(async_mode="asgi")
    ours = PromptSocketServer(async_mode="asgi")
    if not wire.install(ours.eio):
        raise SystemExit("uvicorn's websockets-sansio protocol is not available")
    for name, sio in (("stock", stock), ("tokenpulse", ours)):
        row = await _measure(sio, args.clients)
        parts = ", ".join(f"{k} {v / 1024:.1f}" for k, v in row["bytes_per_conn"].items())
        print(
            f"{name}: {row['connected']} connected, {row['tasks_per_conn']:.2f} tasks/conn, "
            f"Python heap {row['total_per_conn'] / 1024:.1f} KiB/conn ({parts})"
        )


if __name__ == "__main__":
    asyncio.run(main())
