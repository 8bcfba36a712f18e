"""API-layer fixtures: the real app in process behind ``httpx.ASGITransport``.

The app is built by :func:`tests.helpers.build_app` on in-memory adapters and the replay
source, here playing only the recorded Kraken snapshots, so every pair has one known value.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.kraken_ws import RECORDED_V2_FRAMES
from tests.helpers import asgi_client, build_app, container_of, in_memory_settings, wait_for

PAIRS = ["BTC/USD", "ETH/USD", "LTC/USD", "XRP/USD"]


def recorded_snapshots(folder: Path) -> Path:
    """A replay file of the recorded snapshot frames only (the values never change)."""
    lines = [
        line
        for line in RECORDED_V2_FRAMES.read_text(encoding="utf-8").splitlines()
        if json.loads(line).get("type") == "snapshot"
    ]
    path = folder / "snapshots.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return build_app(in_memory_settings(replay_path=str(recorded_snapshots(tmp_path))))


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the started app, once every pair and some tokens are served."""
    container = container_of(app)
    async with asgi_client(app) as http:
        # Watched on the services, not polled over HTTP: polling would spend rate-limit tokens.
        await wait_for(
            lambda: len(container.prices.views()) == len(PAIRS) and len(container.tokens) > 0,
            10,
            message="the replay to serve every pair and some tokens",
        )
        yield http
