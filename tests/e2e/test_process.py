"""The real process: `tokenpulse serve` offline on the bundled replay, and SIGTERM, on each
HTTP server (``SERVER=uvicorn`` and ``SERVER=granian``)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import socketio

from tests.fakes._loopback import free_port


@pytest.fixture(params=["uvicorn", "granian"])
def replay_server(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = free_port()
    env = {
        "SERVER": request.param,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SOURCES": "replay",
        "PORT": str(port),
        "LOG_LEVEL": "info",
        "SHUTDOWN_TIMEOUT": "5s",
    }
    # Logs go to a file: an unread pipe that fills up would block the server.
    log_file = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tokenpulse", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process, f"http://127.0.0.1:{port}", tmp_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log_file.close()


def test_replay_serves_every_default_pair_within_5_seconds_and_exits_0_on_sigterm(
    replay_server: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    process, base, _ = replay_server
    started = time.monotonic()
    deadline = started + 15  # generous for the interpreter to start; the bound is below
    body: dict[str, object] = {}
    first_200 = None
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get(f"{base}/api/v1/ltp")
            except httpx.TransportError:
                time.sleep(0.05)  # the port is not open yet: poll again
                continue
            if response.status_code == 200:
                body = response.json()
                first_200 = time.monotonic()
                break
            time.sleep(0.05)
        if first_200 is None:
            output = (replay_server[2] / "server.log").read_text(errors="replace")
            raise AssertionError(
                f"replay never served every pair (exit code {process.poll()}); "
                f"server said:\n{output[-3000:]}"
            )
        health = client.get(f"{base}/health").json()
    uptime = float(health["uptime_seconds"])
    # Time from the app's start to every default pair served, measured by the server itself.
    assert uptime - (time.monotonic() - first_200) < 5.0
    pairs = [entry["pair"] for entry in body["ltp"]]  # type: ignore[attr-defined]
    assert pairs == ["BTC/USD", "ETH/USD", "LTC/USD", "XRP/USD"]
    assert all(entry["source"] == "replay" for entry in body["ltp"])  # type: ignore[attr-defined]

    # Socket.IO over WebSocket with the official client: a snapshot arrives.
    snapshot = asyncio.run(_socketio_snapshot(base))
    assert (snapshot["type"], snapshot["id"]) == ("snapshot", "BTC/USD")

    # An open SSE stream must not hold the shutdown up: SIGTERM ends it.
    events: list[str] = []
    opened = threading.Event()

    def listen() -> None:
        with (
            httpx.Client(timeout=30) as client,
            client.stream("GET", f"{base}/api/v1/ltp/live?pair=BTC/USD") as response,
        ):
            opened.set()
            for line in response.iter_lines():
                events.append(line)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(10)
    stop_sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        returncode = process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        output = (replay_server[2] / "server.log").read_text(errors="replace")
        raise AssertionError(
            f"no exit 30 s after SIGTERM; server said:\n{output[-3000:]}"
        ) from None
    assert returncode == 0
    listener.join(10)
    assert not listener.is_alive()  # the server closed the stream
    assert any(line.startswith("event: ltp_update") for line in events)
    assert time.monotonic() - stop_sent < 10  # SHUTDOWN_TIMEOUT is 5 s per phase
    output = (replay_server[2] / "server.log").read_text(errors="replace")
    assert "shutdown complete" in output


async def _socketio_snapshot(base: str) -> dict[str, object]:
    client = socketio.AsyncClient(reconnection=False)
    updates: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    client.on("ltp_update", updates.put_nowait)
    await client.connect(base, transports=["websocket"], wait_timeout=5)
    try:
        ack = await client.call("subscribe_pair", {"pair": "BTC/USD"}, timeout=5)
        assert ack["ok"] is True
        return await asyncio.wait_for(updates.get(), 5)
    finally:
        await client.disconnect()
