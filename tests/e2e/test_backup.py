"""``tokenpulse db backup`` while the service writes, ``tokenpulse db restore`` into a new
database, and a service on the restored database serves the same history — on SQLite (online
backup API) and on a real PostgreSQL (pg_dump / pg_restore)."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import POSTGRES_URL, require_service
from tests.e2e._replay import child_env
from tests.helpers import wait_for
from tests.postgres import _create_database, _drop_database, _pg_url
from tests.server import RunningApp, app_settings, running_app
from tokenpulse.store.history import migrate

DEADLINE = 30.0


async def tokenpulse(*args: str, database_url: str) -> tuple[int, str]:
    """Run the ``tokenpulse`` command line in a process of its own."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tokenpulse",
        *args,
        env=child_env(DATABASE_URL=database_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def raw_history(
    http: httpx.AsyncClient, app: RunningApp, start: datetime, end: datetime
) -> Any:
    response = await http.get(
        f"{app.base_url}/api/v1/tokens/bitcoin/history",
        params={"from": start.isoformat(), "to": end.isoformat(), "granularity": "raw"},
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["points"]


@pytest.fixture(params=["sqlite", "postgresql"])
async def databases(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str]]:
    """The URLs of a migrated database to back up and of an empty one to restore into."""
    if request.param == "sqlite":
        source = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
        await migrate.upgrade(source)
        yield source, f"sqlite+aiosqlite:///{tmp_path / 'restored' / 'history.db'}"
        return
    require_service("PostgreSQL", POSTGRES_URL, 5432)
    names = [await _create_database(), await _create_database()]
    try:
        await migrate.upgrade(_pg_url(names[0]))
        yield _pg_url(names[0]), _pg_url(names[1])
    finally:
        for name in names:
            await _drop_database(name)


async def test_a_backup_taken_while_serving_restores_into_a_new_database_with_the_same_history(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    live_url, restored_url = databases
    backup_file = tmp_path / "backups" / "tokenpulse.backup"
    started = datetime.now(UTC) - timedelta(seconds=1)
    async with httpx.AsyncClient(timeout=10) as http:
        async with running_app(
            app_settings(
                sources="replay",
                database_url=live_url,
                rate_limit_enabled=False,
                replay_speed=3600,  # hourly recorded frames: bitcoin moves every second
            )
        ) as live:
            await wait_for(live.container.tokens.views, DEADLINE, message="token metrics")

            async def live_rows() -> bool:
                return len(await raw_history(http, live, started, datetime.now(UTC))) >= 4

            await wait_for(live_rows, DEADLINE, message="four seconds of live history")
            # The window ends a second before the newest row written so far: a restored
            # replay continues after the last row it finds, never inside the window.
            written = await raw_history(http, live, started, datetime.now(UTC))
            until = datetime.fromisoformat(written[-1]["t"]) - timedelta(seconds=1)
            expected = await raw_history(http, live, started, until)
            assert len(expected) >= 2, written
            code, out = await tokenpulse("db", "backup", str(backup_file), database_url=live_url)
            assert code == 0, out
            assert "backed up" in out
            assert await raw_history(http, live, started, until) == expected  # a settled range
            again, out = await tokenpulse("db", "backup", str(backup_file), database_url=live_url)
            assert again == 1  # never overwritten without --force
            assert "--force" in out

        code, out = await tokenpulse("db", "restore", str(backup_file), database_url=restored_url)
        assert code == 0, out
        async with running_app(
            app_settings(sources="replay", database_url=restored_url, rate_limit_enabled=False)
        ) as app:
            await wait_for(app.container.tokens.views, DEADLINE, message="token metrics")
            restored = await raw_history(http, app, started, until)
        assert restored == expected

        code, out = await tokenpulse("db", "restore", str(backup_file), database_url=restored_url)
        assert code == 1  # a non-empty database is replaced only with --force
        assert "--force" in out


def test_a_corrupt_backup_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tokenpulse.cli import app

    bogus = tmp_path / "bogus.backup"
    bogus.write_bytes(b"not a database at all" * 100)
    target = tmp_path / "target.db"
    result = CliRunner().invoke(
        app,
        ["db", "restore", str(bogus)],
        env={"DATABASE_URL": f"sqlite+aiosqlite:///{target}"},
    )
    assert result.exit_code == 1
    assert "restore failed" in result.output
    assert not target.exists()
    with sqlite3.connect(bogus) as db, pytest.raises(sqlite3.DatabaseError):
        db.execute("SELECT 1 FROM sqlite_master").fetchall()
