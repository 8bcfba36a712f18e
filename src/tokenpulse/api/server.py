"""The HTTP server: Granian (embedded) or uvicorn (``SERVER``), with a clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType
from typing import Any

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


def run_granian(
    app: Any,
    *,
    host: str,
    port: int,
    max_head_bytes: int,
    shutdown_timeout: float,
    on_exit: Callable[[], Awaitable[None]],
    exit_code: Callable[[], int] = lambda: 0,
) -> bool:
    """Serve ``app`` on Granian embedded in our own uvloop event loop, until SIGTERM/SIGINT.

    Granian parses HTTP and WebSocket frames in Rust and calls the ASGI app on this loop, so
    the app, its lifespan and its background tasks stay in this one process as on uvicorn.
    On a signal: open streams are ended (``on_exit``), Granian stops accepting and finishes
    the requests in flight, the lifespan shuts down, all within ``shutdown_timeout``; the
    process then exits 0. Returns False when the server stopped without being asked to (a
    port in use, a failed start-up), so the CLI can exit non-zero.
    """
    import uvloop
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.server.embed import Server as Embedded

    asked = False

    async def main() -> None:
        nonlocal asked
        server = Embedded(
            app,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            http=HTTPModes.http1,
            websockets=True,
            backlog=1024,
            http1_settings=HTTP1Settings(max_buffer_size=max_head_bytes),
            log_enabled=False,
        )
        loop = asyncio.get_running_loop()
        serving = asyncio.ensure_future(server.serve())
        asked_event = asyncio.Event()
        draining: list[asyncio.Future[None]] = []

        def stop() -> None:
            nonlocal asked
            if not asked:
                asked = True
                # Whatever hangs from here on (a request that never ends, the loop's own
                # clean-up), the process leaves within the drain bound plus a grace.
                _leave_after(shutdown_timeout + EXIT_GRACE, exit_code)
                asked_event.set()
                draining.append(asyncio.ensure_future(on_exit()))
                server.stop()  # type: ignore[no-untyped-call]

        for sig in HANDLED_SIGNALS:
            loop.add_signal_handler(sig, stop)
        waiting = asyncio.ensure_future(asked_event.wait())
        await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if not serving.done():
            try:
                await asyncio.wait_for(serving, shutdown_timeout)
            except TimeoutError:
                sys.stderr.write("tokenpulse: shutdown took longer than SHUTDOWN_TIMEOUT\n")
        elif (error := serving.exception()) is not None:
            raise error

    try:
        uvloop.run(main())
    except OSError as exc:
        sys.stderr.write(f"tokenpulse: cannot listen on {host}:{port}: {exc}\n")
        return False
    if asked:
        sys.stderr.flush()
        logging.getLogger("tokenpulse.server").info("shutdown complete (granian)")
    return asked
