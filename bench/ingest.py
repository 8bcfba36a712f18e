"""Ingestion benchmark (SPEC §12): Kraken WS v2 ticker frames parsed and applied per second.

Starts a fake Kraken WebSocket v2 server (the test suite's, speaking the real protocol) in
this process and ``tokenpulse serve`` in its own process pointed at it, then sends
``--frames`` ticker updates as fast as the socket takes them, rotating over the supported
pairs, and reads the service's own counters from ``/metrics`` until every frame is parsed:
frames parsed per second (``tokenpulse_source_messages_total{kind="ticker"}``) and values
applied per second (``tokenpulse_price_updates_total``; fewer than parsed when the reader's
latest-value buffer conflates updates of a pair that arrive faster than they are applied).

    .venv/bin/python bench/ingest.py [--frames 50000] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/http.py would shadow the standard library's http (which websockets imports): load
# the fake Kraken server with the repository root first, then add bench/ for its helpers.
BENCH = sys.path.pop(0)
sys.path.insert(0, str(ROOT))
from tests.fakes.kraken_ws import FakeKrakenWs  # noqa: E402

sys.path.insert(1, BENCH)
from _report import git_revision, machine_info  # noqa: E402
from _server import ServerProcess, free_port, http_get  # noqa: E402

PAIRS = ("BTC/USD", "ETH/USD", "LTC/USD", "XRP/USD")
SAMPLE = re.compile(r"^(tokenpulse_\w+)\{([^}]*)\} ([0-9.e+]+)$", re.M)


def counters(port: int) -> tuple[float, float]:
    """(ticker frames parsed, price updates applied) from the service's /metrics."""
    _, body = http_get(port, "/metrics", {}, 5.0)
    parsed = applied = 0.0
    for name, labels, value in SAMPLE.findall(body.decode()):
        if name == "tokenpulse_source_messages_total" and 'kind="ticker"' in labels:
            parsed += float(value)
        elif name == "tokenpulse_price_updates_total":
            applied += float(value)
    return parsed, applied


async def run(frames: int) -> dict[str, object]:
    async with FakeKrakenWs() as fake:
        port = free_port()
        work = Path(tempfile.mkdtemp(prefix="tokenpulse-ingest-"))
        env = {
            "PATH": "/usr/bin:/bin",
            "SOURCES": "kraken",
            "KRAKEN_WS_URL": fake.url,
            "KRAKEN_REST_URL": "http://127.0.0.1:9",
            "PORT": str(port),
            "LOG_LEVEL": "warning",
            "HISTORY_ENABLED": "false",
            "WS_IDLE_TIMEOUT": "1m",
        }
        server = ServerProcess(
            [sys.executable, "-m", "tokenpulse", "serve"], env, work, work / "server.log"
        )
        server.start()
        try:
            # Blocking calls run in a thread: this loop also serves the fake Kraken socket.
            await asyncio.to_thread(server.wait_ready, port, "/api/v1/ltp", {}, 60)
            base_parsed, base_applied = await asyncio.to_thread(counters, port)
            price = Decimal("70000.0")
            started = time.monotonic()
            for index in range(frames):
                price += Decimal("0.1")
                await fake.send_ticker(
                    PAIRS[index % len(PAIRS)], last=price, timestamp=datetime.now(UTC)
                )
            sent = time.monotonic() - started
            deadline = time.monotonic() + 120
            parsed = applied = 0.0
            while time.monotonic() < deadline:
                parsed, applied = await asyncio.to_thread(counters, port)
                if parsed - base_parsed >= frames:
                    break
                await asyncio.sleep(0.05)  # polling the service's counters with a deadline
            elapsed = time.monotonic() - started
            parsed -= base_parsed
            applied -= base_applied
        finally:
            shutdown = await asyncio.to_thread(server.stop, 20)
    return {
        "frames": frames,
        "send_seconds": round(sent, 3),
        "elapsed_seconds": round(elapsed, 3),
        "parsed": int(parsed),
        "applied": int(applied),
        "parsed_per_s": round(parsed / elapsed),
        "applied_per_s": round(applied / elapsed),
        "clean_shutdown": shutdown.exit_code == 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args.frames))
    print(json.dumps(result, indent=2))
    if not args.no_write:
        machine = machine_info()
        revision = git_revision(ROOT)
        with (ROOT / "BENCHMARKS.md").open("a", encoding="utf-8") as out:
            out.write(
                f"\n## Ingestion — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
                f"commit {revision.get('commit')}\n\n"
                f"Machine: {machine.get('cpu_model')}, {machine.get('cpus_available')} CPUs. "
                f"Command: `.venv/bin/python bench/ingest.py --frames {args.frames}`. "
                "The fake Kraken WS (same process as the driver) sends update frames as fast "
                "as the socket takes them; the service's own counters are read from /metrics.\n\n"
                "| frames | parsed/s | applied/s | parsed | applied (rest conflated) |\n"
                "|---:|---:|---:|---:|---:|\n"
                f"| {result['frames']} | {result['parsed_per_s']:,} | "
                f"{result['applied_per_s']:,} | {result['parsed']} | {result['applied']} |\n"
            )
    return 0 if result["parsed"] >= args.frames else 1


if __name__ == "__main__":
    raise SystemExit(main())
