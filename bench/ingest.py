"""Ingestion benchmark (SPEC §12): Kraken WS v2 ticker frames parsed and applied per second.

Two measures, both through the real code:

1. **Parse rate per core**: ``--parse-frames`` ticker ``update`` frames for ``--pairs`` pairs
   (recorded values, see ``_kraken_load.py``) parsed by the service's own parser
   (``parse_ws_v2``) in this process; frames per CPU second (``time.process_time``, so other
   load on the machine does not count against it).
2. **Live**: a fake Kraken WS v2 server (the test suite's, speaking the real protocol) in a
   load process of its own, and ``tokenpulse serve`` in its own process pointed at it with
   ``--pairs`` pairs (Kraken's listed pairs, topped up with ``BNCH<n>/USD`` in a pair-list
   cache), history on (SQLite), one Socket.IO client subscribed to BTC/USD. Once every pair
   is subscribed, the load process sends ``--rate`` frames/s for ``--duration`` seconds over
   every pair but BTC/USD, and BTC/USD ``--watch-rate`` times a second with a new price each.
   From the service's ``/metrics``: frames parsed (``tokenpulse_source_messages_total
   {kind="ticker"}``) and values applied (``tokenpulse_price_updates_total``; fewer than
   parsed when the reader's latest-value buffer conflated a pair's updates); from
   ``/proc``: the server's CPU seconds. From the client: latency from the frame's receipt by
   the service (the update's ``received_at``, whole milliseconds, so up to 1 ms high) and
   from the load process's send to the client, p50/p99 over the BTC/USD updates.

    .venv/bin/python bench/ingest.py --pairs 500 [--rate 25000] [--duration 10] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _fanout_client import aiohttp, loads
from _kraken_driver import run_driver
from _kraken_load import asset_pairs, frame_file
from _report import append_markdown, git_revision, machine_info
from _server import LOOPBACK, PASSTHROUGH_ENV, ServerProcess, free_port
from tokenpulse.domain.pairs import PairRegistry
from tokenpulse.sources.kraken.ws_parser import parse_ws_v2

ROOT = Path(__file__).resolve().parent.parent
WATCH = "BTC/USD"


def parse_rate(pairs: int, frames: int) -> dict[str, Any]:
    """Frames per CPU second through ``parse_ws_v2``, best of three passes."""
    payload, symbols = asset_pairs(pairs)
    registry = PairRegistry.from_kraken_asset_pairs(payload)
    texts = [text for _, text in frame_file(symbols, frames, datetime.now(UTC))]
    received = datetime.now(UTC)
    best = 0.0
    for _ in range(3):
        started = time.process_time()
        for text in texts:
            parse_ws_v2(text, source="kraken_ws", received_at=received, registry=registry)
        best = max(best, frames / max(time.process_time() - started, 1e-9))
    return {"frames": frames, "frames_per_cpu_s": round(best)}


async def counters(port: int, api_key: str) -> tuple[float, float]:
    """(ticker frames parsed, price updates applied) from the service's /metrics."""
    url = f"http://{LOOPBACK}:{port}/metrics"
    timeout = aiohttp.ClientTimeout(total=30)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url, headers={"X-API-Key": api_key}) as response,
    ):
        if response.status != 200:
            raise RuntimeError(f"/metrics answered {response.status}")
        body = await response.text()
    parsed = applied = 0.0
    for line in body.splitlines():
        if line.startswith("tokenpulse_source_messages_total{") and 'kind="ticker"' in line:
            parsed += float(line.rsplit(" ", 1)[1])
        elif line.startswith("tokenpulse_price_updates_total{"):
            applied += float(line.rsplit(" ", 1)[1])
    return parsed, applied


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def watch_client(
    port: int, api_key: str, seen: list[tuple[float, dict[str, Any]]], first: asyncio.Event
) -> None:
    """One Socket.IO client (bare Engine.IO v4 / Socket.IO v5 WebSocket) on ``pair:BTC/USD``."""
    url = f"ws://{LOOPBACK}:{port}/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        if not (await ws.receive_str()).startswith("0"):
            raise RuntimeError("no Engine.IO open")
        await ws.send_str("40" + json.dumps({"api_key": api_key}))
        if not (await ws.receive_str()).startswith("40"):
            raise RuntimeError("Socket.IO connect refused")
        request = {"pairs": [WATCH], "min_interval_ms": 50}
        await ws.send_str("421" + json.dumps(["subscribe_pair", request]))
        async for frame in ws:
            data: str = frame.data
            if data.startswith("42"):
                now_ms = time.time() * 1000
                event, message = loads(data[2:])
                if event == "ltp_update":
                    seen.append((now_ms, message))
                    first.set()
            elif data == "2":
                await ws.send_str("3")


def latencies(
    seen: list[tuple[float, dict[str, Any]]], sends: dict[str, float]
) -> tuple[list[float], list[float]]:
    """(receipt -> client, send -> client) in ms for each delta that carries a new price."""
    receipt, send = [], []
    for now_ms, message in seen:
        if message.get("type") != "delta":
            continue
        changes = message.get("changes", {})
        received, amount = changes.get("received_at"), changes.get("amount")
        if isinstance(received, str):
            at = datetime.fromisoformat(received.replace("Z", "+00:00")).timestamp() * 1000
            receipt.append(now_ms - at)
        if amount is not None and str(float(amount)) in sends:
            send.append(now_ms - sends[str(float(amount))])
    return receipt, send


async def live(args: argparse.Namespace) -> dict[str, Any]:
    payload, symbols = asset_pairs(args.pairs)
    registry = PairRegistry.from_kraken_asset_pairs(payload)
    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    config = {
        "symbols": symbols,
        "watch": WATCH,
        "rate": args.rate,
        "duration": args.duration,
        "watch_rate": args.watch_rate,
        "subscribe_timeout": 120,
    }
    driver = context.Process(target=run_driver, args=(config, there), daemon=True)
    driver.start()
    url = (await asyncio.to_thread(here.recv))["url"]
    port, api_key = free_port(), secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="tokenpulse-ingest-") as tmp:
        work = Path(tmp)
        (work / "pairs").mkdir()
        cache = {"venue": "kraken", "url": "fake", "fetched_at": "2026-01-01T00:00:00.000Z"}
        (work / "pairs" / "kraken.json").write_text(json.dumps({**cache, "payload": payload}))
        explicit = {
            "SOURCES": "kraken",
            "SUPPORTED_PAIRS": ",".join(str(registry.resolve(s)) for s in symbols),
            "PAIR_LISTS_DIR": str(work / "pairs"),
            "PAIR_LISTS_FETCH": "false",
            "KRAKEN_WS_URL": url,
            "KRAKEN_REST_URL": "http://127.0.0.1:9",
            "AUTH_ENABLED": "true",
            "AUTH_API_KEY": api_key,
            "DATABASE_URL": f"sqlite+aiosqlite:///{work}/bench.db",
            "HOST": LOOPBACK,
            "PORT": str(port),
            "LOG_LEVEL": "warning",
            "WS_IDLE_TIMEOUT": "1m",
        }
        inherited = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        command = [sys.executable, "-m", "tokenpulse", "serve"]
        server = ServerProcess(command, {**inherited, **explicit}, work, work / "server.log")
        with server:
            await asyncio.to_thread(
                server.wait_ready, port, f"/api/v1/ltp?pair={WATCH}", {"X-API-Key": api_key}, 120
            )
            ready = await asyncio.to_thread(here.recv)
            if "error" in ready:
                raise RuntimeError(ready["error"])
            seen: list[tuple[float, dict[str, Any]]] = []
            first = asyncio.Event()
            client = asyncio.create_task(watch_client(port, api_key, seen, first))
            await asyncio.wait_for(first.wait(), 30)  # the subscription's snapshot
            base_parsed, base_applied = await counters(port, api_key)
            base_cpu = server.cpu_seconds() or 0.0
            started = time.monotonic()
            here.send("go")
            sent = await asyncio.to_thread(here.recv)
            deadline = time.monotonic() + 60
            parsed = applied = 0.0
            while time.monotonic() < deadline:  # the service reads what is still in flight
                parsed, applied = await counters(port, api_key)
                if parsed - base_parsed >= sent["frames"]:
                    break
                await asyncio.sleep(1.0)  # polling the counters (a scrape of 500 pairs costs CPU)
            elapsed = time.monotonic() - started
            cpu = (server.cpu_seconds() or 0.0) - base_cpu
            client.cancel()
            parsed -= base_parsed
            applied -= base_applied
    driver.join(10)
    receipt, send = latencies(seen, sent["watched"])
    return {
        "pairs": args.pairs,
        "connections": ready["connections"],
        "frames_sent": sent["frames"],
        "send_seconds": round(sent["seconds"], 2),
        "elapsed_seconds": round(elapsed, 2),
        "parsed": int(parsed),
        "applied": int(applied),
        "parsed_per_s": round(parsed / elapsed),
        "applied_per_s": round(applied / elapsed),
        "server_cpu_s": round(cpu, 2),
        "server_cpu_us_per_frame": round(cpu / max(parsed, 1) * 1e6, 1),
        "frames_per_server_cpu_s": round(parsed / cpu) if cpu else None,
        "watched_updates": len(receipt),
        "receipt_to_client_p50_ms": percentile(receipt, 0.50),
        "receipt_to_client_p99_ms": percentile(receipt, 0.99),
        "send_to_client_p50_ms": percentile(send, 0.50),
        "send_to_client_p99_ms": percentile(send, 0.99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--rate", type=float, default=25_000, help="frames/s sent (live)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load (live)")
    parser.add_argument("--watch-rate", type=float, default=10.0, help="BTC/USD frames/s")
    parser.add_argument("--parse-frames", type=int, default=100_000)
    parser.add_argument("--skip-live", action="store_true", help="the parse rate only")
    parser.add_argument("--label", help="free text to tell this run apart in BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"parse": parse_rate(args.pairs, args.parse_frames)}
    if not args.skip_live:
        result["live"] = asyncio.run(live(args))
    print(json.dumps(result, indent=2))
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / f"ingest-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json").write_text(
        json.dumps({"benchmark": "ingest", "argv": sys.argv[1:], **result}, indent=2) + "\n"
    )
    if not args.no_write:
        write_markdown(args, result)
    live_result = result.get("live")
    return 0 if live_result is None or live_result["parsed"] >= live_result["frames_sent"] else 1


def write_markdown(args: argparse.Namespace, result: dict[str, Any]) -> None:
    machine, revision = machine_info(), git_revision(ROOT)
    command = (
        f".venv/bin/python bench/ingest.py --pairs {args.pairs} --rate {args.rate:g} "
        f"--duration {args.duration:g} --watch-rate {args.watch_rate:g}"
    )
    parse = result["parse"]
    section = (
        f"## Ingestion — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit "
        f"{revision.get('commit')}{' — ' + args.label if args.label else ''}\n\n"
        f"Machine: {machine.get('cpu_model')}, "
        f"{machine.get('cpus_available')} CPUs. Command: `{command}`.\n\n"
        f"Parse: {parse['frames_per_cpu_s']:,} frames per CPU second ({parse['frames']} "
        "frames, `parse_ws_v2`, best of three).\n"
    )
    live_result = result.get("live")
    if live_result is not None:
        section += (
            "\n| pairs | frames sent | parsed/s | applied/s | server CPU µs/frame | "
            "receipt→client p50 / p99 ms | send→client p50 / p99 ms |\n"
            "|---:|---:|---:|---:|---:|---:|---:|\n"
            f"| {live_result['pairs']} | {live_result['frames_sent']} | "
            f"{live_result['parsed_per_s']:,} | {live_result['applied_per_s']:,} | "
            f"{live_result['server_cpu_us_per_frame']} | "
            f"{live_result['receipt_to_client_p50_ms']} / "
            f"{live_result['receipt_to_client_p99_ms']} | "
            f"{live_result['send_to_client_p50_ms']} / {live_result['send_to_client_p99_ms']} |\n"
        )
    append_markdown(ROOT / "BENCHMARKS.md", section)


if __name__ == "__main__":
    raise SystemExit(main())
