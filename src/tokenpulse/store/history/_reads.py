"""The selects behind :class:`HistoryRepository`'s reads: series, velocities, gaps.

Each read is one or two Core selects on a fresh connection, turned into plain rows or dicts;
none takes the repository's write lock. Database failures surface as ``StoreError``. Series
rows are read through the driver and decoded a column at a time (:mod:`._fetch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tokenpulse.store.history import _gaps, _rollup
from tokenpulse.store.history import _series as series
from tokenpulse.store.history._buckets import floor_to, merge
from tokenpulse.store.history._engine import store_errors
from tokenpulse.store.history._fetch import fetch_columns, fetch_tuples
from tokenpulse.store.history.models import (
    KEY_COLUMNS,
    KIND_TOKEN,
    RAW_TABLES,
    ROLLUP_TABLES,
    from_epoch_seconds,
    token_rollups,
    token_snapshots,
)

Row = dict[str, Any]

#: Trend windows up to this long read raw velocities; longer ones read rollups.
RAW_VELOCITY_SPAN = timedelta(hours=12)
MINUTE_VELOCITY_SPAN = timedelta(days=8)


async def read_series(
    engine: AsyncEngine,
    kind: str,
    key: str,
    start: datetime,
    end: datetime,
    granularity: str,
    fields: Sequence[str] | None,
    max_points: int,
) -> list[Row]:
    g = series.parse_granularity(granularity)
    first, last = series.bounds(start, end)
    key_name = KEY_COLUMNS[kind]
    allowed: tuple[str, ...]
    where: tuple[sa.ColumnElement[bool], ...]
    if g.raw:
        allowed = series.TOKEN_RAW_FIELDS if kind == KIND_TOKEN else series.LTP_RAW_FIELDS
        wanted = series.select_fields(fields, allowed, g)
        table = RAW_TABLES[kind]
        where = (
            table.c[key_name] == key,
            table.c.ts >= from_epoch_seconds(first),
            table.c.ts < from_epoch_seconds(last),
        )
        stmt = sa.select(table.c.ts, *(table.c[f] for f in wanted)).where(*where)
        read = await fetch_columns(engine, stmt.order_by(table.c.ts).limit(max_points + 1))
        if len(read[0]) > max_points:
            total = await fetch(engine, sa.select(sa.func.count()).select_from(table).where(*where))
            series.check_point_limit(total[0][0], g, first, last, max_points)
        return series.as_dicts(("t", *wanted), read)

    allowed = series.TOKEN_ROLLUP_FIELDS if kind == KIND_TOKEN else series.LTP_ROLLUP_FIELDS
    wanted = series.select_fields(fields, allowed, g)
    first = floor_to(first, g.seconds)
    series.check_point_limit(-(-(last - first) // g.seconds), g, first, last, max_points)
    table = ROLLUP_TABLES[kind]
    where = (
        table.c[key_name] == key,
        table.c.bucket_seconds == g.stored,
        table.c.ts >= from_epoch_seconds(first),
        table.c.ts < from_epoch_seconds(last),
    )
    if not g.derived:
        stmt = sa.select(table.c.ts, *(table.c[f] for f in wanted)).where(*where)
        read = await fetch_columns(engine, stmt.order_by(table.c.ts))
        return series.as_dicts(("t", *wanted), read)
    extra = ("velocity_sum", "velocity_count") if kind == KIND_TOKEN else ()
    values = ("open", "high", "low", "close", "market_cap", "volume_24h")
    columns = [
        table.c.ts,
        *(table.c[c] for c in values if c in table.c),
        *(table.c[c] for c in extra),
    ]
    stmt = sa.select(*columns, table.c.samples).where(*where).order_by(table.c.ts)
    parts = [_rollup.rollup_bucket(kind, row) for row in await fetch_tuples(engine, stmt)]
    return [
        {"t": bucket.t, **{name: getattr(bucket, name) for name in wanted}}
        for bucket in merge(parts, g.seconds)
    ]


async def read_velocity_points(
    engine: AsyncEngine, token_id: str, start: datetime, end: datetime
) -> list[tuple[datetime, Decimal]]:
    first, last = series.bounds(start, end)
    span = end - start
    if span <= RAW_VELOCITY_SPAN:
        t = token_snapshots
        stmt = sa.select(t.c.ts, t.c.velocity).where(
            t.c.token_id == token_id, t.c.velocity.is_not(None)
        )
    else:
        t = token_rollups
        seconds = 60 if span <= MINUTE_VELOCITY_SPAN else 3600
        stmt = sa.select(t.c.ts, t.c.velocity).where(
            t.c.token_id == token_id, t.c.bucket_seconds == seconds, t.c.velocity_count > 0
        )
    stmt = stmt.where(t.c.ts >= from_epoch_seconds(first), t.c.ts < from_epoch_seconds(last))
    return [(row[0], row[1]) for row in await fetch(engine, stmt.order_by(t.c.ts))]


async def read_gaps(
    engine: AsyncEngine,
    kind: str,
    key: str,
    start: datetime,
    end: datetime,
    expected: timedelta,
    granularity: str,
) -> list[tuple[datetime, datetime]]:
    g = series.parse_granularity(granularity)
    series.bounds(start, end)
    threshold = 2 * expected
    stmt = _gaps.gap_query(engine.dialect.name, kind, key, g.stored, start, end, threshold)
    rows = await fetch(engine, stmt)
    found = _gaps.holes(rows, start, end, threshold, timedelta(seconds=g.stored))
    if g.stored and found and found[-1][1] == end:
        # The newest minutes are in the raw table before the rollup catches up: a hole at
        # the end of the range is a hole only where the raw rows have none either.
        tail_start = found.pop()[0]
        stmt = _gaps.gap_query(engine.dialect.name, kind, key, 0, tail_start, end, threshold)
        found += _gaps.holes(await fetch(engine, stmt), tail_start, end, threshold)
    return found


async def fetch(engine: AsyncEngine, stmt: Any) -> Sequence[Any]:
    with store_errors("read"):
        async with engine.connect() as conn:
            result = await conn.execute(stmt)
            return result.all()
