"""Series rows read through the database driver itself, decoded column by column.

A 7-day 1-minute series is 10 080 rows of up to nine columns. Through SQLAlchemy's result
machinery every value passes a Python-level processor and every row becomes a ``Row``;
here the Core select is compiled once by the engine's dialect (same SQL, same parameters as
SQLAlchemy would send), executed on the driver connection (aiosqlite's
``execute_fetchall``, asyncpg's ``fetch``), and each column is decoded with one C-level
``map``:

* :class:`~tokenpulse.store.history.models.ExactDecimal` columns arrive as text (SQLite stores
  text; on PostgreSQL the select casts NUMERIC to TEXT, the digits PostgreSQL stored, which is
  what the engine's NUMERIC codec would hand ``Decimal``) and become ``Decimal`` through
  ``map(Decimal, column)``, a loop in C, when the column holds no ``None`` (else one
  expression per value). A column equal to one already converted (open = high = low = close
  in every bucket of one sample) reuses its Decimals: one conversion, not four. A set of all
  distinct texts was tried and is slower: ``Decimal(text)`` costs less than hashing;
* :class:`~tokenpulse.store.history.models.UtcSecond`: SQLite's integers become aware UTC
  datetimes; asyncpg already returns aware UTC datetimes.

The values are exactly those of the SQLAlchemy path (``tests/integration/history`` compares
both, digit for digit, on both backends).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from itertools import repeat
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tokenpulse.domain.errors import StoreError
from tokenpulse.store.history._engine import describe_error, store_errors
from tokenpulse.store.history.models import ExactDecimal, UtcSecond

Column = list[Any]

#: What the drivers raise themselves (SQLAlchemy does not wrap them on this path).
_DRIVER_ERRORS = (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


def _decimals(columns: list[Column]) -> None:
    """Replace each column of decimal texts by its Decimals (equal columns converted once)."""
    done: list[tuple[Column, Column]] = []
    for index, texts in enumerate(columns):
        values = next((converted for earlier, converted in done if earlier == texts), None)
        if values is None:
            if None in texts:
                values = [None if text is None else Decimal(text) for text in texts]
            else:
                values = list(map(Decimal, texts))
            done.append((texts, values))
        columns[index] = values


def _sqlite_times(values: Sequence[Any]) -> Column:
    if None in values:
        return [None if v is None else datetime.fromtimestamp(v, UTC) for v in values]
    return list(map(datetime.fromtimestamp, values, repeat(UTC)))


def _compile(engine: AsyncEngine, stmt: sa.Select[Any]) -> tuple[str, list[Any]]:
    """The SQL text and positional parameters SQLAlchemy would send for ``stmt``."""
    dialect = engine.dialect
    compiled = stmt.compile(dialect=dialect)
    params = compiled.construct_params()
    processors = compiled._bind_processors  # the dialect's own bind conversion of each type
    names = compiled.positiontup or ()
    values = []
    for name in names:
        value = params[name]
        processor: Any = processors.get(name)
        values.append(processor(value) if processor is not None else value)
    return compiled.string, values


async def fetch_columns(engine: AsyncEngine, stmt: sa.Select[Any]) -> list[Column]:
    """The rows of ``stmt`` as one decoded list per selected column (all the same length)."""
    sqlite = engine.dialect.name == "sqlite"
    selected = list(stmt.selected_columns)
    if not sqlite:
        stmt = stmt.with_only_columns(
            *(sa.cast(c, sa.Text) if isinstance(c.type, ExactDecimal) else c for c in selected)
        )
    sql, params = _compile(engine, stmt)
    with store_errors("read"):
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            try:
                if sqlite:
                    rows: Sequence[Sequence[Any]] = await driver.execute_fetchall(sql, params)
                else:
                    rows = await driver.fetch(sql, *params)
            except _DRIVER_ERRORS as exc:
                await conn.invalidate()  # the pool must not hand out a broken connection
                raise StoreError(
                    f"history store read failed ({describe_error(exc)})",
                    details={"operation": "read"},
                ) from exc
    columns: list[Column] = [list(c) for c in zip(*rows, strict=True)]
    if not columns:
        return [[] for _ in selected]
    numbers = [i for i, column in enumerate(selected) if isinstance(column.type, ExactDecimal)]
    decoded = [columns[i] for i in numbers]
    _decimals(decoded)
    for index, column in zip(numbers, decoded, strict=True):
        columns[index] = column
    if sqlite:
        for index, selected_column in enumerate(selected):
            if isinstance(selected_column.type, UtcSecond):
                columns[index] = _sqlite_times(columns[index])
    return columns


async def fetch_tuples(engine: AsyncEngine, stmt: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``stmt`` as decoded tuples."""
    return list(zip(*await fetch_columns(engine, stmt)))  # noqa: B905 - equal lengths
