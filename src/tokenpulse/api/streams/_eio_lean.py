"""What an idle Engine.IO WebSocket session holds, cut down (issue 14, memory).

python-engineio 4.x (``async_socket.py``, ``AsyncSocket._websocket_handler``) keeps, for every
WebSocket session, besides the ASGI server's own task: a writer task parked in
``asyncio.wait_for(queue.get(), …)`` (on Python 3.11 ``wait_for`` wraps ``queue.get()`` in one
more task), a reader task (``websocket_wait``) wrapped in another ``wait_for``, and an
``asyncio.Queue`` (four deques and an Event). Idle, that is four tasks, their coroutine
frames, two timer handles and ~3 KB of queue per connection.

Here a session holds no task of its own while idle:

* :class:`LeanQueue` is the subset of ``asyncio.Queue`` that Engine.IO, uvicorn and our
  dispatcher use, on a list; its ``get()`` returns a plain future (``wait_for`` wraps no task
  around it);
* :class:`LeanWebSocket` runs the session in the ASGI task: it reads straight from the ASGI
  ``receive`` (no reader task, no read timeout: a client that stops answering pings is closed
  by Engine.IO's ping-timeout sweep, and the ``CLOSE`` packet ends the WebSocket) and starts a
  writer task only while packets are queued (:class:`_Writer`), which leaves each packet in
  the queue until it is written (``wire.raw_socket`` sees a non-empty queue, so order holds).

The protocol is Engine.IO's: the same upgrade probe, packets, ping/pong and close.
"""

from __future__ import annotations

import asyncio
from typing import Any

from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers.asgi import WebSocket as _EngineIOWebSocket

#: The attribute of an Engine.IO socket served by :func:`serve` that holds its writer.
WRITER_ATTR = "_tokenpulse_writer"


def session_closed(sock: Any) -> None:
    """Engine.IO has closed ``sock``: end its WebSocket if :func:`serve` still runs it (as
    python-engineio's read timeout, ``ping_interval + ping_timeout``, would, later)."""
    writer: _Writer | None = getattr(sock, WRITER_ATTR, None)
    if writer is not None:
        writer.end()


class LeanQueue:
    """The ``asyncio.Queue`` subset used here (unbounded), on a list, no task per ``get``."""

    __slots__ = ("_getters", "_items", "_joiners", "_unfinished", "on_put")

    def __init__(self, items: Any = ()) -> None:
        self._items: list[Any] = list(items)
        self._getters: list[asyncio.Future[Any]] | None = None
        self._joiners: list[asyncio.Future[None]] | None = None
        self._unfinished = len(self._items)
        self.on_put: Any = None  # called after each put (the session's writer)

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return False

    def put_nowait(self, item: Any) -> None:
        self._unfinished += 1
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(item)
                break
        else:
            self._items.append(item)
        if self.on_put is not None:
            self.on_put()

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.pop(0)

    def get(self) -> asyncio.Future[Any]:
        """A future of the next item (awaitable like ``Queue.get()``; cancel it to give up)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._items:
            future.set_result(self._items.pop(0))
        else:
            if self._getters is None:
                self._getters = []
            self._getters.append(future)
        return future

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._joiners:
            joiners, self._joiners = self._joiners, None
            for joiner in joiners:
                if not joiner.done():
                    joiner.set_result(None)

    async def join(self) -> None:
        if self._unfinished:
            joiner: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if self._joiners is None:
                self._joiners = []
            self._joiners.append(joiner)
            await joiner


class _Writer:
    """Writes a session's queued packets in order, from a task that exists only while some
    are queued; a packet leaves the queue once written."""

    __slots__ = ("broken", "ending", "queue", "task", "ws")

    def __init__(self, queue: LeanQueue, ws: Any) -> None:
        self.queue = queue
        self.ws = ws
        self.task: asyncio.Task[None] | None = None
        self.broken = False
        self.ending = False  # the session loop is on its way out

    def kick(self) -> None:
        if self.broken:
            self._discard()
        elif self.task is None and self.queue._items:
            self.task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        items = self.queue._items
        try:
            while items:
                pkt = items[0]
                if pkt is not None:
                    try:
                        await self.ws.send(pkt.encode())
                    except Exception:
                        self.broken = True
                        self._discard()
                        await self.ws.close()
                        return
                if items and items[0] is pkt:
                    items.pop(0)
                    self.queue.task_done()
                if pkt is not None and pkt.packet_type == eio_packet.CLOSE:
                    await self.ws.close()  # Engine.IO closed the session: end the transport
        finally:
            self.task = None

    def _discard(self) -> None:
        queue = self.queue
        while queue._items:
            queue._items.pop(0)
            queue.task_done()

    def end(self) -> None:
        """Engine.IO closed the session while its WebSocket is still open (a ping timeout
        closes it without a CLOSE packet): close the WebSocket, which ends the session loop."""
        if not self.ending:
            self.ending = True
            self.task = asyncio.ensure_future(self._close_after(self.task))

    async def _close_after(self, task: asyncio.Task[None] | None) -> None:
        if task is not None:
            await asyncio.wait([task])
        await self.ws.close()

    async def finish(self) -> None:
        """Write what is still queued (as Engine.IO's writer does on the way out)."""
        self.kick()
        task = self.task
        if task is not None:
            await asyncio.wait([task])


class LeanWebSocket(_EngineIOWebSocket):  # type: ignore[misc]
    """Engine.IO's ASGI WebSocket wrapper, running a session with :func:`serve` when its
    queue is a :class:`LeanQueue` (Engine.IO's own handler otherwise)."""

    async def __call__(self, environ: dict[str, Any]) -> Any:
        sock = getattr(self.handler, "__self__", None)  # handler: sock._websocket_handler
        if sock is None or not isinstance(getattr(sock, "queue", None), LeanQueue):
            return await super().__call__(environ)
        self.asgi_receive = environ["asgi.receive"]
        self.asgi_send = environ["asgi.send"]
        await self.asgi_send({"type": "websocket.accept"})
        self.accepted()
        await serve(sock, self)
        return ""

    def accepted(self) -> None:
        """Hook run once the handshake is answered."""


async def _upgrade(sock: Any, ws: LeanWebSocket) -> bool:
    """Engine.IO's polling → WebSocket probe (``_websocket_handler``'s first half)."""
    sock.upgrading = True  # hold packet sends during the upgrade
    try:
        probe = eio_packet.Packet(encoded_packet=await ws.wait())
        if probe.packet_type != eio_packet.PING or probe.data != "probe":
            sock.server.logger.info("%s: Failed websocket upgrade, no PING packet", sock.sid)
            return False
        await ws.send(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
        await sock.queue.put(eio_packet.Packet(eio_packet.NOOP))  # end the pending poll
        upgrade = eio_packet.Packet(encoded_packet=await ws.wait())
        if upgrade.packet_type != eio_packet.UPGRADE:
            sock.server.logger.info("%s: Failed websocket upgrade", sock.sid)
            return False
    except (OSError, ValueError):
        return False
    finally:
        sock.upgrading = False
    sock.upgraded = True
    return True


async def serve(sock: Any, ws: LeanWebSocket) -> None:
    """Engine.IO's WebSocket session loop (``_websocket_handler``), in the calling task."""
    server = sock.server
    if sock.connected:
        if not await _upgrade(sock, ws):
            return
    else:
        sock.connected = True
        sock.upgraded = True
    queue: LeanQueue = sock.queue
    writer = _Writer(queue, ws)
    queue.on_put = writer.kick
    setattr(sock, WRITER_ATTR, writer)
    writer.kick()
    try:
        while True:
            try:
                data = await ws.wait()
            except Exception:  # websocket.disconnect (OSError) or a dead connection
                break
            if data is None or len(data) > server.max_http_buffer_size:
                break
            try:
                await sock.receive(eio_packet.Packet(encoded_packet=data))
            except eio_exceptions.UnknownPacketError:
                pass
            except eio_exceptions.SocketIsClosedError:
                break
            except Exception:
                server.logger.exception("Unknown receive error")
    finally:
        queue.on_put = None
        writer.ending = True
        await writer.finish()
        await ws.close()
        await sock.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)


__all__ = ["WRITER_ATTR", "LeanQueue", "LeanWebSocket", "serve", "session_closed"]
