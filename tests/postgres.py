"""PostgreSQL for tests: a database of this xdist worker's own, migrated once, dropped at the end.

Names are ``tokenpulse_test_<worker>_<random>`` (worker ``gw0``… or ``main``), so parallel
workers, and other test runs on the same server, never share a database.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL, WORKER, require_service
from tokenpulse.store.history import migrate

T = TypeVar("T")


def _pg_url(database: str) -> str:
    url = make_url(POSTGRES_URL).set(drivername="postgresql+asyncpg", database=database)
    return url.render_as_string(hide_password=False)


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def database_name() -> str:
    """A new database name, unique to this worker and run."""
    return f"tokenpulse_test_{WORKER}_{uuid.uuid4().hex[:12]}"


async def _create_database() -> str:
    name = database_name()
    await _admin(f'CREATE DATABASE "{name}"')
    return name


async def _drop_database(name: str) -> None:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run_apart(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a loop of its own in a helper thread (callable inside a loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def session_database() -> Iterator[str]:
    """Create and migrate a database, yield its URL, drop it (the ``pg_session_url`` fixture)."""
    require_service("PostgreSQL", POSTGRES_URL, 5432)
    name = _run_apart(_create_database())
    url = _pg_url(name)
    try:
        _run_apart(migrate.upgrade(url))
        yield url
    finally:
        _run_apart(_drop_database(name))
