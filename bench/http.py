"""REST hot-path benchmark (SPEC §12).

Starts ``tokenpulse serve`` in its own process on a free loopback port with
the replay source (recorded data, no network), waits until it serves
``GET /api/v1/ltp?pair=BTC/USD``, then drives each target in ``TARGETS`` with
wrk from another process. Prints a table, writes
``bench/results/http-<UTC timestamp>.json`` and, unless ``--no-write``, appends
a section to ``BENCHMARKS.md``. Finally stops the server with SIGTERM and
reports whether it exited 0 in time.

    .venv/bin/python bench/http.py [--duration 15] [--connections 64]
        [--threads 2] [--warmup 2] [--label TEXT] [--target NAME] [--no-write]

Exit status: 0 all targets answered 2xx without socket errors and the server
shut down cleanly; 1 results were recorded but something of that was not so;
2 the benchmark could not run (no wrk, server not ready, wrk failed).

This file's name shadows the standard library's ``http`` package for anything
imported from this folder: use raw sockets (``_server.http_get``), not urllib.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from _nginx import Nginx
from _report import (
    RunRecord,
    TargetResult,
    append_markdown,
    format_table,
    git_revision,
    machine_info,
    markdown_section,
    mask_value,
    write_json,
)
from _server import LOOPBACK, PASSTHROUGH_ENV, ServerError, ServerProcess, free_port, http_get
from _wrk import (
    WrkError,
    WrkOptions,
    display_command,
    parse_wrk_output,
    run_wrk,
    wrk_command,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"

READY_PATH = "/api/v1/ltp?pair=BTC/USD"
DEFAULT_READY_TIMEOUT_S = 60.0
# The server's own drain bound, and how long the harness waits for the
# process to exit after SIGTERM (the bound plus interpreter teardown).
SERVER_SHUTDOWN_TIMEOUT = "10s"
SHUTDOWN_WAIT_S = 20.0
# Large enough that the single loopback client is never throttled while every
# request still goes through the limiter: a billion tokens, refilled at a
# billion per second, far above what one client here can send.
UNTHROTTLED = "1000000000"

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_CANNOT_RUN = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Target:
    """One endpoint to load: a name for the table, the request path, what it shows."""

    name: str
    path: str
    description: str


# Add a benchmark by adding a line (SPEC §12 also names /api/v1/tokens?limit=100).
TARGETS: tuple[Target, ...] = (
    Target("ltp", "/api/v1/ltp?pair=BTC/USD", "LTP hot path: one pair from the cache"),
    Target("health", "/health", "liveness, served by the edge middleware: no cache, no database"),
    Target(
        "tokens",
        "/api/v1/tokens?limit=100",
        "100 tokens: cached order per query shape, ready-made JSON per token, age spliced in",
    ),
)


def server_environment(
    port: int, api_key: str, data_dir: Path, overrides: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """(the server's full environment, the part this harness set explicitly)."""
    explicit = {
        "SOURCES": "replay",
        "AUTH_ENABLED": "true",
        "AUTH_API_KEY": api_key,
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_CAPACITY": UNTHROTTLED,
        "RATE_LIMIT_REFILL_RATE": UNTHROTTLED,
        "LOG_LEVEL": "warning",
        "DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / 'bench.db'}",
        "HOST": LOOPBACK,
        "PORT": str(port),
        "SHUTDOWN_TIMEOUT": SERVER_SHUTDOWN_TIMEOUT,
    }
    explicit.update(overrides)
    inherited = {name: os.environ[name] for name in PASSTHROUGH_ENV if name in os.environ}
    return {**inherited, **explicit}, explicit


#: A stored key's tier bucket, sized like the RATE_LIMIT_* one: it runs, it never throttles.
STORED_KEY_ENV = {
    "TIER_ENTERPRISE_CAPACITY": UNTHROTTLED,
    "TIER_ENTERPRISE_REFILL_RATE": UNTHROTTLED,
}


def create_stored_key(env: dict[str, str], data_dir: Path) -> str:
    """A new enterprise reader key in the bench database, from the CLI an operator uses."""
    command = [sys.executable, "-m", "tokenpulse", "keys", "create", "--name", "bench"]
    command += ["--tier", "enterprise", "--role", "reader", "--json"]
    done = subprocess.run(
        command, env=env, cwd=data_dir, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise ServerError(f"tokenpulse keys create failed: {done.stderr.strip()}")
    key: str = json.loads(done.stdout)["key"]
    return key


def rate_limit_note(env: dict[str, str]) -> str:
    """How the rate limiter was configured, in words for the output."""
    if env.get("RATE_LIMIT_ENABLED", "").lower() != "true":
        return f"**Rate limiter:** RATE_LIMIT_ENABLED={env.get('RATE_LIMIT_ENABLED')}"
    if env.get("RATE_LIMIT_CAPACITY") == env.get("RATE_LIMIT_REFILL_RATE") == UNTHROTTLED:
        return (
            "**Rate limiter:** enabled with capacity 1e9 and refill rate 1e9/s, so it runs "
            "on every request but never throttles the single loopback client"
        )
    return (
        f"**Rate limiter:** enabled, capacity {env.get('RATE_LIMIT_CAPACITY')}, refill "
        f"{env.get('RATE_LIMIT_REFILL_RATE')}/s: 429s below are the limiter working"
    )


def _relative(path: str) -> str:
    resolved = Path(path).absolute()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else path


def _key_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    if name in {"HOST", "PORT"}:
        raise argparse.ArgumentTypeError(f"{name} is chosen by the harness")
    return name, value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="bench/http.py", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--duration", type=_positive, default=15, help="seconds per target")
    parser.add_argument("--connections", type=_positive, default=64, help="wrk -c")
    parser.add_argument("--threads", type=_positive, default=2, help="wrk -t")
    parser.add_argument(
        "--warmup", type=_non_negative, default=2, help="unrecorded seconds before each target"
    )
    parser.add_argument("--label", help="free text to tell this run apart in BENCHMARKS.md")
    parser.add_argument(
        "--target",
        action="append",
        choices=[t.name for t in TARGETS],
        help="run only this target (repeatable); default all",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        type=_key_value,
        default=[],
        metavar="NAME=VALUE",
        help="extra server environment, e.g. CACHE_BACKEND=redis (repeatable)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=DEFAULT_READY_TIMEOUT_S,
        help="seconds to wait for the server to answer 200",
    )
    parser.add_argument(
        "--compare-nginx",
        action="store_true",
        help="also serve the LTP answer's bytes from nginx (one worker) and load it the same way",
    )
    parser.add_argument(
        "--no-write", action="store_true", help="do not append to BENCHMARKS.md (JSON is written)"
    )
    parser.add_argument(
        "--stored-key",
        action="store_true",
        help="call with a key from `tokenpulse keys create` (enterprise tier, its bucket 1e9) "
        "instead of the bootstrap AUTH_API_KEY",
    )
    # For testing the harness itself against a stand-in server: a command line
    # in which {port} is replaced; it gets the same environment.
    parser.add_argument("--server-cmd", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads (wrk needs one per thread)")
    return args


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _nginx_result(
    tmp_dir: Path, body: bytes, args: argparse.Namespace, api_key: str, commands: list[str]
) -> TargetResult:
    """nginx (one worker) serving ``body`` at the LTP path, loaded like the LTP target."""
    port = free_port()
    url = f"http://{LOOPBACK}:{port}{READY_PATH}"
    directory = tmp_dir / "nginx"
    directory.mkdir()
    with Nginx(directory, port, READY_PATH.split("?", maxsplit=1)[0], body) as nginx:
        if args.warmup:
            run_wrk(
                wrk_command(url, WrkOptions(args.threads, args.connections, args.warmup), api_key),
                args.warmup,
            )
        command = wrk_command(
            url, WrkOptions(args.threads, args.connections, args.duration), api_key
        )
        shown = display_command(command, api_key, REPO_ROOT)
        commands.append("# nginx, one worker, serving the same LTP body as a file")
        commands.append(shown)
        _log(f"nginx: GET {READY_PATH} for {args.duration}s")
        cpu_before = nginx.cpu_seconds()
        wrk = parse_wrk_output(run_wrk(command, args.duration))
        cpu_after = nginx.cpu_seconds()
    return TargetResult(
        "nginx",
        READY_PATH,
        "nginx 1.x, one worker, the same body from a file: the yardstick",
        url,
        shown,
        wrk,
        None,
        None,
        _cpu_per_request(cpu_before, cpu_after, wrk.requests),
    )


def _nginx_notes(results: list[TargetResult]) -> list[str]:
    by_name = {result.name: result for result in results}
    if "nginx" not in by_name or "ltp" not in by_name:
        return []
    ratio = by_name["ltp"].wrk.requests_per_s / max(by_name["nginx"].wrk.requests_per_s, 1.0)
    return [f"**LTP vs nginx:** {ratio:.2f} × nginx's requests/s in the same run"]


def _cpu_per_request(before: float | None, after: float | None, requests: int) -> float | None:
    """Server CPU microseconds per request over the recorded load."""
    if before is None or after is None or requests <= 0:
        return None
    return round((after - before) * 1e6 / requests, 1)


def _problems(results: list[TargetResult]) -> list[str]:
    problems = []
    for result in results:
        if result.wrk.non_2xx:
            problems.append(f"{result.name}: {result.wrk.non_2xx} non-2xx responses")
        if result.wrk.socket_error_total:
            problems.append(f"{result.name}: socket errors {result.wrk.socket_errors}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the process exit status."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        _log("wrk is not installed (Debian: apt-get install wrk)")
        return EXIT_CANNOT_RUN
    targets = [t for t in TARGETS if not args.target or t.name in args.target]
    started = datetime.now(UTC)
    machine = machine_info()  # before the load, so the load average means something
    git = git_revision(REPO_ROOT)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    api_key = secrets.token_urlsafe(32)
    port = free_port()
    load = WrkOptions(args.threads, args.connections, args.duration)
    warmup = WrkOptions(args.threads, args.connections, args.warmup)
    headers = {"X-API-Key": api_key}

    if args.server_cmd:
        server_cmd = shlex.split(args.server_cmd.format(port=port))
        if "/" in server_cmd[0]:  # the server runs in a temporary directory
            server_cmd[0] = str(Path(server_cmd[0]).absolute())
        server_shown = shlex.join([_relative(server_cmd[0]), *server_cmd[1:]])
    else:
        server_cmd = [sys.executable, "-m", "tokenpulse", "serve"]
        server_shown = shlex.join([_relative(sys.executable), "-m", "tokenpulse", "serve"])
    commands = [shlex.join([_relative(sys.executable), _relative(sys.argv[0]), *argv])]
    results: list[TargetResult] = []

    with tempfile.TemporaryDirectory(prefix="tokenpulse-bench-") as tmp:
        tmp_dir = Path(tmp)
        overrides = dict(args.server_env)
        if args.stored_key:
            overrides = {
                **STORED_KEY_ENV,
                "AUTH_KEY_PEPPER": secrets.token_urlsafe(32),
                **overrides,
            }
        env, explicit_env = server_environment(port, api_key, tmp_dir, overrides)
        if args.stored_key:
            api_key = create_stored_key(env, tmp_dir)
            headers = {"X-API-Key": api_key}
            _log("calling with a stored key (tokenpulse keys create --tier enterprise)")
        server = ServerProcess(server_cmd, env, tmp_dir, tmp_dir / "server.log")
        _log(f"starting {server_shown} on {LOOPBACK}:{port}")
        try:
            with server:
                ready_s = server.wait_ready(port, READY_PATH, headers, args.ready_timeout)
                rss_ready, rss_tree_ready = server.rss_kib()
                _log(f"ready after {ready_s:.1f}s (pid {server.pid})")
                for target in targets:
                    url = f"http://{LOOPBACK}:{port}{target.path}"
                    if args.warmup:
                        command = wrk_command(url, warmup, api_key, script=False)
                        commands.append("# warm-up (not recorded)")
                        commands.append(display_command(command, api_key, REPO_ROOT))
                        run_wrk(command, args.warmup)
                    command = wrk_command(url, load, api_key)
                    shown = display_command(command, api_key, REPO_ROOT)
                    commands.append(shown)
                    _log(f"{target.name}: GET {target.path} for {args.duration}s")
                    cpu_before = server.cpu_seconds()
                    wrk = parse_wrk_output(run_wrk(command, args.duration))
                    cpu_after = server.cpu_seconds()
                    rss_after, rss_tree_after = server.rss_kib()
                    results.append(
                        TargetResult(
                            target.name,
                            target.path,
                            target.description,
                            url,
                            shown,
                            wrk,
                            rss_after,
                            rss_tree_after,
                            _cpu_per_request(cpu_before, cpu_after, wrk.requests),
                        )
                    )
                nginx_body = None
                if args.compare_nginx:
                    _, nginx_body = http_get(port, READY_PATH, headers, 5.0)
                _log("stopping the server with SIGTERM")
                shutdown = server.stop(SHUTDOWN_WAIT_S)
            if nginx_body is not None:  # after tokenpulse stopped: the cores are nginx's
                results.append(_nginx_result(tmp_dir, nginx_body, args, api_key, commands))
        except (ServerError, WrkError) as exc:
            _log(f"error: {exc}")
            if tail := server.log_tail():
                _log(f"last lines of the server's output:\n{tail}")
            return EXIT_CANNOT_RUN
        except KeyboardInterrupt:
            _log("interrupted; server stopped")
            return EXIT_INTERRUPTED
        server_log_tail = server.log_tail()

    json_path = RESULTS_DIR / f"http-{stamp}.json"
    record = RunRecord(
        benchmark="http",
        label=args.label,
        started_at=started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        finished_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        git=git,
        machine=machine,
        settings={
            "duration_s": args.duration,
            "connections": args.connections,
            "threads": args.threads,
            "warmup_s": args.warmup,
            "ready_path": READY_PATH,
        },
        server={
            "command": server_shown,
            "env": {name: mask_value(name, value) for name, value in explicit_env.items()},
            "time_to_ready_s": round(ready_s, 3),
            "rss_ready_kib": rss_ready,
            "rss_tree_ready_kib": rss_tree_ready,
            "shutdown": {
                **asdict(shutdown),
                "seconds": round(shutdown.seconds, 3),
                "clean": shutdown.clean,
                "description": shutdown.describe(),
            },
        },
        notes=[rate_limit_note(explicit_env), *_nginx_notes(results)]
        + (
            [
                "**Key:** a stored key (`tokenpulse keys create --tier enterprise`): resolved "
                "from the in-process key cache (HMAC-SHA-256 with AUTH_KEY_PEPPER), the "
                "enterprise tier's bucket (capacity and refill 1e9)"
            ]
            if args.stored_key
            else ["**Key:** the bootstrap AUTH_API_KEY (static key)"]
        ),
        commands=commands,
        results=results,
    )
    write_json(json_path, record)

    print()
    print(format_table(results))
    print()
    for note in record.notes:
        print(note.replace("**", ""))
    print(f"Shutdown: {shutdown.describe()}")
    print(f"JSON: {_relative(str(json_path))}")
    if not args.no_write:
        append_markdown(BENCHMARKS_MD, markdown_section(record, _relative(str(json_path))))
        print(f"Appended to {_relative(str(BENCHMARKS_MD))}")

    problems = _problems(results)
    if not shutdown.clean:
        problems.append(f"server did not shut down cleanly: {shutdown.describe()}")
        if server_log_tail:
            _log(f"last lines of the server's output:\n{server_log_tail}")
    for problem in problems:
        _log(f"warning: {problem}")
    return EXIT_PROBLEMS if problems else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
