"""API-layer fixtures: the real app in process behind ``httpx.ASGITransport`` (built by
:func:`tests.helpers.build_app` on in-memory adapters and the replay source, here playing only
the recorded Kraken snapshots, so every pair has one known value), and the real
`tokenpulse serve` process (the server as it runs in production: uvloop, httptools,
configured logging) for the edge's tests."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes._loopback import free_port
from tests.fakes.kraken_ws import RECORDED_V2_FRAMES
from tests.helpers import asgi_client, build_app, container_of, in_memory_settings, wait_for

PAIRS = ["BTC/USD", "ETH/USD", "LTC/USD", "XRP/USD"]


def recorded_snapshots(folder: Path) -> Path:
    """A replay file of the recorded snapshot frames only (the values never change)."""
    lines = [
        line
        for line in RECORDED_V2_FRAMES.read_text(encoding="utf-8").splitlines()
        if json.loads(line).get("type") == "snapshot"
    ]
    path = folder / "snapshots.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return build_app(in_memory_settings(replay_path=str(recorded_snapshots(tmp_path))))


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the started app, once every pair and some tokens are served."""
    container = container_of(app)
    async with asgi_client(app) as http:
        # Watched on the services, not polled over HTTP: polling would spend rate-limit tokens.
        await wait_for(
            lambda: len(container.prices.views()) == len(PAIRS) and len(container.tokens) > 0,
            10,
            message="the replay to serve every pair and some tokens",
        )
        yield http


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


@contextlib.contextmanager
def serve_process(tmp_path: Path, **env: str) -> Iterator[ServedProcess]:
    """`python -m tokenpulse serve` on the bundled replay, ready (``/health`` 200) on entry."""
    port = free_port()
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
                        raise AssertionError("server not ready within 60 s")
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
