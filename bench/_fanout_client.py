"""Load clients for the fan-out benchmark: many Socket.IO or SSE clients on one event loop.

Each worker process runs ``run_worker``: it opens its clients (aiohttp, one session),
subscribes each to the keys, reports ready, waits for "go", measures for the window, reports
its numbers and closes. The Socket.IO client speaks Engine.IO v4 / Socket.IO v5 over a bare
WebSocket (open, ``40`` connect with auth, ``42`` events, ``421`` + ack, pong on ping) so a
process can hold thousands of connections; python-socketio's client costs a session and
several tasks each.

Per message: latency from the server's ``ts`` (send time) to receipt, latency from the
update's ``received_at`` (when the source read the tick) to receipt, and the ``seq`` /
``base_seq`` bookkeeping that tells conflation from loss:

- a delta whose ``base_seq`` equals the last ``seq`` this client got for the key applies to
  the state it has: the ``seq - base_seq - 1`` updates in between were *conflated* (merged
  into it by the server on purpose, for a client that was behind or asked for an interval);
- a delta whose ``base_seq`` differs was built on a state the client never got: the updates
  from its last ``seq`` to this one are *lost*.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from array import array
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


def _import_stdlib_http() -> None:
    """bench/http.py shadows the standard library's ``http``, which aiohttp needs: import the
    real package once, with this folder off the path, so later imports find it cached."""
    here = str(Path(__file__).resolve().parent)
    shadowing = [
        p for p in sys.path if p in ("", ".", here) or Path(p or ".").resolve() == Path(here)
    ]
    for entry in shadowing:
        sys.path.remove(entry)
    try:
        import http
        import http.cookies
    finally:
        sys.path[:0] = shadowing
    assert hasattr(http, "HTTPStatus")


_import_stdlib_http()

import aiohttp  # noqa: E402

import _fanout_proto  # noqa: E402

try:
    import orjson

    loads = orjson.loads
except ImportError:  # pragma: no cover - the venv has it
    loads = json.loads

BUCKET_MS = 0.1
BUCKETS = 200_000  # 20 s at 0.1 ms


class Histogram:
    """Latencies in 0.1 ms buckets (cheap to record, exact enough, mergeable)."""

    def __init__(self) -> None:
        self.counts = array("L", [0]) * BUCKETS
        self.n = 0

    def add(self, ms: float) -> None:
        index = int(ms / BUCKET_MS)
        if index < 0:
            index = 0
        elif index >= BUCKETS:
            index = BUCKETS - 1
        self.counts[index] += 1
        self.n += 1

    def to_sparse(self) -> dict[int, int]:
        return {i: c for i, c in enumerate(self.counts) if c}


def percentile(sparse: dict[int, int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a sparse histogram, in ms."""
    total = sum(sparse.values())
    if not total:
        return None
    rank, seen = q * (total - 1), 0
    for index in sorted(sparse):
        seen += sparse[index]
        if seen > rank:
            return (index + 0.5) * BUCKET_MS
    return None


@dataclass
class Stats:
    """What one worker measured during the window."""

    messages: int = 0
    snapshots: int = 0
    conflated: int = 0
    lost: int = 0
    send_latency: Histogram = field(default_factory=Histogram)
    tick_latency: Histogram = field(default_factory=Histogram)
    recording: bool = False


_ISO_MS: dict[str, float] = {}  # every client of a worker gets the same few timestamps


def _iso_ms(text: str) -> float:
    ms = _ISO_MS.get(text)
    if ms is None:
        if len(_ISO_MS) > 10_000:
            _ISO_MS.clear()
        ms = _ISO_MS[text] = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000
    return ms


class KeyState:
    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = -1


def handle(message: dict[str, Any], now_ms: float, keys: dict[str, KeyState], stats: Stats) -> None:
    """Account for one ``ltp_update``/``token_update`` payload received at ``now_ms``."""
    state = keys.get(message["id"])
    if state is None:
        state = keys[message["id"]] = KeyState()
    seq = message["seq"]
    if message["type"] == "snapshot":
        state.last = seq
        body = message["data"]
        if stats.recording:
            stats.snapshots += 1
    else:
        base = message["base_seq"]
        if stats.recording:
            if base == state.last:
                stats.conflated += seq - base - 1
            elif state.last >= 0:
                stats.lost += max(0, seq - state.last - 1)
        state.last = seq
        body = message["changes"]
    if not stats.recording:
        return
    stats.messages += 1
    stats.send_latency.add(now_ms - message["ts"])
    received = body.get("received_at")
    if isinstance(received, str):
        stats.tick_latency.add(now_ms - _iso_ms(received))


async def socketio_client(
    session: aiohttp.ClientSession,
    base_url: str,
    api_key: str | None,
    pairs: list[str],
    interval_ms: int | None,
    stats: Stats,
    subscribed: asyncio.Event,
) -> None:
    """One Socket.IO client over a bare WebSocket until cancelled."""
    url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with session.ws_connect(url, autoping=True, max_msg_size=0) as ws:
        opened = await ws.receive_str()
        if not opened.startswith("0"):
            raise RuntimeError(f"no Engine.IO open: {opened[:80]}")
        auth = {"api_key": api_key} if api_key else {}
        await ws.send_str("40" + json.dumps(auth))
        connect = await ws.receive_str()
        if not connect.startswith("40"):
            raise RuntimeError(f"refused: {connect[:200]}")
        payload: dict[str, Any] = {"pairs": pairs}
        if interval_ms is not None:
            payload["min_interval_ms"] = interval_ms
        await ws.send_str("421" + json.dumps(["subscribe_pair", payload]))
        keys: dict[str, KeyState] = {}
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            data: str = frame.data
            if data.startswith("42"):
                now_ms = time.time() * 1000
                event, message = loads(data[2:])
                if event in ("ltp_update", "token_update"):
                    handle(message, now_ms, keys, stats)
            elif data == "2":
                await ws.send_str("3")  # Engine.IO pong
            elif data.startswith("431"):
                ack = loads(data[3:])[0]
                if not ack.get("ok"):
                    raise RuntimeError(f"subscribe refused: {ack}")
                subscribed.set()
            elif data.startswith("41"):
                break


async def sse_client(
    session: aiohttp.ClientSession,
    base_url: str,
    api_key: str | None,
    pairs: list[str],
    interval_ms: int | None,
    stats: Stats,
    subscribed: asyncio.Event,
) -> None:
    """One SSE client until cancelled."""
    query = "pair=" + ",".join(pairs)
    if interval_ms is not None:
        query += f"&min_interval_ms={interval_ms}"
    headers = {"X-API-Key": api_key} if api_key else {}
    async with session.get(f"{base_url}/api/v1/ltp/live?{query}", headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"SSE answered {response.status}: {(await response.text())[:200]}")
        subscribed.set()
        keys: dict[str, KeyState] = {}
        async for line in response.content:
            if line.startswith(b"data: "):
                now_ms = time.time() * 1000
                handle(loads(line[6:]), now_ms, keys, stats)


def proto_client(transport: str) -> Any:
    """A client on ``_fanout_proto`` with the signature of the aiohttp ones."""

    async def client(
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str | None,
        pairs: list[str],
        interval_ms: int | None,
        stats: Stats,
        subscribed: asyncio.Event,
    ) -> None:
        keys: dict[str, KeyState] = {}
        events = ("ltp_update", "token_update")

        def on_socketio(data: bytes, now_ms: float) -> None:
            event, message = loads(data[2:])
            if event in events:
                handle(message, now_ms, keys, stats)

        def on_sse(data: bytes, now_ms: float) -> None:
            handle(loads(data), now_ms, keys, stats)

        on_message = on_socketio if transport == "socketio" else on_sse
        await _fanout_proto.run(
            transport, base_url, api_key, pairs, interval_ms, on_message, subscribed
        )

    return client


async def _worker(config: dict[str, Any], conn: Any) -> None:
    stats = Stats()
    if config.get("load_client", "proto") == "proto":
        client = proto_client(config["transport"])
    else:
        client = socketio_client if config["transport"] == "socketio" else sse_client
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        gate = asyncio.Semaphore(config["connect_concurrency"])
        failures: list[str] = []
        subscribed_count = 0

        async def one() -> None:
            nonlocal subscribed_count
            subscribed = asyncio.Event()
            async with gate:  # bounded concurrent handshakes
                task = asyncio.create_task(
                    client(
                        session, config["base_url"], config["api_key"], config["pairs"],
                        config["interval_ms"], stats, subscribed,
                    )
                )  # fmt: skip
                waiter = asyncio.create_task(subscribed.wait())
                await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
            if subscribed.is_set():
                subscribed_count += 1
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # refused, or dropped mid-run: count it, keep going
                failures.append(repr(exc)[:200])

        clients = [asyncio.create_task(one()) for _ in range(config["clients"])]
        deadline = time.monotonic() + config["ready_timeout"]
        while subscribed_count + len(failures) < config["clients"]:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(config["settle"])  # snapshots in flight land before the window
        conn.send({"type": "ready", "connected": subscribed_count, "failures": failures[:3]})
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # "go"
        stats.recording = True
        started_at, cpu_at = time.monotonic(), time.process_time()
        await asyncio.sleep(config["duration"])
        stats.recording = False
        elapsed = time.monotonic() - started_at
        cpu = time.process_time() - cpu_at
        conn.send(
            {
                "type": "result",
                "elapsed": elapsed,
                "cpu_s": cpu,
                "messages": stats.messages,
                "snapshots": stats.snapshots,
                "conflated": stats.conflated,
                "lost": stats.lost,
                "send_latency": stats.send_latency.to_sparse(),
                "tick_latency": stats.tick_latency.to_sparse(),
                "failures": len(failures),
                "failure_sample": failures[:3],
                "alive": sum(1 for t in clients if not t.done()),
            }
        )
        for task in clients:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*clients, return_exceptions=True), 30)


def run_worker(config: dict[str, Any], conn: Any) -> None:
    """Process entry point."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        uvloop.run(_worker(config, conn))
    except ImportError:  # pragma: no cover
        asyncio.run(_worker(config, conn))
