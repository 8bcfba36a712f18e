"""Fixtures for the edge's tests: an HTTP client, and the real `tokenpulse serve` process
(the server as it runs in production: uvloop, httptools, configured logging)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

OFFLINE = {"kraken_ws_url": "ws://127.0.0.1:1/v2", "kraken_rest_url": "http://127.0.0.1:1"}
KEY = "tp_test_key_0123456789"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@dataclass
class ServedProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def rss_kib(self) -> int:
        """The server's resident memory now."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """The log once it contains ``text`` (polled, with a deadline)."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged within {timeout}s:\n{log[-2000:]}")
            time.sleep(0.02)
        return log


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def serve_process(tmp_path: Path, **env: str) -> Iterator[ServedProcess]:
    """`python -m tokenpulse serve` on the bundled replay, ready (``/health`` 200) on entry."""
    port = _free_port()
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # The tree under test, not whatever the interpreter would import by default.
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
        "SOURCES": "replay",
        "PORT": str(port),
        "LOG_LEVEL": "info",
        "SHUTDOWN_TIMEOUT": "5s",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        **env,
    }
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log_file:  # a file: an unread pipe would block the server
        process = subprocess.Popen(
            [sys.executable, "-m", "tokenpulse", "serve"],
            env=environment,
            cwd=tmp_path,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        served = ServedProcess(process, f"http://127.0.0.1:{port}", port, log_path)
        try:
            deadline = time.monotonic() + 20
            with httpx.Client(timeout=2) as client:
                while True:
                    if process.poll() is not None:
                        raise AssertionError(f"server exited:\n{served.log()[-3000:]}")
                    with contextlib.suppress(httpx.TransportError):
                        if client.get(f"{served.base_url}/health").status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise AssertionError("server not ready within 20 s")
                    time.sleep(0.05)
            yield served
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
