"""The event bus port: services publish accepted values, streams subscribe.

The in-process bus (``bus/memory.py``) and the Redis pub/sub bus (``bus/redis.py``, scale-out)
implement it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

Handler = Callable[[str, bytes], None]
#: Called with the bus's new health (True: fan-out between instances works).
StateHandler = Callable[[bool], None]


class EventBus(Protocol):
    """Topic-based fan-out of serialised events."""

    async def publish(self, topic: str, payload: bytes) -> None:
        """Deliver ``payload`` to every subscriber of ``topic``."""
        ...

    async def publish_many(self, topic: str, payloads: Sequence[bytes]) -> None:
        """:meth:`publish` each of ``payloads``, in order, yielding to the loop once (a batch
        of ingested values: one wake-up per batch, not one per value)."""
        ...

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler(topic, payload)`` for each event; returns the unsubscribe function."""
        ...

    @property
    def healthy(self) -> bool:
        """True while events reach the other instances (always, for the in-process bus)."""
        ...

    def watch(self, handler: StateHandler) -> Callable[[], None]:
        """Call ``handler(healthy)`` on every change of health; returns the unwatch function."""
        ...

    def heartbeat_age(self) -> float:
        """Seconds since the bus last heard its own heartbeat (0 for the in-process bus)."""
        ...

    async def close(self) -> None: ...


class Subscribers:
    """The local handlers of each topic: the part every bus shares (in-process or Redis)."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}

    def add(self, topic: str, handler: Handler) -> Callable[[], None]:
        """Register ``handler`` for ``topic``; returns the function that removes it."""
        self._handlers.setdefault(topic, []).append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(topic, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def count(self, topic: str) -> int:
        """Handlers registered for ``topic``."""
        return len(self._handlers.get(topic, ()))

    def deliver(
        self, topic: str, payload: bytes, failed: Callable[[str, BaseException], None]
    ) -> None:
        """Call every handler of ``topic``; one that raises is reported and the rest go on."""
        for handler in list(self._handlers.get(topic, ())):
            try:
                handler(topic, payload)
            except Exception as exc:  # one bad subscriber must not starve the others
                failed(topic, exc)

    def clear(self) -> None:
        self._handlers.clear()
