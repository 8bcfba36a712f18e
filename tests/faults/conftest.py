"""Fault-injection fixtures: TCP proxies in front of the real Redis and PostgreSQL, and the
fake Kraken feeds. The service under test connects through a proxy; the test cuts, stalls
and restores it (``tests/faults/proxy.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.faults.proxy import TcpProxy


@pytest.fixture
async def redis_proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    """A proxy to the real Redis; ``proxied_redis_url`` is the URL through it."""
    parts = urlsplit(redis_url)
    async with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379) as proxy:
        yield proxy


@pytest.fixture
def proxied_redis_url(redis_url: str, redis_proxy: TcpProxy) -> str:
    parts = urlsplit(redis_url)
    return parts._replace(netloc=f"127.0.0.1:{redis_proxy.port}").geturl()


@pytest.fixture
def pg_test_url() -> Iterator[str]:
    """A migrated PostgreSQL database of this test's own: a history store remembers whether
    it holds live or replay data (SPEC §3.6), so a shared one would refuse one of the two."""
    from tests.postgres import session_database

    yield from session_database()


@pytest.fixture
async def pg_proxy(pg_test_url: str) -> AsyncIterator[TcpProxy]:
    """A proxy to the real PostgreSQL (this test's migrated database)."""
    url = make_url(pg_test_url)
    async with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


@pytest.fixture
def proxied_pg_url(pg_test_url: str, pg_proxy: TcpProxy) -> str:
    url = make_url(pg_test_url).set(host="127.0.0.1", port=pg_proxy.port)
    return url.render_as_string(hide_password=False)


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


@pytest.fixture
async def coingecko() -> AsyncIterator[FakeCoinGecko]:
    async with FakeCoinGecko() as fake:
        yield fake
