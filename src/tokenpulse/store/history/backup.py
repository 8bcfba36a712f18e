"""Backup and restore of the history database (``tokenpulse db backup|restore``).

SQLite: SQLite's online backup API (:meth:`sqlite3.Connection.backup`) copies the database
page by page while the service keeps writing, into a consistent snapshot; the copy is
checked with ``PRAGMA integrity_check``. Restore uses the same API the other way round.

PostgreSQL: PostgreSQL's own tools, never a home-made dump::

    pg_dump --format=custom --no-owner --no-privileges --file=PATH postgresql://USER@HOST:PORT/DB
    pg_restore --no-owner --no-privileges --exit-on-error --dbname=postgresql://… PATH

(``--clean --if-exists`` added with ``--force``, to replace a database that has tables.)

with the password passed in ``PGPASSWORD`` (never on a command line other users can see).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from tokenpulse.domain.errors import StoreError
from tokenpulse.store.history.migrate import VERSION_TABLE

PAGES_PER_STEP = 1024  # the writer waits at most one step's copy for its lock


@dataclass(frozen=True, slots=True)
class BackupResult:
    """What a backup or restore did, for the command's one-line report."""

    kind: str  # "sqlite" or "postgresql"
    source: str
    target: str
    size_bytes: int


def sqlite_path(url: URL) -> Path:
    """The file of a ``sqlite…:///path`` URL (in-memory databases cannot be backed up)."""
    database = url.database
    if not database or database == ":memory:":
        raise StoreError("an in-memory SQLite database has nothing to back up")
    return Path(database)


def libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A ``postgresql://`` URL for libpq tools (no password in it) and the environment to add."""
    plain = url.set(drivername="postgresql", password=None)
    env = {"PGPASSWORD": url.password} if url.password else {}
    return plain.render_as_string(hide_password=False), env


def backup(database_url: str, target: Path, *, overwrite: bool = False) -> BackupResult:
    """Copy the history database at ``database_url`` into the file ``target``."""
    url = make_url(database_url)
    if target.exists() and not overwrite:
        raise StoreError(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    if url.get_backend_name() == "sqlite":
        source = sqlite_path(url)
        if not source.exists():
            raise StoreError(f"no SQLite database at {source}")
        _sqlite_copy(source, target)
        return BackupResult("sqlite", str(source), str(target), target.stat().st_size)
    if url.get_backend_name() == "postgresql":
        dsn, env = libpq(url)
        _run(
            [
                "pg_dump",
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--file={target}",
                dsn,
            ],
            env,
        )
        return BackupResult("postgresql", _safe(url), str(target), target.stat().st_size)
    raise StoreError(f"backups of {url.get_backend_name()} databases are not supported")


def restore(backup_file: Path, database_url: str, *, overwrite: bool = False) -> BackupResult:
    """Restore ``backup_file`` (made by :func:`backup`) into the database at ``database_url``."""
    url = make_url(database_url)
    if not backup_file.is_file():
        raise StoreError(f"no backup file at {backup_file}")
    if url.get_backend_name() == "sqlite":
        target = sqlite_path(url)
        if target.exists() and target.stat().st_size > 0 and not overwrite:
            raise StoreError(f"{target} exists; pass --force to replace its contents")
        target.parent.mkdir(parents=True, exist_ok=True)
        _check_sqlite(backup_file)
        _sqlite_copy(backup_file, target)
        return BackupResult("sqlite", str(backup_file), str(target), target.stat().st_size)
    if url.get_backend_name() == "postgresql":
        dsn, env = libpq(url)
        command = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error"]
        if overwrite:
            command += ["--clean", "--if-exists"]
        else:
            probe = f"SELECT to_regclass('{VERSION_TABLE}') IS NOT NULL"
            if _run(["psql", "--no-psqlrc", "-tA", "-c", probe, dsn], env).strip() == "t":
                raise StoreError(f"{_safe(url)} is not empty; pass --force to replace its contents")
        _run([*command, f"--dbname={dsn}", str(backup_file)], env)
        return BackupResult("postgresql", str(backup_file), _safe(url), backup_file.stat().st_size)
    raise StoreError(f"restores into {url.get_backend_name()} databases are not supported")


def _sqlite_copy(source: Path, target: Path) -> None:
    """Online backup ``source`` → ``target``, then check the copy."""
    try:
        with (
            sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src,
            sqlite3.connect(target) as dst,
        ):
            src.backup(dst, pages=PAGES_PER_STEP)
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite backup {source} → {target} failed: {exc}") from exc
    _check_sqlite(target)


def _check_sqlite(path: Path) -> None:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            (verdict,) = db.execute("PRAGMA integrity_check").fetchone()
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as exc:
        raise StoreError(f"{path} is not a readable SQLite database: {exc}") from exc
    if verdict != "ok":
        raise StoreError(f"{path} failed SQLite's integrity check: {verdict}")
    if VERSION_TABLE not in tables:
        raise StoreError(f"{path} is not a tokenpulse history database (no {VERSION_TABLE})")


def _run(command: list[str], env: dict[str, str]) -> str:
    if shutil.which(command[0]) is None:
        raise StoreError(f"{command[0]} is not installed (PostgreSQL's client tools)")
    result = subprocess.run(  # noqa: S603 (fixed tool, arguments are ours)
        command,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if result.returncode != 0:
        raise StoreError(f"{command[0]} failed: {result.stderr.strip()[-500:]}")
    return result.stdout


def _safe(url: URL) -> str:
    return url.render_as_string(hide_password=True)


__all__ = ["BackupResult", "backup", "libpq", "restore"]
