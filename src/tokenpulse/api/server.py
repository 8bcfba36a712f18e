"""The HTTP server: uvicorn, with a clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType

import uvicorn

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Server(uvicorn.Server):
    """uvicorn's server, except that a signal-initiated graceful shutdown exits 0.

    uvicorn re-raises the signal it caught once it has shut down, so the process dies *by*
    SIGTERM (status 143) even after draining cleanly. An orchestrator stopping us on purpose
    should see success: on SIGTERM we stop accepting, drain requests and streams, flush, and
    exit 0 within SHUTDOWN_TIMEOUT.
    """

    def __init__(
        self, config: uvicorn.Config, *, on_exit: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        super().__init__(config)
        self._on_exit = on_exit
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

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
