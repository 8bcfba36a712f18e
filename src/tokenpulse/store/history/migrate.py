"""Run the history store's Alembic migrations from code (no alembic.ini needed).

The service calls :func:`upgrade` on start for SQLite (an empty file is migrated in place);
``tokenpulse db upgrade`` calls it for any database. The Alembic environment lives inside
the package (``migrations/``), so an installed wheel migrates exactly like a checkout.

Each command runs on one async connection: the Alembic command (synchronous) is executed
through ``AsyncConnection.run_sync`` and finds the connection in ``Config.attributes``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.engine import Connection

from tokenpulse.store.history._engine import create_history_engine, store_errors

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Our own version table, so another Alembic tree in the same database cannot collide.
VERSION_TABLE = "history_alembic_version"


def alembic_config() -> Config:
    """An Alembic Config pointing at the packaged migrations (no ini file)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head() -> str:
    """The newest revision shipped with this version of tokenpulse."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise RuntimeError("no history migrations found")
    return revision


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (SQLite's directory is created).

    Raises StoreError when the database cannot be reached or a migration fails.
    """
    await _run(url, "upgrade", revision)


async def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database at ``url`` down to ``revision`` (``base`` drops every table)."""
    await _run(url, "downgrade", revision)


async def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at; None for an empty database."""
    engine = create_history_engine(url, poolclass=pool.NullPool)
    try:
        with store_errors("migration status"):
            async with engine.connect() as conn:
                return await conn.run_sync(_current)
    finally:
        await engine.dispose()


def current(url: str) -> str | None:
    """Synchronous :func:`current_revision`, for the CLI (works inside a running loop too)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(current_revision(url))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool_:
        return pool_.submit(asyncio.run, current_revision(url)).result()


def _current(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


async def _run(url: str, action: str, revision: str) -> None:
    engine = create_history_engine(url, poolclass=pool.NullPool)
    try:
        with store_errors(f"migration {action}"):
            async with engine.begin() as conn:
                await conn.run_sync(_command, action, revision)
    finally:
        await engine.dispose()


def _command(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)
