"""Why an aborted Socket.IO connection used to be held until its next ping, in a minimal
reproduction: python-socketio on uvicorn (its default WebSocket implementation), one raw
Engine.IO client that connects and resets its TCP connection.

The abort *is* noticed at once (the ASGI ``websocket.disconnect`` arrives, the ``disconnect``
handler runs); what holds the session afterwards is Engine.IO's ping task, asleep for
``ping_interval`` (25 s by default), and the ping-timeout sweep's copy of the sessions. The
stock server keeps it; ours (:mod:`tokenpulse.api.streams._engineio`) lets it go at the
disconnect. When the stock case fails, python-engineio no longer holds the session and our
override can go."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import socketio
from websockets.asyncio.client import connect

from tests.helpers import wait_for
from tests.server import serving_asgi
from tokenpulse.api.streams._engineio import PromptSocketServer

DEFAULT_PING_INTERVAL = 25


def _served(sio: socketio.AsyncServer) -> AbstractAsyncContextManager[int]:
    return serving_asgi(socketio.ASGIApp(sio))


@pytest.mark.parametrize("server_class", [socketio.AsyncServer, PromptSocketServer])
async def test_an_aborted_websocket_session_is_held_only_by_engineios_ping_task(
    server_class: type[socketio.AsyncServer],
) -> None:
    sio = server_class(async_mode="asgi")
    assert sio.eio.ping_interval == DEFAULT_PING_INTERVAL
    sessions: list[weakref.ref[Any]] = []
    disconnected_at: list[float] = []

    async def on_connect(sid: str, environ: dict[str, Any]) -> None:
        sessions.append(weakref.ref(sio.eio.sockets[sio.manager.eio_sid_from_sid(sid, "/")]))

    async def on_disconnect(sid: str, reason: Any) -> None:
        disconnected_at.append(time.monotonic())

    sio.on("connect", on_connect)
    sio.on("disconnect", on_disconnect)
    async with _served(sio) as port:
        ws = await connect(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")
        assert str(await ws.recv()).startswith("0")
        await ws.send("40")
        assert str(await ws.recv()).startswith("40")
        ws.transport.abort()  # a TCP reset, no close frame
        aborted = time.monotonic()
        await wait_for(lambda: disconnected_at, 5, message="the disconnect handler ran")
        noticed = disconnected_at[0] - aborted
        await wait_for(lambda: not sio.eio.sockets, 5, message="the session left `sockets`")

        def released() -> bool:
            gc.collect()
            return sessions[0]() is None

        if server_class is PromptSocketServer:
            took = await wait_for(released, 5, message="the closed session let go")
            print(f"\nFIGURE abort noticed after {noticed:.3f} s, session freed {took:.3f} s later")
        else:
            gc.collect()
            held = sessions[0]()
            assert held is not None  # stock python-engineio: still alive after the disconnect
            holders = [r for r in gc.get_referrers(held) if asyncio.iscoroutine(r)]
            names = [holder.__qualname__ for holder in holders]
            print(f"\nFIGURE abort noticed after {noticed:.3f} s, session held by {names}")
            assert "AsyncSocket._send_ping" in names  # asleep for ping_interval (25 s)
            del held, holders
        assert noticed < 1.0
        await sio.shutdown()
