"""The in-process event bus: fan-out inside one process (the embedded default)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from tokenpulse.bus.base import Handler, StateHandler, Subscribers


class InProcessBus:
    """Fan-out inside one process. Handlers must not block; a failing handler is isolated."""

    def __init__(self, on_error: Callable[[str, BaseException], None] | None = None) -> None:
        self._subscribers = Subscribers()
        self._on_error = on_error

    async def publish(self, topic: str, payload: bytes) -> None:
        self._subscribers.deliver(topic, payload, self._failed)
        await asyncio.sleep(0)

    async def publish_many(self, topic: str, payloads: Sequence[bytes]) -> None:
        for payload in payloads:
            self._subscribers.deliver(topic, payload, self._failed)
        await asyncio.sleep(0)

    def _failed(self, topic: str, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(topic, exc)

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        return self._subscribers.add(topic, handler)

    @property
    def healthy(self) -> bool:
        """Always: there is no other instance to reach."""
        return True

    def watch(self, handler: StateHandler) -> Callable[[], None]:
        """The in-process bus never changes health: nothing to watch."""
        return lambda: None

    def heartbeat_age(self) -> float:
        """No heartbeat to wait for: always current."""
        return 0.0

    def subscriber_count(self, topic: str) -> int:
        return self._subscribers.count(topic)

    async def close(self) -> None:
        self._subscribers.clear()
