"""Shared fixtures: real services (skip, or fail under REQUIRE_SERVICES=1), hermetic state.

The suite runs in parallel (pytest-xdist): nothing here is shared between workers. Each test
gets a Redis key prefix of its own (deleted afterwards), each worker a PostgreSQL database of
its own (``tokenpulse_test_<worker>_<random>``, dropped at the end), and ports come from the
worker's own block (:func:`tests.fakes._loopback.free_port`).

Hypothesis has two profiles: ``dev`` (the default: quick, random) and ``ci`` (more
examples, derandomized so a CI run is reproducible, no deadline on shared machines). Pick
one with ``HYPOTHESIS_PROFILE=ci``; ``.ci/run`` does.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest
import stamina
from hypothesis import HealthCheck, settings

from tests.helpers import FakeClock
from tokenpulse.observability.metrics import Metrics

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
"""This process's xdist worker id (``gw0``, ``gw1`` …), or ``main`` without xdist."""

# Explicit ``@settings(max_examples=…)`` on a test still wins over the profile.
settings.register_profile("dev", max_examples=50)
settings.register_profile(
    "ci",
    max_examples=200,
    derandomize=True,  # the same examples on every run: a red CI run reproduces locally
    database=None,  # nothing learned from earlier runs: with derandomize, runs are identical
    deadline=None,  # a shared CI machine stalls; timing is not what these tests check
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],  # a loaded machine is not a slow strategy
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def require_service(name: str, url: str, default_port: int) -> None:
    """Skip when the service is not reachable, or fail when REQUIRE_SERVICES=1."""
    if _reachable(url, default_port):
        return
    message = f"{name} is not reachable at {url}"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} and REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(f"{message} (set REQUIRE_SERVICES=1 to make this a failure)")


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", REDIS_URL, 6379)
    return REDIS_URL


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    import redis.asyncio as redis

    prefix = f"tokenpulse-test:{WORKER}:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(autouse=True)
def _clean_environ(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Tests never see the developer's settings: no tokenpulse variables, no ./config.yaml."""
    from tokenpulse.settings import Settings

    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("CONFIG_FILE", raising=False)


@pytest.fixture(autouse=True)
def _stamina_testing() -> Iterator[None]:
    """Provider retries keep their attempt counts but skip stamina's backoff waits."""
    with stamina.set_testing(True, attempts=1_000, cap=True):
        yield


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves by hand (inject it where code takes ``clock=``)."""
    return FakeClock()


@pytest.fixture
def metrics() -> Metrics:
    """A fresh metrics registry of the test's own."""
    return Metrics()


@pytest.fixture(scope="session")
def pg_session_url() -> Iterator[str]:
    """A migrated PostgreSQL database of this xdist worker's own (dropped at the end)."""
    from tests.postgres import session_database

    yield from session_database()
