"""History-store fixtures: every contract test runs against SQLite and a real PostgreSQL.

PostgreSQL: one database ``tokenpulse_test_<worker>_<random>`` per xdist worker (created on
``TEST_POSTGRES_URL``'s server, migrated once, dropped at the end), emptied before each
test: a worker runs one test at a time, so no other test sees the rows. Tests that drop,
rename or migrate a database get one of their own (:func:`fresh_backend`). Without a
reachable server the PostgreSQL half skips, or fails under ``REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest

from tests.conftest import POSTGRES_URL, require_service
from tests.helpers import wait_for
from tests.postgres import _create_database, _drop_database, _pg_url
from tokenpulse.observability.metrics import Metrics
from tokenpulse.store.history import migrate
from tokenpulse.store.history.models import metadata
from tokenpulse.store.history.repository import HistoryRepository

BACKENDS = ("sqlite", "postgresql")
T = TypeVar("T")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: ``sqlite`` or ``postgresql``."""
    return str(request.param)


@pytest.fixture
async def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A migrated, empty history database of the parametrised backend."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/history/tokenpulse.db"
        await migrate.upgrade(url)
        return url
    url: str = request.getfixturevalue("pg_session_url")
    tables = ", ".join(table.name for table in metadata.sorted_tables)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(f"TRUNCATE {tables}")
    finally:
        await conn.close()
    return url


async def sqlite_threads_finished(before: set[threading.Thread]) -> None:
    """Wait until the aiosqlite worker threads started since ``before`` have ended.

    aiosqlite answers a failed connect from its worker thread a moment later; if the test's
    event loop closed first, that thread fails with "Event loop is closed". Waiting here
    (with the loop still running) keeps each test's threads inside the test.
    """

    def finished() -> bool:
        return not any(
            "_connection_worker_thread" in thread.name and thread.is_alive()
            for thread in set(threading.enumerate()) - before
        )

    await wait_for(finished, timeout=5, message="aiosqlite worker threads ended")


@pytest.fixture
async def repo(db_url: str, metrics: Metrics) -> AsyncIterator[HistoryRepository]:
    """A repository on :func:`db_url`, closed afterwards."""
    before = set(threading.enumerate())
    repository = HistoryRepository.from_url(db_url, metrics=metrics)
    yield repository
    await repository.close()
    await sqlite_threads_finished(before)


@dataclass
class FreshBackend:
    """An empty database of its own that a test may take away and give back."""

    name: str
    url: str
    _path: Path | None = None
    _database: str | None = None

    async def make_unreachable(self) -> None:
        """SQLite: move the directory away. PostgreSQL: rename the database."""
        if self._path is not None:
            self._path.rename(self._path.with_name(self._path.name + "-away"))
            return
        assert self._database is not None
        await _rename(self._database, f"{self._database}_away")

    async def make_reachable(self) -> None:
        """Undo :meth:`make_unreachable`."""
        if self._path is not None:
            self._path.with_name(self._path.name + "-away").rename(self._path)
            return
        assert self._database is not None
        await _rename(f"{self._database}_away", self._database)


async def _rename(old: str, new: str) -> None:
    """Rename a database, first cutting off whoever is connected to it."""
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        for _ in range(50):
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                old,
            )
            try:
                await conn.execute(f'ALTER DATABASE "{old}" RENAME TO "{new}"')
                return
            except asyncpg.ObjectInUseError:
                await asyncio.sleep(0.05)  # a client reconnected between the two statements
        raise AssertionError(f"could not rename database {old}")
    finally:
        await conn.close()


@pytest.fixture
async def fresh_backend(backend: str, tmp_path: Path) -> AsyncIterator[FreshBackend]:
    """An empty (not migrated) database of the parametrised backend, of this test's own."""
    if backend == "sqlite":
        directory = tmp_path / "store"
        before = set(threading.enumerate())
        yield FreshBackend("sqlite", f"sqlite+aiosqlite:///{directory}/tokenpulse.db", directory)
        await sqlite_threads_finished(before)
        return
    require_service("PostgreSQL", POSTGRES_URL, 5432)
    name = await _create_database()
    try:
        yield FreshBackend("postgresql", _pg_url(name), _database=name)
    finally:
        await _drop_database(f"{name}_away")
        await _drop_database(name)
