"""The HTTP server: uvicorn, with a clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType

import uvicorn

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Seconds the event loop's own clean-up (cancelling leftover tasks, joining the executor)
#: may take after the server finished, before the process leaves anyway.
EXIT_GRACE = 3.0


class Server(uvicorn.Server):
    """uvicorn's server, except that a signal-initiated graceful shutdown exits 0.

    uvicorn re-raises the signal it caught once it has shut down, so the process dies *by*
    SIGTERM (status 143) even after draining cleanly. An orchestrator stopping us on purpose
    should see success: on SIGTERM we stop accepting, drain requests and streams, flush, and
    exit 0 within SHUTDOWN_TIMEOUT.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        on_exit: Callable[[], Awaitable[None]] | None = None,
        exit_code: Callable[[], int] = lambda: 0,
    ) -> None:
        """``exit_code()`` is the status to leave with once shut down (non-zero when history
        rows could not be written)."""
        super().__init__(config)
        self._on_exit = on_exit
        self._exit_code = exit_code
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]
        if self.should_exit:
            _leave_after(EXIT_GRACE, self._exit_code)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Stop accepting (uvicorn), and end open streams so the drain does not wait on them."""
        super().handle_exit(sig, frame)
        if self._on_exit is not None and self._loop is not None:
            on_exit = self._on_exit
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(on_exit()))

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def _leave_after(grace: float, exit_code: Callable[[], int] = lambda: 0) -> None:
    """SIGTERM means exit. After the server has finished, the loop still cancels leftover
    tasks and joins its executor; a task that ignores cancellation or a stuck library thread
    would keep the process alive for ever. A watchdog makes it leave (with ``exit_code()``,
    0 after a clean shutdown) after ``grace`` seconds, printing every thread's stack so the
    culprit can be found."""

    def watchdog() -> None:
        time.sleep(grace)
        sys.stderr.write(f"tokenpulse: still running {grace:g} s after shutdown; leaving\n")
        faulthandler.dump_traceback(all_threads=True)
        sys.stderr.flush()
        os._exit(exit_code())

    threading.Thread(target=watchdog, name="exit-watchdog", daemon=True).start()
