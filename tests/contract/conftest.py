"""Fixtures of the OpenAPI contract tests: the real app on a port, fed by fake providers.

Schemathesis, the generated client and Playwright are synchronous, so the app and the fakes
run on an event loop of their own in a thread, for the whole module.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.helpers import wait_for
from tests.server import RunningApp, app_settings, running_app

KEY = "tp_contract_key_0123456789"
START_TIMEOUT = 30.0


class LiveApp:
    """The app and its fakes served from a thread; ``base_url`` once it serves data."""

    def __init__(self, settings: Callable[[dict[str, str]], dict[str, Any]]) -> None:
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.base_url = ""
        self.running: RunningApp | None = None
        self._thread = threading.Thread(target=self._run, name="contract-app", daemon=True)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the test thread, not lost in this one
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with AsyncExitStack() as stack:
            ws = await stack.enter_async_context(FakeKrakenWs(heartbeat_interval=0.2))
            rest = await stack.enter_async_context(FakeKrakenRest())
            gecko = await stack.enter_async_context(FakeCoinGecko())
            urls = {"ws": ws.url, "rest": rest.base_url, "coingecko": gecko.base_url}
            app = await stack.enter_async_context(running_app(app_settings(**self._settings(urls))))
            container = app.container
            await wait_for(
                lambda: (
                    len(container.prices.views()) == len(container.prices.pairs)
                    and len(container.tokens) > 0
                ),
                START_TIMEOUT,
                message="every pair and the tokens to be served",
            )
            self.running = app
            self.base_url = app.base_url
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> LiveApp:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT + 10):
            raise TimeoutError("the contract app did not start")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *_: object) -> None:
        stop = self._stop
        if stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the contract app did not stop"
        if self._error is not None:
            raise self._error


def live_settings(tmp: Path, **overrides: Any) -> Callable[[dict[str, str]], dict[str, Any]]:
    """Settings of an app on fake Kraken (WS + REST) and fake CoinGecko, history in SQLite."""

    def build(urls: dict[str, str]) -> dict[str, Any]:
        return {
            "sources": "kraken,coingecko",
            "kraken_ws_url": urls["ws"],
            "kraken_rest_url": urls["rest"],
            "coingecko_base_url": urls["coingecko"],
            "market_poll_interval": "1s",
            "database_url": f"sqlite+aiosqlite:///{tmp}/history.db",
            **overrides,
        }

    return build


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """The app, auth off and no rate limit, for the whole module."""
    tmp = tmp_path_factory.mktemp("contract")
    with LiveApp(live_settings(tmp, rate_limit_enabled="false")) as app:
        yield app


@pytest.fixture(scope="module")
def openapi_document(live_app: LiveApp) -> dict[str, Any]:
    """The document the live app serves at /openapi.json."""
    response = httpx.get(f"{live_app.base_url}/openapi.json", timeout=10)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document
