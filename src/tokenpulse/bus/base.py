"""The event bus port: services publish accepted values, streams subscribe.

The in-process bus (``bus/memory.py``) and the Redis pub/sub bus (``bus/redis.py``, scale-out)
implement it.
"""

from __future__ import annotations

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
