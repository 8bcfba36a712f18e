"""Engine creation and error translation shared by the repository and the migrations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tokenpulse.domain.errors import StoreError

SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
_PLAIN_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}
_URL_TEXT = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_MAX_REASON = 200


def normalize_url(url: str | URL) -> URL:
    """The async-driver form of a database URL (``postgresql://`` -> ``postgresql+asyncpg://``).

    Raises ValueError (without echoing the URL, which may hold a password) for anything that
    is not SQLite or PostgreSQL.
    """
    parsed = make_url(url)
    driver = _PLAIN_DRIVERS.get(parsed.drivername, parsed.drivername)
    if driver not in SUPPORTED_DRIVERS:
        raise ValueError(
            f"unsupported database driver {parsed.drivername!r}: "
            f"use {' or '.join(d + '://' for d in SUPPORTED_DRIVERS)}"
        )
    return parsed.set(drivername=driver)


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL (None for PostgreSQL and in-memory databases)."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def create_history_engine(url: str | URL, **engine_kw: Any) -> AsyncEngine:
    """An async engine for the history store.

    SQLite: the file's parent directory is created, and every connection runs in WAL mode
    (readers are not blocked by the single writer) with ``synchronous=NORMAL``.
    PostgreSQL: connections are pinged before use so the pool recovers after a restart.
    """
    parsed = normalize_url(url)
    path = sqlite_file(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        engine_kw.setdefault("pool_pre_ping", True)
    engine = create_async_engine(parsed, **engine_kw)
    if path is not None:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    elif parsed.get_backend_name() == "postgresql":
        event.listen(engine.sync_engine, "connect", _numeric_as_text)
    return engine


def _numeric_as_text(dbapi_connection: Any, _record: Any) -> None:
    """Exchange NUMERIC with asyncpg as text, decoded by ``Decimal`` itself.

    asyncpg's binary decoder returns 120000 as ``Decimal('1.2E+5')`` (same value, other
    digits); PostgreSQL's text form keeps the stored digits, and ``Decimal(text)`` runs in C
    inside asyncpg instead of as a Python call per value in SQLAlchemy.
    """
    dbapi_connection.run_async(
        lambda connection: connection.set_type_codec(
            "numeric", schema="pg_catalog", encoder=str, decoder=Decimal, format="text"
        )
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def describe_error(exc: BaseException) -> str:
    """A one-line reason for a database failure: driver error class and its first line.

    SQLAlchemy's own message appends the statement and a documentation URL; only the
    driver's message is used, cut at any ``[SQL`` marker, with URLs removed.
    """
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    text = text.split("[SQL", 1)[0].strip()
    text = _URL_TEXT.sub("<url>", text)[:_MAX_REASON]
    name = type(orig).__name__
    return f"{name}: {text}" if text else name


@contextmanager
def store_errors(operation: str) -> Iterator[None]:
    """Turn any database or connection failure inside the block into :class:`StoreError`."""
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(
            f"history store {operation} failed ({describe_error(exc)})",
            details={"operation": operation},
        ) from exc
