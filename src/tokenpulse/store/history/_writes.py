"""Raw-row upserts: the statement, the idempotence filter for backfill, the rollup queue."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tokenpulse.store.history._buckets import floor_to
from tokenpulse.store.history.models import (
    KEY_COLUMNS,
    KIND_TOKEN,
    ORIGIN_LIVE,
    RAW_TABLES,
    epoch_seconds,
    from_epoch_seconds,
    rollup_queue,
)

Row = dict[str, Any]
InsertFactory = Callable[[sa.Table], Any]

_IN_CHUNK = 500
_TOKEN_DATA = ("price", "market_cap", "volume_24h", "circulating_supply", "velocity", "source")
_PAIR_DATA = ("price", "source")


def raw_upsert(insert: InsertFactory, kind: str, origin: str) -> Any:
    """``INSERT … ON CONFLICT (key, ts) DO UPDATE`` for the raw table of ``kind``.

    Live data is the truth: a non-live (backfill) write never replaces a live row. Of two live
    readings of one second, the later one (``observed_us``, where the table has it) stays,
    whichever was written last.
    """
    table = RAW_TABLES[kind]
    stmt = insert(table)
    keys = (KEY_COLUMNS[kind], "ts")
    where: Any = table.c.origin != ORIGIN_LIVE
    if origin == ORIGIN_LIVE:
        where = None
        if "observed_us" in table.c:
            stored, offered = table.c.observed_us, stmt.excluded.observed_us
            where = sa.or_(
                table.c.origin != ORIGIN_LIVE,
                stored.is_(None),
                offered.is_(None),
                offered >= stored,
            )
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
        where=where,
    )


async def not_kept(conn: AsyncConnection, kind: str, values: list[Row]) -> list[Row]:
    """Drop values whose stored row is live or already identical (idempotent backfill)."""
    table = RAW_TABLES[kind]
    key_name = KEY_COLUMNS[kind]
    data = _TOKEN_DATA if kind == KIND_TOKEN else _PAIR_DATA
    stored: dict[tuple[str, int], tuple[Any, ...]] = {}
    by_key: dict[str, list[datetime]] = {}
    for row in values:
        by_key.setdefault(row[key_name], []).append(row["ts"])
    columns = [table.c[key_name], table.c.ts, table.c.origin, *(table.c[c] for c in data)]
    for key, times in by_key.items():
        for i in range(0, len(times), _IN_CHUNK):
            stmt = sa.select(*columns).where(
                table.c[key_name] == key, table.c.ts.in_(times[i : i + _IN_CHUNK])
            )
            for found in await conn.execute(stmt):
                stored[(found[0], epoch_seconds(found[1]))] = tuple(found[2:])
    kept: list[Row] = []
    for row in values:
        existing = stored.get((row[key_name], epoch_seconds(row["ts"])))
        if existing is not None and (
            existing[0] == ORIGIN_LIVE or existing[1:] == tuple(row[c] for c in data)
        ):
            continue
        kept.append(row)
    return kept


async def queue_minutes(
    conn: AsyncConnection, insert: InsertFactory, kind: str, values: list[Row]
) -> None:
    """Mark the minutes these rows touched for the next rollup (same transaction)."""
    key_name = KEY_COLUMNS[kind]
    marked = time.time_ns()
    minutes = {(row[key_name], floor_to(epoch_seconds(row["ts"]), 60)) for row in values}
    stmt = insert(rollup_queue)
    stmt = stmt.on_conflict_do_update(
        index_elements=["kind", "key", "ts"], set_={"marked_ns": stmt.excluded.marked_ns}
    )
    await conn.execute(
        stmt,
        [
            {"kind": kind, "key": key, "ts": from_epoch_seconds(minute), "marked_ns": marked}
            for key, minute in sorted(minutes)
        ],
    )
