"""What the fake venue WebSocket servers share: connections, silence, drops, broadcast.

A subclass speaks one venue's protocol in :meth:`VenueWsFake.on_connect` and
:meth:`VenueWsFake.on_request`; tests push frames with the subclass's ``send_ticker`` or
:meth:`VenueWsFake.send_raw`, make the open connections go quiet (:meth:`silence`) or
abort them (:meth:`drop_all`). ``refuse`` makes it refuse new connections (HTTP 503 at the
upgrade), as a venue that is down does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response


@dataclass(eq=False)
class VenueClient:
    """One accepted connection."""

    ws: ServerConnection
    subscribed: set[str] = field(default_factory=set)
    silent: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    gone: asyncio.Event = field(default_factory=asyncio.Event)


class VenueWsFake:
    """A loopback WebSocket server; use as ``async with Fake() as fake``."""

    path = "/"

    def __init__(self) -> None:
        self.clients: list[VenueClient] = []
        self.requests: list[dict[str, Any]] = []
        self.total_connections = 0
        self.refuse = False
        self._server: Server | None = None
        self._port = 0

    async def __aenter__(self) -> Self:
        self._server = await serve(
            self._serve, "127.0.0.1", 0, process_request=self._process_request
        )
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            for client in self.clients:
                client.silent = False
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._port}{self.path}"

    @property
    def connections(self) -> int:
        return len(self.clients)

    # -- what a test does ------------------------------------------------------------------

    async def send_raw(self, text: str | bytes) -> int:
        """Send ``text`` as it is to every connection."""
        return await self.broadcast(text, self.clients)

    def silence(self) -> None:
        """Open connections stop sending anything; sockets stay open."""
        for client in self.clients:
            client.silent = True

    async def drop_all(self) -> None:
        """Abort every connection at the TCP level, without a close frame."""
        clients = list(self.clients)
        for client in clients:
            client.ws.transport.abort()
        if clients:
            await asyncio.wait_for(asyncio.gather(*(c.gone.wait() for c in clients)), 5)

    # -- the protocol (subclasses) ---------------------------------------------------------

    async def on_connect(self, client: VenueClient) -> None:
        """Called once a connection is open."""

    async def on_request(self, client: VenueClient, request: dict[str, Any]) -> None:
        """Called with every JSON object the client sends."""
        raise NotImplementedError

    # -- plumbing --------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refuse:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "venue down\n")
        return None

    async def _serve(self, ws: ServerConnection) -> None:
        client = VenueClient(ws)
        self.clients.append(client)
        self.total_connections += 1
        try:
            await self.on_connect(client)
            async for message in ws:
                try:
                    request = json.loads(message)
                except ValueError:
                    continue
                if isinstance(request, dict):
                    self.requests.append(request)
                    await self.on_request(client, request)
        except ConnectionClosed:
            pass
        finally:
            for task in client.tasks:
                task.cancel()
            self.clients.remove(client)
            client.gone.set()

    async def broadcast(self, text: str | bytes, clients: Iterable[VenueClient]) -> int:
        sent = 0
        for client in list(clients):
            sent += await self.send(client, text)
        return sent

    @staticmethod
    async def send(client: VenueClient, text: str | bytes) -> bool:
        if client.silent:
            return False
        try:
            await client.ws.send(text)
        except ConnectionClosed:
            return False
        return True
