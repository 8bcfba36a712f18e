"""``tokenpulse watch`` driven in a pseudo-terminal against a replay service: the table fills
with pairs and tokens, ages tick, a lost service shows as reconnecting, Ctrl-C exits 0 quietly."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e._replay import ReplayService, child_env, replay_service

DEADLINE = 20.0
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A child process on a pseudo-terminal and what it has drawn so far."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        with warnings.catch_warnings():
            # Python ≥ 3.12 warns about fork() in a threaded process; the child only execs.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid, fd = pty.fork()
        if pid == 0:  # the child: the pty is its controlling terminal
            os.execve(argv[0], argv, env)  # noqa: S606 (a known interpreter, no shell)
        self.pid, self.fd, self.output = pid, fd, b""
        self.status: int | None = None

    def text(self) -> str:
        return ANSI.sub(b"", self.output).decode("utf-8", "replace")

    def read_until(self, pattern: str, deadline: float = DEADLINE) -> str:
        """Read until the screen so far (ANSI stripped) matches ``pattern``."""
        regex = re.compile(pattern)
        end = time.monotonic() + deadline
        while not regex.search(self.text()):
            if time.monotonic() >= end or not self._read(end - time.monotonic()):
                raise AssertionError(f"{pattern!r} not drawn; the screen:\n{self.text()[-3000:]}")
        return self.text()

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.output += chunk
        return bool(chunk)

    def interrupt(self) -> None:
        os.write(self.fd, b"\x03")  # Ctrl-C, as a user types it: SIGINT from the line discipline

    def wait(self, deadline: float = DEADLINE) -> int:
        end = time.monotonic() + deadline
        while self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
                break
            if time.monotonic() >= end:
                os.kill(self.pid, signal.SIGKILL)
                raise AssertionError(f"watch did not exit; the screen:\n{self.text()[-3000:]}")
            self._read(0.05)
        while self._read(0.0) and self.output:  # drain what is left
            if not select.select([self.fd], [], [], 0)[0]:
                break
        return os.waitstatus_to_exitcode(self.status)

    def close(self) -> None:
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ReplayService]:
    with replay_service(tmp_path) as running:
        yield running


def watch(service: ReplayService, *targets: str) -> Terminal:
    argv = [sys.executable, "-m", "tokenpulse", "watch", "--url", service.base_url, *targets]
    return Terminal(argv, child_env(TERM="xterm-256color", COLUMNS="120", LINES="30"))


def test_watch_draws_pairs_and_tokens_and_leaves_quietly_on_ctrl_c(
    service: ReplayService,
) -> None:
    terminal = watch(service, "BTC/USD", "ETH", "bitcoin", "xrp-usd")
    try:
        screen = terminal.read_until(r"BTC/USD\s+│\s+[\d,]+\.\d\d")
        terminal.read_until(r"BTC bitcoin\s+│\s+[\d,]+\.\d\d")
        screen = terminal.read_until(r"ETH ethereum\s+│\s+[\d,]+\.\d\d")
        assert "● connected" in screen
        assert "XRP/USD" in screen
        assert re.search(r"replay\s+│\s+\d+\.\ds", screen)  # the age column
        terminal.interrupt()
        code = terminal.wait()
    finally:
        terminal.close()
    assert code == 0, terminal.text()[-2000:]
    assert "Traceback" not in terminal.text()
    assert "stopped" in terminal.text()


def test_watch_shows_reconnecting_when_the_service_goes_away(tmp_path: Path) -> None:
    with replay_service(tmp_path) as running:
        terminal = watch(running, "BTC/USD")
        try:
            terminal.read_until(r"BTC/USD\s+│\s+[\d,]+\.\d\d")
            running.process.terminate()
            running.process.wait(15)
            screen = terminal.read_until(r"reconnecting")
            assert "BTC/USD" in screen  # the last value stays on screen
            terminal.read_until(r"STALE|reconnects: 1")
            terminal.interrupt()
            code = terminal.wait()
        finally:
            terminal.close()
    assert code == 0
    assert "Traceback" not in terminal.text()


def test_watch_refuses_an_unknown_token_with_one_line(service: ReplayService) -> None:
    terminal = watch(service, "nosuchcoin")
    try:
        code = terminal.wait()
    finally:
        terminal.close()
    assert code == 1
    assert "TOKEN_NOT_FOUND" in terminal.text()
    assert "Traceback" not in terminal.text()
