"""Alembic migrations, run from code: empty → head → base → head, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from tests.integration.history.builders import T0, ticker
from tests.integration.history.conftest import FreshBackend
from tokenpulse.store.history import migrate
from tokenpulse.store.history._engine import create_history_engine
from tokenpulse.store.history.models import metadata
from tokenpulse.store.history.repository import HistoryRepository

pytestmark = pytest.mark.services

HISTORY_TABLES = {table.name for table in metadata.sorted_tables}


def _schema(connection: Connection) -> tuple[set[str], list[object]]:
    """Table names, and the differences between the database and the models."""
    tables = set(sa.inspect(connection).get_table_names())
    context = MigrationContext.configure(
        connection, opts={"version_table": migrate.VERSION_TABLE, "compare_type": False}
    )
    return tables, compare_metadata(context, metadata)


async def inspect_schema(url: str) -> tuple[set[str], list[object]]:
    engine = create_history_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_schema)
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade(fresh_backend: FreshBackend) -> None:
    url = fresh_backend.url
    assert await migrate.current_revision(url) is None

    await migrate.upgrade(url)
    tables, differences = await inspect_schema(url)
    assert await migrate.current_revision(url) == migrate.head() == "0004"
    assert tables == HISTORY_TABLES | {migrate.VERSION_TABLE}
    assert differences == []  # the migration builds exactly what models.py describes

    repo = HistoryRepository.from_url(url)
    try:
        assert await repo.write_ltp([ticker(T0, "1")]) == 1
    finally:
        await repo.close()

    await migrate.downgrade(url)
    tables, _ = await inspect_schema(url)
    assert await migrate.current_revision(url) is None
    assert tables == {migrate.VERSION_TABLE}

    await migrate.upgrade(url)
    await migrate.upgrade(url)  # already at head: nothing to do
    tables, _ = await inspect_schema(url)
    assert await migrate.current_revision(url) == migrate.head()
    assert tables == HISTORY_TABLES | {migrate.VERSION_TABLE}


async def test_sqlite_upgrade_creates_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "data" / "nested" / "tokenpulse.db"
    url = f"sqlite+aiosqlite:///{target}"

    await migrate.upgrade(url)

    assert target.is_file()
    assert await migrate.current_revision(url) == migrate.head()
    assert migrate.current(url) == migrate.head()  # the CLI's synchronous form, inside a loop too


def test_the_alembic_environment_ships_inside_the_package() -> None:
    folder = migrate.MIGRATIONS_DIR
    assert (folder / "env.py").is_file()
    assert (folder / "script.py.mako").is_file()
    assert [p.name for p in sorted((folder / "versions").glob("0*.py"))] == [
        "0001_initial.py",
        "0002_api_keys.py",
        "0003_store_mode.py",
        "0004_ltp_observed.py",
    ]
