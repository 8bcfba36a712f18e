"""Service-layer fixtures: the container wired by the production bootstrap with in-memory
adapters (memory cache, in-process bus, no history), never started, so nothing ingests and
each test drives the services itself (cosmicpython's ``tests/unit/test_handlers.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.helpers import in_memory_settings
from tokenpulse.bootstrap import Container
from tokenpulse.bus.memory import InProcessBus
from tokenpulse.bus.topics import LTP_TOPIC, TOKENS_TOPIC
from tokenpulse.runtime import create_runtime


class BusRecorder:
    """Every payload the bus delivers, by topic, as a subscriber sees it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []

    def __call__(self, topic: str, payload: bytes) -> None:
        self.events.append((topic, payload))

    def on(self, topic: str) -> list[bytes]:
        """The payloads delivered on ``topic``, in order."""
        return [payload for seen, payload in self.events if seen == topic]


@pytest.fixture
async def container() -> AsyncIterator[Container]:
    """The app's services on in-memory adapters, closed afterwards."""
    runtime = create_runtime(in_memory_settings())
    built = runtime.container
    assert isinstance(built.bus, InProcessBus)  # the composition root picked the fakes
    try:
        yield built
    finally:
        await runtime.stop()


@pytest.fixture
def bus_events(container: Container) -> BusRecorder:
    """A subscriber on both topics the services publish on."""
    recorder = BusRecorder()
    container.bus.subscribe(LTP_TOPIC, recorder)
    container.bus.subscribe(TOKENS_TOPIC, recorder)
    return recorder
