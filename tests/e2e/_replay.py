"""A real ``tokenpulse serve`` process on the bundled replay, for tests that drive it from
other processes (``tokenpulse watch`` in a pseudo-terminal, the examples)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.fakes._loopback import free_port

READY_DEADLINE = 90.0  # generous: the replay seeds its history at start, on a busy CI machine
POLL_INTERVAL = 0.05


def wait_for_sync(predicate: Callable[[], object], timeout: float, *, message: str) -> None:
    """Poll ``predicate`` until it is truthy; fail at the deadline (blocking code's wait_for)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout:.1f}s: {message}")
        time.sleep(POLL_INTERVAL)


@dataclass(frozen=True)
class ReplayService:
    base_url: str
    folder: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        """What the server wrote so far."""
        return (self.folder / "server.log").read_text(errors="replace")


def child_env(**extra: str) -> dict[str, str]:
    """A clean environment for child processes: PATH, and PYTHONPATH when tests set one."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return {**env, **extra}


def _serving(base_url: str) -> bool:
    try:
        ltp = httpx.get(f"{base_url}/api/v1/ltp", timeout=2)
        tokens = httpx.get(f"{base_url}/api/v1/tokens?limit=1", timeout=2)
    except httpx.HTTPError:
        return False
    return ltp.status_code == 200 and tokens.status_code == 200 and bool(tokens.json()["data"])


@contextlib.contextmanager
def replay_service(folder: Path, **env: str) -> Iterator[ReplayService]:
    """Start the service on the replay in ``folder``; yield once every pair and token serves."""
    port = free_port()
    # The replay's frames are an hour apart: at 3600x each pair moves about once a second,
    # so an example that waits for a streamed update gets one at once.
    defaults = {"SOURCES": "replay", "REPLAY_SPEED": "3600", "LOG_LEVEL": "warning"}
    variables = child_env(**{**defaults, "PORT": str(port), "SHUTDOWN_TIMEOUT": "5s", **env})
    base_url = f"http://127.0.0.1:{port}"
    with (folder / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tokenpulse", "serve"],
            env=variables,
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        service = ReplayService(base_url, folder, process)
        try:
            wait_for_sync(
                lambda: process.poll() is not None or _serving(base_url),
                READY_DEADLINE,
                message="the replay service serving prices and tokens",
            )
            assert process.poll() is None, service.log()
            yield service
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
