"""The HTTP server: uvicorn, with a clean exit on SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import uvicorn

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Server(uvicorn.Server):
    """uvicorn's server, except that a signal-initiated graceful shutdown exits 0.

    uvicorn re-raises the signal it caught once it has shut down, so the process dies *by*
    SIGTERM (status 143) even after draining cleanly. An orchestrator stopping us on purpose
    should see success: on SIGTERM we stop accepting, drain requests and streams, flush, and
    exit 0 within SHUTDOWN_TIMEOUT.
    """

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
