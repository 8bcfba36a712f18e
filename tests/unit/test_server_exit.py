"""SIGTERM means exit: the server's watchdog ends a process whose clean-up hangs."""

from __future__ import annotations

import subprocess
import sys
import time

HANGING = """
import threading
from tokenpulse.api.server import _leave_after

threading.Thread(target=threading.Event().wait, name="stuck-library-thread").start()
_leave_after(0.2)
"""


def test_a_process_kept_alive_by_a_stuck_thread_still_exits_0_and_names_the_thread() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", HANGING], capture_output=True, text=True, timeout=20, check=False
    )
    assert done.returncode == 0
    assert time.monotonic() - started < 10
    assert "leaving" in done.stderr
    assert "stuck-library-thread" in done.stderr or "Thread 0x" in done.stderr
