"""The Socket.IO client manager with indexed rooms does what python-socketio's own does, step
for step, and a disconnect no longer scans every room of the namespace."""

from __future__ import annotations

import random
import time

import socketio

from tokenpulse.api.streams._engineio import IndexedManager


def state(manager: socketio.AsyncManager) -> tuple[object, ...]:
    rooms = {
        ns: {room: dict(members) for room, members in by_room.items()}
        for ns, by_room in manager.rooms.items()
    }
    return rooms, manager.pending_connect, manager.pending_disconnect, manager.callbacks


def test_the_same_state_as_the_stock_manager_after_every_step() -> None:
    stock, indexed = socketio.AsyncManager(), IndexedManager()
    rng = random.Random(7)
    connected: list[tuple[str, str]] = []
    for step in range(2000):
        action = rng.random()
        if action < 0.45 or not connected:
            sid, namespace = f"s{step}", rng.choice(["/", "/chat"])
            for manager in (stock, indexed):
                manager.basic_enter_room(sid, namespace, None, eio_sid=f"e{step}")
                manager.basic_enter_room(sid, namespace, sid, eio_sid=f"e{step}")
                manager.pending_connect.setdefault(namespace, []).append(sid)
            connected.append((sid, namespace))
        elif action < 0.65:
            sid, namespace = rng.choice(connected)
            room = rng.choice(["a", "b", "c"])
            for manager in (stock, indexed):
                manager.basic_enter_room(sid, namespace, room)
        elif action < 0.75:
            sid, namespace = rng.choice(connected)
            room = rng.choice(["a", "b", "c"])
            for manager in (stock, indexed):
                manager.basic_leave_room(sid, namespace, room)
        elif action < 0.8:
            sid, namespace = rng.choice(connected)
            for manager in (stock, indexed):
                manager.pending_disconnect.setdefault(namespace, []).append(sid)
                manager.callbacks[sid] = {0: None}
        else:
            sid, namespace = connected.pop(rng.randrange(len(connected)))
            for manager in (stock, indexed):
                manager.basic_disconnect(sid, namespace)
        assert state(indexed) == state(stock), step
    for sid, namespace in connected:
        indexed.basic_disconnect(sid, namespace)
    assert indexed.rooms == {}
    assert indexed._joined == {}


def test_disconnecting_every_client_grows_linearly() -> None:
    def disconnect_all(manager: socketio.AsyncManager, clients: int) -> float:
        for n in range(clients):
            manager.basic_enter_room(f"s{n}", "/", None, eio_sid=f"e{n}")
            manager.basic_enter_room(f"s{n}", "/", f"s{n}", eio_sid=f"e{n}")
        started = time.process_time()
        for n in range(clients):
            manager.basic_disconnect(f"s{n}", "/")
        return time.process_time() - started

    stock = disconnect_all(socketio.AsyncManager(), 3000)
    indexed = disconnect_all(IndexedManager(), 3000)
    assert indexed * 10 < stock, (indexed, stock)
