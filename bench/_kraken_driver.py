"""The load side of the ingestion benchmark: a fake Kraken WS v2 in its own process.

:func:`run_driver` starts the test suite's fake Kraken WebSocket v2 server
(``tests/fakes/kraken_ws.py``: status on connect, one ack and one snapshot per subscribed
symbol, the real wire protocol) with ticker values for every pair, reports its URL, waits
until the service has subscribed every symbol, then on "go" sends ``update`` frames at
``rate`` frames/s for ``duration`` seconds, rotating over the pairs on each connection.

Frames are built before the run and written as ready WebSocket frames (server frames are
not masked: ``0x81``, the length, the text), a few hundred per ``transport.write``, so one
load process can send tens of thousands a second; on the wire they are what ``ws.send``
would write. The watched pair gets its own frames ``watch_rate`` times a second, each with a
price of its own, and the send time of each price is reported for the latency measure.
"""

from __future__ import annotations

import asyncio
import struct
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TICK = 0.005  # seconds between two writes of due frames


def ws_frame(text: str) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (RFC 6455 §5.2)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return bytes((0x81, 126)) + struct.pack("!H", size) + payload
    return bytes((0x81, 127)) + struct.pack("!Q", size) + payload


def run_driver(config: dict[str, Any], conn: Any) -> None:
    """Process entry point (spawned): see the module docstring."""
    sys.path[:0] = [str(ROOT)]
    sys.path.append(str(BENCH))
    asyncio.run(_drive(config, conn))


async def _drive(config: dict[str, Any], conn: Any) -> None:
    from tests.fakes.kraken_ws import FakeKrakenWs

    from _kraken_load import frame_file, ticker_values

    symbols: list[str] = config["symbols"]
    watch: str = config["watch"]
    async with FakeKrakenWs(ticker_values(symbols)) as fake:
        conn.send({"url": fake.url})
        deadline = time.monotonic() + config["subscribe_timeout"]
        while sum(len(c.subscribed) for c in fake._clients) < len(symbols):
            if time.monotonic() > deadline:
                conn.send({"error": "the service did not subscribe every symbol in time"})
                return
            await asyncio.sleep(0.05)  # the fake's own pacing, polling its subscription table
        conn.send({"subscribed": len(symbols), "connections": fake.connections})
        if conn.recv() != "go":
            return
        load = [s for s in symbols if s != watch]
        total = int(config["rate"] * config["duration"])
        owner = {s: c for c in fake._clients for s in c.subscribed}
        framed: dict[Any, list[bytes]] = {}
        for symbol, text in frame_file(load, total, datetime.now(UTC)):
            framed.setdefault(owner[symbol], []).append(ws_frame(text))
        entry = ticker_values([watch])[watch]
        sent = await _send(framed, owner[watch], entry, config)
        conn.send(sent)


async def _send(
    framed: dict[Any, list[bytes]], watched: Any, entry: dict[str, Any], config: dict[str, Any]
) -> dict[str, Any]:
    """Write the frames at the rate asked, and the watched pair's frames between them."""
    from _kraken_load import update_frame

    rate, duration, watch_rate = config["rate"], config["duration"], config["watch_rate"]
    clients = list(framed)
    shares = {c: len(framed[c]) / max(1, sum(len(f) for f in framed.values())) for c in clients}
    positions = dict.fromkeys(clients, 0)
    price = Decimal(entry["last"])
    step = price.scaleb(-6).quantize(price) or Decimal(1).scaleb(price.as_tuple().exponent)
    watched_sends: dict[str, float] = {}
    started = time.monotonic()
    next_watch = started
    written = 0
    while True:
        now = time.monotonic()
        elapsed = now - started
        if elapsed >= duration:
            break
        due = int(rate * elapsed)
        for client in clients:
            target = int(due * shares[client])
            frames = framed[client]
            start = positions[client]
            if target > start:
                end = min(target, len(frames))
                client.ws.transport.write(b"".join(frames[start:end]))
                written += end - start
                positions[client] = end
        if watch_rate > 0 and now >= next_watch:
            price += step
            text = update_frame(entry, price, datetime.now(UTC))
            watched.ws.transport.write(ws_frame(text))
            watched_sends[str(float(price))] = time.time() * 1000
            next_watch += 1 / watch_rate
        await asyncio.sleep(TICK)  # pacing the load, not waiting for a condition
    return {
        "frames": written + len(watched_sends),
        "watched": watched_sends,
        "seconds": time.monotonic() - started,
    }
