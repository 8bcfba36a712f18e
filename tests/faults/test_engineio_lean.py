"""The lean Engine.IO WebSocket session (:mod:`tokenpulse.api.streams._eio_lean`): what an
idle connection holds, that the protocol still works (ping/pong, ping timeout, polling →
WebSocket upgrade, order of queued and raw-written frames), and that the python-engineio and
uvicorn internals it stands on still have the shape it was written against."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import re
from contextlib import AbstractAsyncContextManager

import engineio
import pytest
import socketio
from engineio import async_socket, base_socket
from engineio.async_drivers import asgi as eio_asgi
from uvicorn.protocols.websockets import websockets_sansio_impl
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.helpers import wait_for
from tests.server import serving_asgi
from tokenpulse.api.streams import wire
from tokenpulse.api.streams._eio_lean import LeanQueue
from tokenpulse.api.streams._engineio import PromptSocketServer

#: sha256 of ``AsyncSocket._websocket_handler``'s source, which ``_eio_lean.serve`` follows.
#: When python-engineio changes it, re-read it, port what changed to ``serve`` and update this.
WEBSOCKET_HANDLER_SHA256 = "27f120df4d717a24478b7b0f7389ce19eea8a881dd07e2c81fb1cf2493e006a5"


def _queue_calls(source: str) -> set[str]:
    return set(re.findall(r"self\.queue\.(\w+)", source))


def test_the_upstream_internals_have_the_shape_the_override_was_written_against() -> None:
    socket_source = inspect.getsource(async_socket)
    # Every queue call of Engine.IO's socket and of uvicorn's WebSocket protocol is ours.
    for source in (socket_source, inspect.getsource(websockets_sansio_impl)):
        calls = _queue_calls(source)
        assert calls, "no queue calls found: the module changed shape"
        assert all(callable(getattr(LeanQueue, name, None)) for name in calls), calls
    assert "self.queue = self.server.create_queue()" in inspect.getsource(base_socket)
    # The ping is a background task of a bound _send_ping (we make it a timer) ...
    assert "self.server.start_background_task(self._send_ping)" in socket_source
    # ... and the WebSocket wrapper is built with the socket's handler, then called.
    assert "self.server._async['websocket'](\n            self._websocket_handler" in (
        socket_source
    )
    handler = inspect.getsource(async_socket.AsyncSocket._websocket_handler)
    digest = hashlib.sha256(handler.encode()).hexdigest()
    assert digest == WEBSOCKET_HANDLER_SHA256, (
        "python-engineio's _websocket_handler changed: port the change to _eio_lean.serve"
    )
    assert inspect.iscoroutinefunction(eio_asgi._async["translate_request"])
    assert eio_asgi._async["websocket"] is eio_asgi.WebSocket
    for name in ("asgi_receive", "asgi_send"):
        assert name in inspect.getsource(eio_asgi.WebSocket.__call__)
    # uvicorn no longer reads the handshake request/response once it is complete.
    send = inspect.getsource(websockets_sansio_impl.WebSocketsSansIOProtocol.send)
    assert "if not self.handshake_complete" in send


def _served(sio: socketio.AsyncServer) -> AbstractAsyncContextManager[int]:
    return serving_asgi(socketio.ASGIApp(sio))


def _server(**kwargs: float) -> PromptSocketServer:
    sio = PromptSocketServer(async_mode="asgi", **kwargs)
    assert wire.install(sio.eio)
    return sio


#: Coroutines of the per-connection tasks python-engineio runs besides the ASGI one.
ENGINEIO_TASKS = re.compile(r"writer|websocket_wait|_send_ping|Queue\.get|_drain")


@pytest.mark.parametrize("lean", [False, True])
async def test_an_idle_websocket_session_holds_only_the_asgi_task(lean: bool) -> None:
    sio = _server() if lean else socketio.AsyncServer(async_mode="asgi")
    clients = 20
    async with _served(sio) as port:
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        sockets = [await connect(url) for _ in range(clients)]
        for ws in sockets:
            assert str(await ws.recv()).startswith("0")
            await ws.send("40")
            assert str(await ws.recv()).startswith("40")
        await wait_for(lambda: len(sio.eio.sockets) == clients, 5, message="all connected")
        names = [t.get_coro().__qualname__ for t in asyncio.all_tasks()]  # type: ignore[union-attr]
        asgi = [n for n in names if n.endswith("run_asgi")]
        extra = [n for n in names if ENGINEIO_TASKS.search(n)]
        print(f"\nFIGURE lean={lean}: {len(asgi)} ASGI tasks, {len(extra)} Engine.IO tasks")
        assert len(asgi) == clients
        if lean:
            assert extra == []
            assert len(sio.eio._pings) == clients  # one timer handle each
            assert all(isinstance(s.queue, LeanQueue) for s in sio.eio.sockets.values())
        else:
            assert len(extra) >= 3 * clients  # writer, reader wait, ping (+ queue.get)
        for ws in sockets:
            await ws.close()
        await wait_for(lambda: not sio.eio.sockets, 5, message="all released")
        if lean:
            assert not sio.eio._pings
    await sio.shutdown()


async def _read_until_closed(ws: ClientConnection) -> None:
    while True:
        assert await asyncio.wait_for(ws.recv(), 5) in {"2", "1"}  # pings, or a CLOSE packet


async def test_pings_flow_and_a_silent_client_is_closed_by_the_ping_timeout() -> None:
    sio = _server(ping_interval=0.3, ping_timeout=0.5)
    async with _served(sio) as port:
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        async with connect(url) as ws:
            assert str(await ws.recv()).startswith("0")
            await ws.send("40")
            assert str(await ws.recv()).startswith("40")
            for _ in range(3):  # an answering client stays
                assert await asyncio.wait_for(ws.recv(), 5) == "2"
                await ws.send("3")
            assert len(sio.eio.sockets) == 1
            # Stop answering: the sweep closes the session, which closes the WebSocket (at
            # once, not after Engine.IO's read timeout, ping_interval + ping_timeout).
            assert await asyncio.wait_for(ws.recv(), 5) == "2"
            with pytest.raises(ConnectionClosed):
                await _read_until_closed(ws)
        await wait_for(lambda: not sio.eio.sockets, 5, message="session dropped")
        assert not sio.eio._pings
    await sio.shutdown()


async def test_upgrade_from_polling_and_order_of_queued_and_raw_frames() -> None:
    sio = _server()
    received: list[int] = []
    client = socketio.AsyncClient(reconnection=False)
    client.on("n", received.append)
    async with _served(sio) as port:
        await client.connect(f"http://127.0.0.1:{port}", transports=["polling", "websocket"])
        await wait_for(lambda: client.transport() == "websocket", 5, message="upgraded")
        (sock,) = sio.eio.sockets.values()
        await wait_for(lambda: wire.raw_socket(sock) is not None, 5, message="raw path open")
        raw = wire.raw_socket(sock)
        assert raw is not None
        sid = sio.manager.sid_from_eio_sid(sock.sid, "/")
        # Alternate the queue path (Engine.IO's packets) and pre-framed raw writes.
        for n in range(40):
            if n % 2:
                await sio.emit("n", n, to=sid)
            else:
                ready = wire.raw_socket(sock)
                if ready is None:
                    await sio.emit("n", n, to=sid)
                else:
                    ready.write(wire.text_frame(f'42["n",{n}]'.encode()))
        await wait_for(lambda: len(received) == 40, 5, message="all delivered")
        assert received == list(range(40))
        await client.disconnect()
        await wait_for(lambda: not sio.eio.sockets, 5, message="released")
    await sio.shutdown()


def test_the_stock_engineio_socket_is_what_the_lean_one_replaces() -> None:
    eio = engineio.AsyncServer(async_mode="asgi")
    assert eio._async["websocket"] is eio_asgi.WebSocket
    ours = PromptSocketServer(async_mode="asgi").eio
    assert ours._async["websocket"] is not eio_asgi.WebSocket
    assert isinstance(ours.create_queue(), LeanQueue)
