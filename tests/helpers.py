"""Small test helpers: wait on a condition with a deadline instead of sleeping, load recorded
provider answers, and build the app the way production does (one call site for the factory)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from hypothesis import strategies as st

from tokenpulse.api.app import create_app
from tokenpulse.bootstrap import Container
from tokenpulse.runtime import create_runtime
from tokenpulse.settings import Settings, load_settings

POLL_INTERVAL = 0.01


# ASYNC109 is ignored on purpose: the deadline is the point of this polling helper.
async def wait_for(
    predicate: Callable[[], object],
    timeout: float = 5.0,  # noqa: ASYNC109
    *,
    message: str | None = None,
) -> float:
    """Poll ``predicate`` (sync or async) every ~10 ms until it is truthy; fail at the deadline.

    Returns the seconds it took, so a test can also bound how fast something happened.
    """
    start = time.monotonic()
    deadline = start + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"condition not met within {timeout:.2f}s: {what}")
        await asyncio.sleep(POLL_INTERVAL)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- recorded provider answers (the parser golden tests) -----------------------------------

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECEIVED = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
"""The ``received_at`` the parser tests hand to the parsers."""


def recorded_loader(provider: str) -> Callable[[str], Any]:
    """``load(name)`` for ``tests/fixtures/<provider>/``: a recorded answer decoded as the
    client decodes it, floats as Decimal."""
    folder = FIXTURES / provider

    def load(name: str) -> Any:
        """A recorded answer decoded as the client decodes it: floats as Decimal."""
        return json.loads((folder / name).read_text(encoding="utf-8"), parse_float=Decimal)

    return load


ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.floats()
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
"""Any JSON-like value, with Decimal and non-finite numbers too: for "never raises" tests."""


# -- the app, in process ------------------------------------------------------------------

IN_MEMORY: dict[str, Any] = {
    "sources": "replay",
    "cache_backend": "memory",
    "history_enabled": False,
    "log_level": "warning",
}
"""Settings of an instance that needs nothing outside the process: the replay source, the
memory cache, the in-process bus, no history store."""


def in_memory_settings(**overrides: Any) -> Settings:
    """Settings from defaults < :data:`IN_MEMORY` < ``overrides`` (no environment, no files)."""
    return load_settings(None, {}, overrides={**IN_MEMORY, **overrides}).settings


def build_app(settings: Settings) -> Any:
    """The ASGI app for ``settings``, wired by the same composition root as production.

    The one place the tests outside ``tests/e2e`` call the app factory; the app has
    ``.container`` and ``.runtime`` (what the lifespan starts and stops).
    """
    runtime = create_runtime(settings)
    app = create_app(runtime.container, lifecycle=runtime)
    app.runtime = runtime
    return app


def container_of(app: Any) -> Container:
    """The container an app from :func:`build_app` runs on."""
    container: Container = app.container
    return container


@contextlib.asynccontextmanager
async def asgi_client(app: Any, *, start: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx`` client that calls ``app`` in process (``httpx.ASGITransport``).

    ASGITransport sends no lifespan events, so with ``start`` the app's container is started
    here, as the lifespan would, and stopped when the block exits; without it, nothing
    ingests and the test feeds the services itself.
    """
    runtime = app.runtime
    if start:
        await runtime.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://tokenpulse.test"
        ) as client:
            yield client
    finally:
        await runtime.stop()
