"""The in-process event bus: fan-out inside one process (the embedded default)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tokenpulse.bus.base import Handler


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
