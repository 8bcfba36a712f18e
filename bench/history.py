"""History store benchmark (SPEC §12): rows written per second and the 7-day 1m query.

For each backend (a temporary SQLite file, and a fresh PostgreSQL database created on
``--postgres-url`` and dropped afterwards), in this process:

1. migrates the empty database with ``tokenpulse.store.history.migrate.upgrade``;
2. writes 7 days of one-minute token snapshots for one token (10 080 rows, with the digits
   of the recorded BTC chart) through ``HistoryRepository.write_tokens`` in batches of
   ``--batch`` rows, one transaction each, and reports rows written per second;
3. rolls them up (``rollup``: 10 080 minutes, 168 hours, 8 days);
4. times ``token_series(token, now - 7 days, now, "1m")`` — one select returning
   10 080 points as dicts — ``--repeat`` times after a warm-up, plus the same range raw
   (10 080 rows) and at 5m (derived from 1m at query time, 2 016 points): wall time, and the
   CPU time of this process (``time.process_time``: the Python side, aiosqlite's thread
   included, not PostgreSQL's server), which a loaded machine disturbs far less;
5. with ``--compare``, times the 1m query again, alternating run by run between
   ``token_series`` (rows read through the driver, ``store/history/_fetch.py``) and the
   same select through SQLAlchemy's result path (``Core``: TypeDecorator processors, rows
   as dicts: the read before the driver path), so both see the same machine load.

7 days at 1m is 10 080 points, above the API's 10 000-point limit (SPEC §6); the benchmark
passes ``max_points=10_080`` so it measures exactly the query SPEC §12 names.

    .venv/bin/python bench/history.py [--backends sqlite,postgresql] [--repeat 30]
        [--batch 1000] [--postgres-url postgresql://127.0.0.1:5432/test]
        [--label TEXT] [--no-write] [--compare] [--gc service|default]

The process runs its garbage collector as ``tokenpulse serve`` does (``tokenpulse._gc``:
start-up objects frozen, a young-generation threshold of 100 000) unless ``--gc default``:
with CPython's default threshold of 700, the ~100 000 objects of one 7-day read trigger
collections that the service never runs, a third of the query's time.

Prints a table, writes ``bench/results/history-<UTC timestamp>.json`` and, unless
``--no-write``, appends a section to ``BENCHMARKS.md``. Exit status 0 on success, 2 when a
backend could not be set up (e.g. no PostgreSQL; leave it out with ``--backends sqlite``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from _report import append_markdown, git_revision, machine_info, package_versions  # noqa: E402
from tokenpulse._gc import tune_gc  # noqa: E402
from tokenpulse.domain.tokens import TokenIdentity, TokenQuote, TokenSnapshot  # noqa: E402
from tokenpulse.store.history import migrate  # noqa: E402
from tokenpulse.store.history._series import TOKEN_ROLLUP_FIELDS  # noqa: E402
from tokenpulse.store.history.models import token_rollups  # noqa: E402
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
    query_cpu_ms: dict[str, dict[str, float]]  # the same, CPU time of this process
    points: dict[str, int]
    compare: dict[str, dict[str, dict[str, float]]]  # path -> wall/cpu -> min/p50/p90/max


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


async def core_series(repo: HistoryRepository) -> list[dict[str, Any]]:
    """The 1m query through SQLAlchemy's result path (the read before ``_fetch``)."""
    t = token_rollups
    stmt = (
        sa.select(t.c.ts, *(t.c[f] for f in TOKEN_ROLLUP_FIELDS))
        .where(t.c.token_id == TOKEN, t.c.bucket_seconds == 60, t.c.ts >= START, t.c.ts < END)
        .order_by(t.c.ts)
    )
    names = ("t", *TOKEN_ROLLUP_FIELDS)
    async with repo.engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [dict(zip(names, row, strict=True)) for row in rows]


async def compare_paths(repo: HistoryRepository, repeat: int) -> dict[str, Any]:
    """Wall and CPU times of both 1m reads, alternating run by run (same answer checked)."""

    async def driver() -> list[dict[str, Any]]:
        return await repo.token_series(TOKEN, START, END, "1m", max_points=MINUTES)

    paths = {"driver": driver, "core": lambda: core_series(repo)}
    first = {name: await read() for name, read in paths.items()}
    if first["driver"] != first["core"]:
        raise AssertionError("the two reads differ")
    samples: dict[str, tuple[list[float], list[float]]] = {p: ([], []) for p in paths}
    for _ in range(repeat):
        for name, read in paths.items():
            wall, cpu = time.perf_counter(), time.process_time()
            await read()
            samples[name][1].append(time.process_time() - cpu)
            samples[name][0].append(time.perf_counter() - wall)
    return {
        name: {"wall": _stats(walls), "cpu": _stats(cpus)}
        for name, (walls, cpus) in samples.items()
    }


async def measure(
    backend: str, url: str, repeat: int, batch: int, compare: bool = False
) -> BackendResult:
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
        query_cpu_ms: dict[str, dict[str, float]] = {}
        points: dict[str, int] = {}
        for granularity in ("1m", "raw", "5m"):
            timings, cpu_times = [], []
            for attempt in range(repeat + 3):
                started, cpu = time.perf_counter(), time.process_time()
                series = await repo.token_series(TOKEN, START, END, granularity, max_points=MINUTES)
                if attempt >= 3:  # the first three warm the caches
                    timings.append(time.perf_counter() - started)
                    cpu_times.append(time.process_time() - cpu)
            query_ms[granularity] = _stats(timings)
            query_cpu_ms[granularity] = _stats(cpu_times)
            points[granularity] = len(series)
        compared = await compare_paths(repo, repeat) if compare else {}
        return BackendResult(
            backend=backend,
            rows=len(rows),
            batch=batch,
            write_seconds=write_seconds,
            rows_per_second=len(rows) / write_seconds,
            rollup_seconds=rollup_seconds,
            query_ms=query_ms,
            query_cpu_ms=query_cpu_ms,
            points=points,
            compare=compared,
        )
    finally:
        await repo.close()


async def run_backend(backend: str, args: argparse.Namespace) -> BackendResult:
    """Set up a throw-away database for ``backend``, measure it, remove it."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tokenpulse-bench-") as folder:
            url = f"sqlite+aiosqlite:///{folder}/history.db"
            return await measure(backend, url, args.repeat, args.batch, args.compare)
    name = f"tokenpulse_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(args.postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = make_url(args.postgres_url).set(drivername="postgresql+asyncpg", database=name)
        rendered = url.render_as_string(hide_password=False)
        return await measure(backend, rendered, args.repeat, args.batch, args.compare)
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
    "1m CPU p50 ms",
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
            f"{r.query_cpu_ms['1m']['p50']:.1f}",
            f"{r.query_ms['raw']['p50']:.1f}",
            f"{r.query_ms['5m']['p50']:.1f}",
        ]
        for r in results
    ]


def compare_lines(results: list[BackendResult]) -> list[str]:
    """One line per backend and read path of ``--compare`` (p50 and min, wall and CPU)."""
    return [
        f"{r.backend} 1m {path}: wall p50 {t['wall']['p50']:.1f} ms (min {t['wall']['min']:.1f}),"
        f" CPU p50 {t['cpu']['p50']:.1f} ms (min {t['cpu']['min']:.1f})"
        for r in results
        for path, t in r.compare.items()
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
        "queries over the 7 days, each a single select, "
        f"{run['repeat']} timed runs after 3 warm-ups, in this process; garbage collector "
        f"{run['gc']}",
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
        *(f"- {line}" for line in compare_lines(results)),
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
    parser.add_argument(
        "--gc",
        choices=("service", "default"),
        default="service",
        help="the garbage collector as `tokenpulse serve` runs it (frozen start-up objects, "
        "young threshold 100 000), or CPython's defaults",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also time the 1m query through SQLAlchemy's result path, alternating",
    )
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
    if args.gc == "service":
        tune_gc()
    run["gc"] = (
        f"as `tokenpulse serve`: thresholds {'/'.join(map(str, gc.get_threshold()))}, start-up "
        "objects frozen"
        if args.gc == "service"
        else f"CPython's defaults: thresholds {'/'.join(map(str, gc.get_threshold()))}"
    )
    results: list[BackendResult] = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        try:
            results.append(asyncio.run(run_backend(backend, args)))
        except (OSError, asyncpg.PostgresError) as exc:
            print(f"{backend}: cannot run ({type(exc).__name__}: {exc})", file=sys.stderr)
            return 2
    print(format_table(results))
    for line in compare_lines(results):
        print(line)
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
