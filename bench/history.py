"""History store benchmark (SPEC §12): rows written per second and the 7-day 1m query.

For each backend (a temporary SQLite file, and a fresh PostgreSQL database created on
``--postgres-url`` and dropped afterwards), in this process:

1. migrates the empty database with ``tokenpulse.store.history.migrate.upgrade``;
2. writes 7 days of one-minute token snapshots for one token (10 080 rows, with the digits
   of the recorded BTC chart) through ``HistoryRepository.write_tokens`` in batches of
   ``--batch`` rows, one transaction each, and reports rows written per second;
3. rolls them up (``rollup``: 10 080 minutes, 168 hours, 8 days);
4. times ``token_series(token, now - 7 days, now, "1m")`` — one Core select returning
   10 080 points as dicts — ``--repeat`` times after a warm-up, plus the same range raw
   (10 080 rows) and at 5m (derived from 1m at query time, 2 016 points).

7 days at 1m is 10 080 points, above the API's 10 000-point limit (SPEC §6); the benchmark
passes ``max_points=10_080`` so it measures exactly the query SPEC §12 names.

    .venv/bin/python bench/history.py [--backends sqlite,postgresql] [--repeat 30]
        [--batch 1000] [--postgres-url postgresql://127.0.0.1:5432/test]
        [--label TEXT] [--no-write]

Prints a table, writes ``bench/results/history-<UTC timestamp>.json`` and, unless
``--no-write``, appends a section to ``BENCHMARKS.md``. Exit status 0 on success, 2 when a
backend could not be set up (e.g. no PostgreSQL; leave it out with ``--backends sqlite``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
# bench/http.py shadows the standard library's ``http`` (which prometheus_client imports):
# keep this folder off the front of the import path and load _report from the end of it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.append(str(BENCH_DIR))

import asyncpg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from _report import append_markdown, git_revision, machine_info, package_versions  # noqa: E402
from tokenpulse.domain.tokens import TokenIdentity, TokenQuote, TokenSnapshot  # noqa: E402
from tokenpulse.store.history import migrate  # noqa: E402
from tokenpulse.store.history.repository import HistoryRepository  # noqa: E402

RESULTS_DIR = BENCH_DIR / "results"
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
CHART = (
    REPO_ROOT
    / "tests"
    / "fixtures"
    / "coingecko"
    / ("market_chart_bitcoin_usd_7d_hourly_2023-10-10.json")
)
PACKAGES = ("tokenpulse", "SQLAlchemy", "aiosqlite", "asyncpg", "alembic", "greenlet")
MINUTES = 7 * 24 * 60
END = datetime(2023, 10, 10, 18, 0, tzinfo=UTC)
START = END - timedelta(minutes=MINUTES)
TOKEN = "bitcoin"  # noqa: S105 - a token id, not a credential


@dataclass
class BackendResult:
    """What one backend measured."""

    backend: str
    rows: int
    batch: int
    write_seconds: float
    rows_per_second: float
    rollup_seconds: float
    query_ms: dict[str, dict[str, float]]  # granularity -> min/p50/p90/max
    points: dict[str, int]


def snapshots() -> list[TokenSnapshot]:
    """One snapshot a minute for 7 days, cycling through the recorded chart's digits."""
    body = json.loads(CHART.read_text(encoding="utf-8"))
    prices, caps, volumes = (
        [Decimal(repr(v)) for _, v in body[k]] for k in ("prices", "market_caps", "total_volumes")
    )
    identity = TokenIdentity(id=TOKEN, symbol="BTC", name="Bitcoin", coingecko_id=TOKEN)
    result = []
    for i in range(MINUTES):
        at = START + timedelta(minutes=i)
        j = i % len(prices)
        quote = TokenQuote(
            source="coingecko",
            symbol="BTC",
            name="Bitcoin",
            received_at=at,
            as_of=at,
            price_usd=prices[j],
            market_cap_usd=caps[j],
            volume_24h_usd=volumes[j],
            circulating_supply=Decimal("19512345"),
        )
        velocity = volumes[j] / caps[j]
        result.append(TokenSnapshot(identity, quote, market_cap_used=caps[j], velocity=velocity))
    return result


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "min": ordered[0] * 1000,
        "p50": statistics.median(ordered) * 1000,
        "p90": ordered[int(len(ordered) * 0.9)] * 1000,
        "max": ordered[-1] * 1000,
    }


async def measure(backend: str, url: str, repeat: int, batch: int) -> BackendResult:
    """Migrate, write, roll up and query one empty database."""
    await migrate.upgrade(url)
    repo = HistoryRepository.from_url(url)
    try:
        rows = snapshots()
        started = time.perf_counter()
        for i in range(0, len(rows), batch):
            await repo.write_tokens(rows[i : i + batch])
        write_seconds = time.perf_counter() - started

        started = time.perf_counter()
        await repo.rollup(END + timedelta(days=1))
        rollup_seconds = time.perf_counter() - started

        query_ms: dict[str, dict[str, float]] = {}
        points: dict[str, int] = {}
        for granularity in ("1m", "raw", "5m"):
            timings = []
            for attempt in range(repeat + 3):
                started = time.perf_counter()
                series = await repo.token_series(TOKEN, START, END, granularity, max_points=MINUTES)
                if attempt >= 3:  # the first three warm the caches
                    timings.append(time.perf_counter() - started)
            query_ms[granularity] = _stats(timings)
            points[granularity] = len(series)
        return BackendResult(
            backend=backend,
            rows=len(rows),
            batch=batch,
            write_seconds=write_seconds,
            rows_per_second=len(rows) / write_seconds,
            rollup_seconds=rollup_seconds,
            query_ms=query_ms,
            points=points,
        )
    finally:
        await repo.close()


async def run_backend(backend: str, args: argparse.Namespace) -> BackendResult:
    """Set up a throw-away database for ``backend``, measure it, remove it."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tokenpulse-bench-") as folder:
            url = f"sqlite+aiosqlite:///{folder}/history.db"
            return await measure(backend, url, args.repeat, args.batch)
    name = f"tokenpulse_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(args.postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = make_url(args.postgres_url).set(drivername="postgresql+asyncpg", database=name)
        return await measure(
            backend, url.render_as_string(hide_password=False), args.repeat, args.batch
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


HEADER = [
    "backend",
    "rows/s",
    "rollup s",
    "1m p50 ms",
    "1m p90 ms",
    "1m min ms",
    "raw p50 ms",
    "5m p50 ms",
]


def table_rows(results: list[BackendResult]) -> list[list[str]]:
    """One row of formatted numbers per backend."""
    return [
        [
            r.backend,
            f"{r.rows_per_second:,.0f}",
            f"{r.rollup_seconds:.2f}",
            f"{r.query_ms['1m']['p50']:.1f}",
            f"{r.query_ms['1m']['p90']:.1f}",
            f"{r.query_ms['1m']['min']:.1f}",
            f"{r.query_ms['raw']['p50']:.1f}",
            f"{r.query_ms['5m']['p50']:.1f}",
        ]
        for r in results
    ]


def format_table(results: list[BackendResult]) -> str:
    """A fixed-width table for the terminal."""
    rows = [HEADER, *table_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def markdown(results: list[BackendResult], run: dict[str, Any], json_path: str) -> str:
    """The BENCHMARKS.md section of this run."""
    machine = run["machine"]
    mem = machine["mem_total_kib"]
    packages = ", ".join(f"{k} {v}" for k, v in run["packages"].items() if v)
    commit = run["git"].get("commit")
    dirty = " with uncommitted changes" if run["git"].get("dirty") else ""
    title = f"## history — {run['started_at']}" + (f" — {run['label']}" if run["label"] else "")
    lines = [
        title,
        "",
        f"- **Commit:** `{commit}`{dirty}" if commit else "- **Commit:** unknown",
        f"- **Machine:** {machine['cpus_available']} of {machine['cpus_total']} CPUs "
        f"({machine['cpu_model'] or 'unknown model'}), "
        f"{'unknown RAM' if mem is None else f'{mem / 1024 / 1024:.1f} GiB RAM'}, "
        f"{machine['kernel']}, load average {machine['load_average_at_start'][0]:.2f} at start",
        f"- **Software:** {machine['python']}; {packages}",
        f"- **Data:** {results[0].rows} token snapshots (one a minute for 7 days), written "
        f"in batches of {results[0].batch} rows (one transaction each), then rolled up; "
        "queries over the 7 days, each a single Core select, "
        f"{run['repeat']} timed runs after 3 warm-ups, in this process",
        "- **Query:** `token_series(id, now-7d, now, g, max_points=10080)`: 1m = 10 080 "
        "points from the 1m rollup, raw = 10 080 rows, 5m = 2 016 points merged from 1m; "
        "the database runs on the same machine",
        f"- **JSON:** `{json_path}` (local; bench/results/ is not committed)",
        "",
        "Commands:",
        "",
        "```sh",
        run["command"],
        "```",
        "",
        "| " + " | ".join(HEADER) + " |",
        "| --- |" + " ---: |" * (len(HEADER) - 1),
        *("| " + " | ".join(row) + " |" for row in table_rows(results)),
        "",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per query")
    parser.add_argument("--batch", type=int, default=1000, help="rows per write transaction")
    parser.add_argument("--postgres-url", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--label", help="free text to tell this run apart in BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Run the benchmark; see the module docstring."""
    args = parse_args(argv)
    started = datetime.now(UTC)
    run: dict[str, Any] = {
        "benchmark": "history",
        "label": args.label,
        "started_at": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "command": shlex.join([".venv/bin/python", "bench/history.py", *argv]),
        "repeat": args.repeat,
        "git": git_revision(REPO_ROOT),
        "machine": machine_info(),
        "packages": package_versions(PACKAGES),
    }
    results: list[BackendResult] = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        try:
            results.append(asyncio.run(run_backend(backend, args)))
        except (OSError, asyncpg.PostgresError) as exc:
            print(f"{backend}: cannot run ({type(exc).__name__}: {exc})", file=sys.stderr)
            return 2
    print(format_table(results))
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    json_path = RESULTS_DIR / f"history-{stamp}.json"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    run["results"] = [asdict(r) for r in results]
    json_path.write_text(json.dumps(run, indent=2) + "\n")
    if not args.no_write:
        relative = json_path.relative_to(REPO_ROOT)
        append_markdown(BENCHMARKS_MD, markdown(results, run, str(relative)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
