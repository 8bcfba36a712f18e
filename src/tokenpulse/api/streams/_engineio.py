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
:class:`PromptEngineIoServer` cancels a session's ping task as soon as Engine.IO has closed
it and sweeps by session id (looking each session up when its turn comes), so nothing holds
a closed session; the default ping settings stay. A closed session still in ``sockets`` (the
request handler removes WebSocket sessions itself) is dropped too; polling sessions are left
to Engine.IO, as a pending long-poll may still need the session for its close packet.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import engineio
import socketio
from engineio.async_socket import AsyncSocket


class PromptEngineIoServer(engineio.AsyncServer):  # type: ignore[misc]
    """Engine.IO server that forgets a closed WebSocket session at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pings: dict[str, asyncio.Task[Any]] = {}  # session id -> its ping task

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        """Start a task as Engine.IO does, remembering each session's ping task."""
        task = super().start_background_task(target, *args, **kwargs)
        owner = getattr(target, "__self__", None)
        if (
            isinstance(owner, AsyncSocket)
            and getattr(target, "__func__", None) is AsyncSocket._send_ping
            and isinstance(task, asyncio.Task)
        ):
            sid = owner.sid
            self._pings[sid] = task
            task.add_done_callback(lambda done: self._forget_ping(sid, done))
        return task

    def _forget_ping(self, sid: str, task: asyncio.Task[Any]) -> None:
        if self._pings.get(sid) is task:
            del self._pings[sid]

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


class PromptSocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's ASGI server on :class:`PromptEngineIoServer`."""

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return PromptEngineIoServer


__all__ = ["PromptEngineIoServer", "PromptSocketServer"]
