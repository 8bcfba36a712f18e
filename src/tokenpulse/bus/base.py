"""The event bus port: services publish accepted values, streams subscribe.

This release ships the in-process bus; the Redis pub/sub bus (scale-out) implements the same
protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

Handler = Callable[[str, bytes], None]


class EventBus(Protocol):
    """Topic-based fan-out of serialised events."""

    async def publish(self, topic: str, payload: bytes) -> None:
        """Deliver ``payload`` to every subscriber of ``topic``."""
        ...

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler(topic, payload)`` for each event; returns the unsubscribe function."""
        ...

    async def close(self) -> None: ...


class InProcessBus:
    """Fan-out inside one process. Handlers must not block; a failing handler is isolated."""

    def __init__(self, on_error: Callable[[str, BaseException], None] | None = None) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._on_error = on_error

    async def publish(self, topic: str, payload: bytes) -> None:
        for handler in list(self._handlers.get(topic, ())):
            try:
                handler(topic, payload)
            except Exception as exc:  # one bad subscriber must not starve the others
                if self._on_error is not None:
                    self._on_error(topic, exc)
        await asyncio.sleep(0)

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        self._handlers.setdefault(topic, []).append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(topic, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def subscriber_count(self, topic: str) -> int:
        return len(self._handlers.get(topic, ()))

    async def close(self) -> None:
        self._handlers.clear()
