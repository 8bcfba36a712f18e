"""A small TCP proxy for fault injection: it stands between the service and a real Redis or
PostgreSQL and can cut, stall and restore the connection on demand.

- ``cut()``: every open connection is reset and new ones are accepted and closed at once
  (the store looks down: the client sees connection errors quickly).
- ``stall()``: open connections stop forwarding in both directions and new ones are accepted
  but never forwarded (a black hole: the client sees timeouts, the worst case).
- ``restore()``: new connections are forwarded again (stalled ones are reset, as a network
  that comes back after a long partition would have reset them).

The proxy keeps its port for its whole life, so the service's URL stays valid through the
outage, as a real store restarting on its address would.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal, Self

Mode = Literal["up", "cut", "stall"]
CHUNK = 65536


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; ``cut``/``stall``/``restore`` it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.mode: Mode = "up"
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        self._reset_all()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def open_connections(self) -> int:
        """Client connections currently forwarded (or stalled)."""
        return len(self._writers) // 2

    def cut(self) -> None:
        """The store goes down: reset every connection, refuse (accept and close) new ones."""
        self.mode = "cut"
        self._flowing.set()
        self._reset_all()

    def stall(self) -> None:
        """The network turns into a black hole: nothing is forwarded, nothing is closed."""
        self.mode = "stall"
        self._flowing.clear()

    def restore(self) -> None:
        """The store is reachable again (stalled connections are reset first)."""
        if self.mode == "stall":
            self._reset_all()
        self.mode = "up"
        self._flowing.set()

    def _reset_all(self) -> None:
        for writer in list(self._writers):
            _abort(writer)
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode == "cut":
            _abort(writer)
            return
        if self.mode == "stall":
            self._writers.add(writer)
            await self._flowing.wait()  # never forwarded: restore() resets it
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            _abort(writer)
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink, writer, up_writer))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        *ends: asyncio.StreamWriter,
    ) -> None:
        try:
            while True:
                data = await source.read(CHUNK)
                if not data:
                    break
                await self._flowing.wait()  # a stall holds the bytes back
                if sink not in self._writers:
                    break
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for end in ends:
                self._writers.discard(end)
                _abort(end)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a reset, as a dead peer or a broken network does."""
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()
