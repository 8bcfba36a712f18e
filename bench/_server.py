"""The service under test: start it in its own process, wait until it serves,
read its memory, and stop it with SIGTERM the way an orchestrator would.

Everything here talks to loopback only and every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

LOOPBACK = "127.0.0.1"
# The only variables the server inherits from the caller's environment: the
# rest of its configuration is set explicitly, so a stray CACHE_BACKEND or
# DATABASE_URL in the shell cannot change what is measured.
PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PYTHONPATH")
READY_POLL_INTERVAL_S = 0.2
PROBE_TIMEOUT_S = 2.0
MAX_PROBE_RESPONSE_BYTES = 64 * 1024
LOG_TAIL_LINES = 40
# Statuses that waiting longer will not fix.
FATAL_READY_STATUSES = {401: "refused the API key", 403: "refused the API key"}


class ServerError(RuntimeError):
    """The server did not start, did not become ready, or died."""


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(
    port: int, path: str, headers: Mapping[str, str], timeout_s: float
) -> tuple[int, bytes]:
    """One GET over a fresh loopback connection; returns (status, body).

    A raw socket instead of urllib: this package's entry script is named
    ``http.py``, which shadows the standard library's ``http`` package that
    urllib and http.client import.
    """
    lines = [f"GET {path} HTTP/1.1", f"Host: {LOOPBACK}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    chunks: list[bytes] = []
    received = 0
    with socket.create_connection((LOOPBACK, port), timeout=timeout_s) as sock:
        sock.sendall(request)
        while received < MAX_PROBE_RESPONSE_BYTES:
            chunk = sock.recv(8192)
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
    response = b"".join(chunks)
    head, _, body = response.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/"):
        raise ServerError(f"not an HTTP response on port {port}: {response[:200]!r}")
    return int(status_line[1]), body


@dataclass(frozen=True)
class ShutdownReport:
    """How the server reacted to SIGTERM."""

    exit_code: int | None
    exited_within_timeout: bool
    seconds: float
    timeout_s: float
    note: str = ""

    @property
    def clean(self) -> bool:
        """Exited by itself, in time, with status 0 (SPEC §13)."""
        return self.exited_within_timeout and self.exit_code == 0

    def describe(self) -> str:
        """One line for people: what SIGTERM led to."""
        limit = f"limit {self.timeout_s:.0f} s"
        if self.note:
            status = "" if self.exit_code is None else f"exit status {self.exit_code}, "
            return f"{self.note} ({status}{limit})"
        after = f"after {self.seconds:.1f} s"
        if self.exit_code is not None and self.exit_code < 0:
            name = signal.Signals(-self.exit_code).name
            return f"SIGTERM → ended by {name} {after}, not by exiting 0 ({limit})"
        return f"SIGTERM → exit {self.exit_code} {after} ({limit})"


def _parent_pids() -> dict[int, int]:
    """pid -> parent pid for every process visible in /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        # "pid (comm) state ppid ...": comm may itself contain spaces and ")".
        fields = stat.rpartition(")")[2].split()
        if len(fields) >= 2:
            parents[int(entry.name)] = int(fields[1])
    return parents


def _vm_rss_kib(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])  # "VmRSS:   123456 kB"
    return None


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process, all its threads (``/proc/PID/stat``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces) start at field 3 (state).
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> set[int]:
    """``pid`` and every process descended from it."""
    parents = _parent_pids()
    tree = {pid}
    grew = True
    while grew:
        children = {child for child, parent in parents.items() if parent in tree}
        grew = not children <= tree
        tree |= children
    return tree


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds used by ``pid`` and its descendants (those still running)."""
    times = [t for p in process_tree(pid) if (t := _cpu_seconds(p)) is not None]
    return sum(times) if times else None


class ServerProcess:
    """``tokenpulse serve`` (or a stand-in) running in its own session."""

    def __init__(
        self, command: Sequence[str], env: Mapping[str, str], cwd: Path, log_path: Path
    ) -> None:
        self.command = list(command)
        self.env = dict(env)
        self.cwd = cwd
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0

    @property
    def pid(self) -> int:
        """The server's process id (it must have been started)."""
        return self._running().pid

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise ServerError("server not started")
        return self._process

    def start(self) -> None:
        """Launch the server; its output goes to the log file, not a pipe that could fill."""
        with self.log_path.open("wb") as log:
            # start_new_session: a Ctrl-C in the terminal reaches only this
            # harness, which then stops the server itself, by SIGTERM.
            try:
                self._process = subprocess.Popen(
                    self.command,
                    env=self.env,
                    cwd=self.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ServerError(f"cannot start {self.command[0]}: {exc}") from exc
        self._started_at = time.monotonic()

    def wait_ready(
        self, port: int, path: str, headers: Mapping[str, str], timeout_s: float
    ) -> float:
        """Poll ``GET path`` until it answers 200; return seconds since start."""
        process = self._running()
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while time.monotonic() < deadline:
            if (code := process.poll()) is not None:
                raise ServerError(f"server exited with status {code} before it was ready")
            try:
                status, body = http_get(port, path, headers, PROBE_TIMEOUT_S)
            except OSError as exc:
                last = f"connection: {exc}"
            else:
                if status == 200:
                    return time.monotonic() - self._started_at
                last = f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}"
                if status in FATAL_READY_STATUSES:
                    raise ServerError(
                        f"GET {path} answered {status}: the server "
                        f"{FATAL_READY_STATUSES[status]} ({last})"
                    )
            time.sleep(READY_POLL_INTERVAL_S)
        raise ServerError(f"GET {path} did not answer 200 within {timeout_s:.0f}s (last: {last})")

    def rss_kib(self) -> tuple[int | None, int | None]:
        """Resident memory (VmRSS, KiB) of the server and of it plus its children."""
        pid = self.pid
        own = _vm_rss_kib(pid)
        sizes = [size for p in process_tree(pid) if (size := _vm_rss_kib(p)) is not None]
        return own, (sum(sizes) if sizes else None)

    def cpu_seconds(self) -> float | None:
        """CPU seconds the server has used so far (user + system, every thread and child)."""
        return tree_cpu_seconds(self.pid)

    def stop(self, timeout_s: float) -> ShutdownReport:
        """SIGTERM, then wait up to timeout_s; SIGKILL the session if it does not exit."""
        process = self._running()
        if (code := process.poll()) is not None:
            return ShutdownReport(
                code, False, 0.0, timeout_s, "the server had already exited before SIGTERM"
            )
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return ShutdownReport(
                None,
                False,
                time.monotonic() - began,
                timeout_s,
                "SIGTERM → no exit in time, killed with SIGKILL",
            )
        return ShutdownReport(code, True, time.monotonic() - began, timeout_s)

    def kill(self) -> None:
        """SIGKILL the server's whole session (only processes this harness started)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines the server wrote, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
