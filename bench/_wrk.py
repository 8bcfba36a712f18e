"""Run wrk and read its results.

wrk prints a human report (rounded, with units) and, through
``bench/wrk_status.lua``, one ``TOKENPULSE_WRK {json}`` line with exact
microsecond latencies, error counts and responses per status code. Both are
parsed: the JSON line is preferred, the text report is the fallback when the
script did not run (and the source of wrk's own ``Requests/sec``).

The parsers are pure functions of wrk's output, so they can be checked against
recorded output without running wrk.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_status.lua"
RESULT_MARKER = "TOKENPULSE_WRK "
# Placeholder written into recorded commands instead of the real key.
API_KEY_PLACEHOLDER = "$API_KEY"
# wrk's run is bounded by -d; this is extra time for connecting and reporting.
WRK_EXIT_GRACE_S = 30.0

_UNIT_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME = r"([0-9]+(?:\.[0-9]+)?)(us|ms|s|m|h)"
_DISTRIBUTION_RE = re.compile(rf"^\s*([0-9]+(?:\.[0-9]+)?)%\s+{_TIME}\s*$")
_REQUESTS_RE = re.compile(rf"^\s*([0-9]+) requests in {_TIME}")
_RPS_RE = re.compile(r"^Requests/sec:\s+([0-9]+(?:\.[0-9]+)?)\s*$")
_SOCKET_RE = re.compile(
    r"^\s*Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)"
)
_NON_2XX_RE = re.compile(r"^\s*Non-2xx or 3xx responses: ([0-9]+)\s*$")
SOCKET_ERROR_KINDS = ("connect", "read", "write", "timeout")


class WrkError(RuntimeError):
    """wrk could not be run, failed, or printed nothing we can read."""


@dataclass(frozen=True)
class WrkOptions:
    """The load shape, identical for every target of one run."""

    threads: int
    connections: int
    duration_s: int


@dataclass
class WrkResult:
    """One wrk run, reduced to the numbers the benchmark reports."""

    requests: int
    duration_s: float
    requests_per_s: float
    latency_ms: dict[str, float | None]
    socket_errors: dict[str, int]
    # Responses that were not 2xx. From the status counts when the Lua script
    # ran; otherwise wrk's own "Non-2xx or 3xx" line, which in fact counts
    # statuses above 399 only.
    non_2xx: int
    status_counts: dict[str, int] = field(default_factory=dict)
    parsed_from: str = "lua"

    @property
    def socket_error_total(self) -> int:
        """All connect, read, write and timeout errors together."""
        return sum(self.socket_errors.values())


def wrk_command(url: str, options: WrkOptions, api_key: str, *, script: bool = True) -> list[str]:
    """The wrk argument vector for one target (the key is sent as X-API-Key)."""
    command = [
        "wrk",
        f"-t{options.threads}",
        f"-c{options.connections}",
        f"-d{options.duration_s}s",
        "--latency",
        "-H",
        f"X-API-Key: {api_key}",
    ]
    if script:
        command += ["-s", str(WRK_SCRIPT)]
    command.append(url)
    return command


def display_command(command: list[str], api_key: str, repo_root: Path) -> str:
    """The command as a shell line for the record: key hidden, paths repo-relative."""
    shown: list[str] = []
    for arg in command:
        hidden = arg.replace(api_key, API_KEY_PLACEHOLDER)
        if hidden.startswith(str(repo_root) + "/"):
            hidden = str(Path(hidden).relative_to(repo_root))
        shown.append(hidden)
    return shlex.join(shown)


def run_wrk(command: list[str], duration_s: int) -> str:
    """Run wrk to completion (bounded in time) and return its standard output."""
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=duration_s + WRK_EXIT_GRACE_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise WrkError("wrk is not installed (apt-get install wrk)") from exc
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish within {duration_s + WRK_EXIT_GRACE_S:.0f}s") from exc
    if completed.returncode != 0:
        raise WrkError(
            f"wrk exited {completed.returncode}: {completed.stderr.strip() or completed.stdout}"
        )
    return completed.stdout


def _to_ms(value: str, unit: str) -> float:
    return float(value) * _UNIT_TO_MS[unit]


def _parse_marker(output: str) -> dict[str, Any] | None:
    for line in output.splitlines():
        if line.startswith(RESULT_MARKER):
            try:
                data = json.loads(line[len(RESULT_MARKER) :])
            except json.JSONDecodeError as exc:
                raise WrkError(f"unreadable result line from wrk_status.lua: {line!r}") from exc
            if not isinstance(data, dict):
                raise WrkError(f"unexpected result line from wrk_status.lua: {line!r}")
            return data
    return None


def parse_wrk_text(output: str) -> dict[str, Any]:
    """Numbers from wrk's human report (``--latency`` adds the distribution)."""
    text: dict[str, Any] = {"percentiles_ms": {}}
    for line in output.splitlines():
        if match := _DISTRIBUTION_RE.match(line):
            text["percentiles_ms"][f"{float(match[1]):g}"] = _to_ms(match[2], match[3])
        elif match := _REQUESTS_RE.match(line):
            text["requests"] = int(match[1])
            text["duration_s"] = _to_ms(match[2], match[3]) / 1000.0
        elif match := _RPS_RE.match(line):
            text["requests_per_s"] = float(match[1])
        elif match := _SOCKET_RE.match(line):
            text["socket_errors"] = dict(
                zip(SOCKET_ERROR_KINDS, (int(g) for g in match.groups()), strict=True)
            )
        elif match := _NON_2XX_RE.match(line):
            text["non_2xx_or_3xx"] = int(match[1])
    return text


def _us_to_ms(value: Any) -> float | None:
    return None if value is None else float(value) / 1000.0


def parse_wrk_output(output: str) -> WrkResult:
    """Combine wrk's report and the Lua script's result line into a WrkResult."""
    text = parse_wrk_text(output)
    marker = _parse_marker(output)
    if "requests_per_s" not in text and marker is None:
        raise WrkError(f"no results in wrk output:\n{output}")

    if marker is not None:
        duration_s = float(marker["duration_us"]) / 1e6
        requests = int(marker["requests"])
        latency_us: dict[str, Any] = marker["latency_us"]
        latency = {
            key: _us_to_ms(latency_us.get(key))
            for key in ("p50", "p75", "p90", "p99", "p999", "mean", "max")
        }
        errors: dict[str, Any] = marker["errors"]
        socket_errors = {kind: int(errors.get(kind, 0)) for kind in SOCKET_ERROR_KINDS}
        status_counts = {str(code): int(n) for code, n in marker["status"].items()}
        non_2xx = sum(n for code, n in status_counts.items() if not code.startswith("2"))
        requests_per_s = text.get("requests_per_s") or (
            requests / duration_s if duration_s > 0 else 0.0
        )
        return WrkResult(
            requests=requests,
            duration_s=duration_s,
            requests_per_s=float(requests_per_s),
            latency_ms=latency,
            socket_errors=socket_errors,
            non_2xx=non_2xx,
            status_counts=status_counts,
            parsed_from="lua",
        )

    percentiles: dict[str, float] = text["percentiles_ms"]
    return WrkResult(
        requests=int(text.get("requests", 0)),
        duration_s=float(text.get("duration_s", 0.0)),
        requests_per_s=float(text["requests_per_s"]),
        latency_ms={
            "p50": percentiles.get("50"),
            "p75": percentiles.get("75"),
            "p90": percentiles.get("90"),
            "p99": percentiles.get("99"),
        },
        socket_errors=text.get("socket_errors", dict.fromkeys(SOCKET_ERROR_KINDS, 0)),
        non_2xx=int(text.get("non_2xx_or_3xx", 0)),
        parsed_from="text",
    )
