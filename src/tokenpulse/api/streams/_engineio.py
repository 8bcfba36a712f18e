"""A Socket.IO server whose Engine.IO layer lets go of a closed WebSocket session at once.

An abrupt client abort (TCP reset) *is* noticed at once: uvicorn turns the dead connection
into the ASGI ``websocket.disconnect`` event, Engine.IO's WebSocket loop ends, closes the
session and python-socketio runs our ``disconnect`` handler within milliseconds. What is
slow is Engine.IO's bookkeeping after that (python-engineio 4.x, ``async_socket.py`` and
``async_server.py``):

* each session's ping task (``AsyncSocket._send_ping``) sleeps ``ping_interval`` (25 s by
  default) holding the session, its queue and its WebSocket wrapper, and only then sees it
  is closed;
* the server's service task (the ping-timeout sweep) iterates over a *copy* of
  ``AsyncServer.sockets``, sleeping ``ping_timeout / len(sockets)`` between two sessions:
  the copy holds every session that was open when the pass began for a whole pass,
  ``ping_timeout`` (20 s by default).

So every aborted connection's memory is held 20–25 s after its disconnect: a burst of
aborts holds a burst of sessions (``tests/faults/test_churn.py`` measures it).
:class:`PromptEngineIoServer` makes a session's ping a timer (no task: cancelled as soon as
Engine.IO has closed the session) and sweeps by session id (looking each session up when its
turn comes), so nothing holds a closed session; the default ping settings stay. A closed
session still in ``sockets`` (the request handler removes WebSocket sessions itself) is
dropped too; polling sessions are left to Engine.IO, as a pending long-poll may still need
the session for its close packet.

It also cuts what an *open* idle session holds (issue 14, 10 000 idle connections under
400 MiB): :mod:`tokenpulse.api.streams._eio_lean` runs a WebSocket session with no task of
its own while idle, on a list-based queue; a WebSocket request's environ is kept without the
entries no one reads after the handshake. ``tests/faults/test_engineio_lean.py`` fails when
the python-engineio internals this stands on change shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import engineio
import socketio
from engineio import packet as eio_packet
from engineio.async_drivers.asgi import WebSocket as _EngineIOWebSocket
from engineio.async_socket import AsyncSocket

from tokenpulse.api.streams._eio_lean import LeanQueue, LeanWebSocket, session_closed


class PromptEngineIoServer(engineio.AsyncServer):  # type: ignore[misc]
    """Engine.IO server that forgets a closed WebSocket session at once and holds as little
    as it can per idle session (:mod:`tokenpulse.api.streams._eio_lean`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pings: dict[str, asyncio.TimerHandle] = {}  # session id -> its next ping
        drivers = getattr(self, "_async", None)
        if isinstance(drivers, dict) and drivers.get("websocket") is _EngineIOWebSocket:
            self._async = {
                **drivers,
                "websocket": LeanWebSocket,
                "translate_request": _trimmed(drivers["translate_request"]),
            }

    def create_queue(self, *args: Any, **kwargs: Any) -> Any:
        """Each session's outgoing queue: a :class:`LeanQueue` (unbounded, as Engine.IO's)."""
        if args or kwargs:
            return super().create_queue(*args, **kwargs)
        return LeanQueue()

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        """Start a task as Engine.IO does, except a session's ping (``AsyncSocket._send_ping``:
        sleep ``ping_interval``, then send a PING), which becomes a timer: no task, no
        coroutine frame per session between two pings."""
        owner = getattr(target, "__self__", None)
        if (
            isinstance(owner, AsyncSocket)
            and getattr(target, "__func__", None) is AsyncSocket._send_ping
            and not args
            and not kwargs
        ):
            sid = owner.sid
            previous = self._pings.pop(sid, None)
            if previous is not None:
                previous.cancel()
            loop = asyncio.get_running_loop()
            handle = loop.call_later(self.ping_interval, self._ping, owner)
            self._pings[sid] = handle
            return handle
        return super().start_background_task(target, *args, **kwargs)

    def _ping(self, sock: AsyncSocket) -> None:
        """``AsyncSocket._send_ping`` after its sleep, without the task (a newer ping
        cancels the older timer, so the one firing is the session's current one)."""
        self._pings.pop(sock.sid, None)
        if not sock.closing and not sock.closed:
            sock.last_ping = time.time()
            sock.queue.put_nowait(eio_packet.Packet(eio_packet.PING))

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        result = await super()._trigger_event(event, *args, **kwargs)
        if event == "disconnect" and args:
            # ``AsyncSocket.close`` marks the session closed right after this event returns.
            asyncio.get_running_loop().call_soon(self._release, args[0])
        return result

    def _release(self, sid: str) -> None:
        """Cancel a closed session's sleeping ping task; drop it if it is a WebSocket one."""
        session = self.sockets.get(sid)
        if session is not None:
            if not session.closed:
                return
            session_closed(session)
            if session.upgraded:
                del self.sockets[sid]
        ping = self._pings.pop(sid, None)
        if ping is not None:
            ping.cancel()

    async def _service_task(self) -> None:
        """Engine.IO's ping-timeout sweep (python-engineio 4.x ``_service_task``), iterating
        over session ids instead of a copy of the sessions, so that a closed session is not
        held for the rest of a pass."""
        self.service_task_event = self.create_event()
        while not self.service_task_event.is_set():
            try:
                if not self.sockets:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.service_task_event.wait(), self.ping_timeout)
                    continue
                pause = self.ping_timeout / len(self.sockets)
                for sid in list(self.sockets):
                    await self._sweep_one(sid)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.service_task_event.wait(), pause)
                        return
            except asyncio.CancelledError:
                self.logger.info("service task canceled")
                return
            except Exception:  # the sweep goes on, as Engine.IO's does
                self.logger.exception("service task exception")

    async def _sweep_one(self, sid: str) -> None:
        session = self.sockets.get(sid)
        if session is None:
            return
        if session.closed:
            self.sockets.pop(sid, None)
        elif not session.closing:
            await session.check_ping_timeout()


#: Environ entries a WebSocket session does not need kept for its lifetime: the request body
#: reader (an instance of a class python-engineio defines per request), the error stream, and
#: the WebSocket handshake headers (read by the ASGI server, not by Engine.IO, Socket.IO or us).
_WEBSOCKET_UNUSED = (
    "wsgi.input",
    "wsgi.errors",
    "HTTP_SEC_WEBSOCKET_KEY",
    "HTTP_SEC_WEBSOCKET_VERSION",
    "HTTP_SEC_WEBSOCKET_EXTENSIONS",
)


def _trimmed(translate: Any) -> Any:
    """Engine.IO's ASGI ``translate_request``, leaving out of a WebSocket request's environ
    what no one reads (it is held as long as the session, by Socket.IO and the ASGI task)."""

    async def translate_request(scope: Any, receive: Any, send: Any) -> dict[str, Any]:
        environ: dict[str, Any] = await translate(scope, receive, send)
        if scope.get("type") == "websocket":
            for key in _WEBSOCKET_UNUSED:
                environ.pop(key, None)
        return environ

    return translate_request


class IndexedManager(socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio's client manager with each client's rooms indexed.

    Every client is in a room of its own, and the stock ``basic_disconnect`` (5.18) looks for
    the leaving client in every room of the namespace: O(clients) per disconnect, O(clients²)
    when a shutdown ends them all (9.4 s for 10 000 Socket.IO clients). Here the rooms a
    client joined are kept per client, and a disconnect leaves just those.
    """

    def __init__(self) -> None:
        super().__init__()
        self._joined: dict[tuple[str, str], set[str | None]] = {}

    def basic_enter_room(
        self, sid: str, namespace: str, room: str | None, eio_sid: str | None = None
    ) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._joined.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: str | None) -> None:
        super().basic_leave_room(sid, namespace, room)
        joined = self._joined.get((namespace, sid))
        if joined is not None:
            joined.discard(room)
            if not joined:
                del self._joined[(namespace, sid)]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """The stock disconnect (python-socketio 5.18), rooms looked up by the index."""
        if namespace not in self.rooms:
            return
        for room in list(self._joined.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]


class PromptSocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's ASGI server on :class:`PromptEngineIoServer`, with an
    :class:`IndexedManager` unless another client manager is given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("client_manager", IndexedManager())
        super().__init__(*args, **kwargs)

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return PromptEngineIoServer


__all__ = ["IndexedManager", "PromptEngineIoServer", "PromptSocketServer"]
