"""End-to-end fixtures: fake Kraken (WS v2 + REST) on loopback and the app on a real port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs


@pytest.fixture
async def kraken_ws() -> AsyncIterator[FakeKrakenWs]:
    async with FakeKrakenWs(heartbeat_interval=0.2) as fake:
        yield fake


@pytest.fixture
async def kraken_rest() -> AsyncIterator[FakeKrakenRest]:
    async with FakeKrakenRest() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client
