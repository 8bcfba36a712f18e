"""Our own CPU per ``GET /api/v1/ltp`` request, without an HTTP server (in process).

Builds the app as ``tokenpulse serve`` does (replay source, memory cache, auth, a rate limit
that never throttles, JSON access log on), calls it as an ASGI server would with a ready-made
scope, and reports the event loop thread's CPU microseconds per request, alternating the
direct route (``api/ltp/direct.py``) and the edge's general path in the same process, so a
machine loaded by something else weighs on both alike. wrk and the server's own parsing are
not in these numbers: ``bench/http.py`` measures the whole.

    .venv/bin/python bench/edge_cpu.py [--requests 20000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# bench/http.py would shadow the standard library's http package that starlette imports.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

KEY = "bench-key-" + "k" * 22


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/ltp",
        "raw_path": b"/api/v1/ltp",
        "query_string": b"pair=BTC/USD",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8080"), (b"x-api-key", KEY.encode())],
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8080),
    }


async def measure(requests: int, rounds: int) -> dict[str, list[float]]:
    """µs of event-loop-thread CPU per request, per round, for each path."""
    from tokenpulse.api.app import create_app
    from tokenpulse.observability.logging import configure_logging
    from tokenpulse.runtime import create_runtime
    from tokenpulse.settings import load_settings

    overrides = {
        "sources": "replay",
        "cache_backend": "memory",
        "history_enabled": False,
        "auth_enabled": True,
        "auth_api_key": KEY,
        "rate_limit_enabled": True,
        "rate_limit_capacity": 1_000_000_000,
        "rate_limit_refill_rate": 1_000_000_000,
    }
    settings = load_settings(None, {}, overrides=overrides).settings
    configure_logging("info", "json")  # the access line goes to the writer thread
    runtime = create_runtime(settings)
    app = create_app(runtime.container, lifecycle=runtime)
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    await runtime.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            sent.clear()
            await app(_scope(), receive, send)
            if sent[0]["status"] == 200:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"no 200 within 30 s: {sent[0]['status']}")
            await asyncio.sleep(0.1)
        direct = app.direct_routes
        results: dict[str, list[float]] = {"direct": [], "general": []}
        for _ in range(rounds):
            for path, values in results.items():
                app.direct_routes = direct if path == "direct" else {}
                started = time.thread_time()
                for _ in range(requests):
                    sent.clear()
                    await app(_scope(), receive, send)
                values.append((time.thread_time() - started) / requests * 1e6)
        app.direct_routes = direct
        return results
    finally:
        await runtime.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/edge_cpu.py", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=4, help="alternations of the two paths")
    args = parser.parse_args(argv)
    import uvloop

    results = uvloop.run(measure(args.requests, args.rounds))
    print(
        "path      "
        + "  ".join(f"round {i + 1:>2}" for i in range(args.rounds))
        + "     min  median"
    )
    for path, values in results.items():
        cells = "  ".join(f"{v:8.2f}" for v in values)
        print(f"{path:8s}  {cells}  {min(values):6.2f}  {statistics.median(values):6.2f}")
    print("µs of event-loop CPU per GET /api/v1/ltp?pair=BTC/USD (auth, rate limit, metrics, log)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
