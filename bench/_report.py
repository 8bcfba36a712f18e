"""What a benchmark run records: the machine and revision it ran on, the
console table, the JSON result file and the section appended to BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from _wrk import WrkResult

# Packages whose versions change what the numbers mean.
REPORTED_PACKAGES = (
    "tokenpulse",
    "uvicorn",
    "fastapi",
    "starlette",
    "pydantic",
    "uvloop",
    "httptools",
)
GIT_TIMEOUT_S = 10.0
_SECRET_NAME_RE = re.compile(r"KEY|PASSWORD|SECRET|TOKEN", re.IGNORECASE)
_URL_PASSWORD_RE = re.compile(r"(://[^:/@]+:)[^@]+@")


@dataclass
class TargetResult:
    """One endpoint's measurements."""

    name: str
    path: str
    description: str
    url: str
    command: str
    wrk: WrkResult
    rss_after_kib: int | None
    rss_tree_after_kib: int | None
    # Server CPU time (user + system) per answered request during the recorded load: unlike
    # req/s it hardly moves when another process shares the cores, so two configurations can
    # be compared on a busy machine.
    cpu_us_per_request: float | None = None


@dataclass
class RunRecord:
    """Everything one run of a benchmark script measured, and where."""

    benchmark: str
    label: str | None
    started_at: str
    finished_at: str | None
    git: dict[str, Any]
    machine: dict[str, Any]
    settings: dict[str, Any]
    server: dict[str, Any]
    notes: list[str]
    commands: list[str]
    results: list[TargetResult] = field(default_factory=list)


def mask_value(name: str, value: str) -> str:
    """Hide secrets: whole values of secret-named variables, passwords inside URLs."""
    if _SECRET_NAME_RE.search(name):
        return "***"
    return _URL_PASSWORD_RE.sub(r"\1***@", value)


def _run_text(command: list[str], cwd: Path) -> str | None:
    try:
        completed = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def git_revision(repo_root: Path) -> dict[str, Any]:
    """Short commit and whether tracked files differ from it; None where git cannot say.

    Read-only: --no-optional-locks keeps `git status` from refreshing the index.
    """
    commit = _run_text(["git", "rev-parse", "--short", "HEAD"], repo_root)
    status = _run_text(
        ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"], repo_root
    )
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _cpu_model() -> str | None:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return None


def _mem_total_kib() -> int | None:
    try:
        meminfo = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return None


def _wrk_version() -> str | None:
    # `wrk -v` prints "wrk <version> [engine] Copyright ..." then usage, and exits 1.
    try:
        completed = subprocess.run(
            ["wrk", "-v"], capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = (completed.stdout or completed.stderr).splitlines()[:1]
    return first[0].split(" Copyright")[0].strip() if first else None


def package_versions(names: tuple[str, ...] = REPORTED_PACKAGES) -> dict[str, str | None]:
    """Installed versions in this interpreter (the one that runs the server)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_info() -> dict[str, Any]:
    """The facts about this machine that a reader needs to compare runs."""
    return {
        "cpus_available": len(os.sched_getaffinity(0)),
        "cpus_total": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_kib": _mem_total_kib(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": package_versions(),
        "wrk": _wrk_version(),
        "load_average_at_start": list(os.getloadavg()),
    }


def _mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _statuses(counts: dict[str, int]) -> str:
    return " ".join(f"{code}:{n}" for code, n in sorted(counts.items())) or "-"


def _table_rows(results: list[TargetResult]) -> list[list[str]]:
    rows = []
    for result in results:
        wrk = result.wrk
        rows.append(
            [
                result.name,
                f"{wrk.requests_per_s:,.0f}",
                _ms(wrk.latency_ms.get("p50")),
                _ms(wrk.latency_ms.get("p90")),
                _ms(wrk.latency_ms.get("p99")),
                str(wrk.non_2xx),
                str(wrk.socket_error_total),
                _statuses(wrk.status_counts),
                _mib(result.rss_after_kib),
                "-" if result.cpu_us_per_request is None else f"{result.cpu_us_per_request:.1f}",
            ]
        )
    return rows


TABLE_HEADER = [
    "target",
    "req/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "non-2xx",
    "sock err",
    "responses",
    "RSS MiB",
    "CPU µs/req",
]
_RIGHT_ALIGNED = {1, 2, 3, 4, 5, 6, 8, 9}


def format_table(results: list[TargetResult]) -> str:
    """A fixed-width table for the terminal."""
    rows = [TABLE_HEADER, *_table_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEADER))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in _RIGHT_ALIGNED else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _markdown_table(results: list[TargetResult]) -> str:
    header = [
        "target",
        "request",
        *TABLE_HEADER[1:-2],
        "server RSS after (MiB)",
        "server CPU µs/request",
    ]
    align = ["---", "---"] + ["---:" if i in _RIGHT_ALIGNED else "---" for i in range(1, 10)]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    for result, row in zip(results, _table_rows(results), strict=True):
        cells = [row[0], f"`GET {result.path}`", *row[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _revision_text(git: dict[str, Any]) -> str:
    if git.get("commit") is None:
        return "unknown (`git rev-parse --short HEAD` failed: no commit yet, or not a git tree)"
    dirty = git.get("dirty")
    suffix = {True: " with uncommitted changes", False: "", None: " (tree state unknown)"}[dirty]
    return f"`{git['commit']}`{suffix}"


def markdown_section(run: RunRecord, json_path: str) -> str:
    """The BENCHMARKS.md section for one run."""
    machine = run.machine
    packages = ", ".join(
        f"{name} {version}" for name, version in machine["packages"].items() if version
    )
    mem = machine["mem_total_kib"]
    mem_text = "unknown RAM" if mem is None else f"{mem / 1024 / 1024:.1f} GiB RAM"
    server = run.server
    shutdown = server["shutdown"]
    env_text = ", ".join(f"`{k}={v}`" for k, v in server["env"].items())
    settings = run.settings
    title = f"## {run.benchmark} — {run.started_at}" + (f" — {run.label}" if run.label else "")
    parts = [
        title,
        "",
        f"- **Commit:** {_revision_text(run.git)}",
        f"- **Machine:** {machine['cpus_available']} of {machine['cpus_total']} CPUs "
        f"({machine['cpu_model'] or 'unknown model'}), {mem_text}, {machine['kernel']}, "
        f"load average {machine['load_average_at_start'][0]:.2f} at start",
        f"- **Software:** {machine['python']}; {packages}; {machine['wrk'] or 'wrk'}",
        f"- **Server:** `{server['command']}` in a temporary directory, ready after "
        f"{server['time_to_ready_s']:.1f} s, RSS {_mib(server['rss_ready_kib'])} MiB "
        f"when ready; environment {env_text}",
        f"- **Load:** wrk, {settings['threads']} threads, {settings['connections']} "
        f"connections, {settings['duration_s']} s per target after a "
        f"{settings['warmup_s']} s warm-up; wrk and the server share this machine's CPUs",
        *(f"- {note}" for note in run.notes),
        f"- **Shutdown:** {shutdown['description']}",
        f"- **JSON:** `{json_path}` (local; bench/results/ is not committed)",
        "",
        "Commands:",
        "",
        "```sh",
        *run.commands,
        "```",
        "",
        _markdown_table(run.results),
        "",
    ]
    return "\n".join(parts)


def append_markdown(path: Path, section: str) -> None:
    """Append a section, separated from what is already there by one blank line."""
    existing = path.read_text() if path.exists() else ""
    separator = "" if not existing or existing.endswith("\n\n") else "\n"
    if existing and not existing.endswith("\n"):
        separator = "\n\n"
    with path.open("a") as handle:
        handle.write(separator + section)


def write_json(path: Path, run: RunRecord) -> None:
    """Write the run as indented JSON, creating the results folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(run), indent=2) + "\n")
