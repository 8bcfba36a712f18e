"""The rollup job: recompute the 1m buckets the queue marks, then their hours, then days.

Runs inside one transaction per key. 1m buckets are built from raw rows, 1h from 1m and 1d
from 1h, so a late sample (or a backfill) touching one minute recomputes exactly one
bucket at each level, and raw retention never changes a coarser bucket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tokenpulse.store.history._buckets import Bucket, floor_to, merge, runs, sample
from tokenpulse.store.history.models import (
    KEY_COLUMNS,
    KIND_TOKEN,
    RAW_TABLES,
    ROLLUP_SECONDS,
    ROLLUP_TABLES,
    epoch_seconds,
    from_epoch_seconds,
    ltp_rollups,
    ltp_samples,
    rollup_queue,
    token_rollups,
    token_snapshots,
)

InsertFactory = Callable[[sa.Table], Any]

_TOKEN_VALUES = ("open", "high", "low", "close", "market_cap", "volume_24h")
_PAIR_VALUES = ("open", "high", "low", "close")
_DAY = 86400


async def roll_pending(engine: AsyncEngine, insert: InsertFactory, now: datetime) -> dict[str, int]:
    """Roll up every queued minute that ended by ``now``: one transaction per key.

    A queue entry is deleted only if nobody re-marked it meanwhile (same ``marked_ns``), so
    a write that lands during the rollup is rolled up next time.
    """
    q = rollup_queue
    closed = from_epoch_seconds(epoch_seconds(now) - 60)
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(q.c.kind, q.c.key, q.c.ts, q.c.marked_ns)
            .where(q.c.ts <= closed)
            .order_by(q.c.kind, q.c.key, q.c.ts)
        )
        pending: dict[tuple[str, str], list[tuple[datetime, int]]] = {}
        for kind, key, ts, marked in result:
            pending.setdefault((kind, key), []).append((ts, marked))
    done = sa.delete(q).where(
        q.c.kind == sa.bindparam("b_kind"),
        q.c.key == sa.bindparam("b_key"),
        q.c.ts == sa.bindparam("b_ts", type_=q.c.ts.type),
        q.c.marked_ns == sa.bindparam("b_marked"),
    )
    totals: dict[str, int] = {}
    for (kind, key), marks in pending.items():
        async with engine.begin() as conn:
            minutes = [epoch_seconds(ts) for ts, _ in marks]
            counts = await roll_key(conn, insert, kind, key, minutes)
            await conn.execute(
                done,
                [
                    {"b_kind": kind, "b_key": key, "b_ts": ts, "b_marked": marked}
                    for ts, marked in marks
                ],
            )
        for name, count in counts.items():
            totals[name] = totals.get(name, 0) + count
    return totals


async def delete_old(conn: AsyncConnection, raw_cut: int, rollup_cut: int) -> dict[str, int]:
    """Delete raw seconds and rollup buckets that ended by the cut-offs (unix seconds)."""
    deleted: dict[str, int] = {}
    for table in (token_snapshots, ltp_samples):
        stmt = sa.delete(table).where(table.c.ts < from_epoch_seconds(raw_cut))
        deleted[table.name] = (await conn.execute(stmt)).rowcount
    for table in (token_rollups, ltp_rollups):
        total = 0
        for seconds in ROLLUP_SECONDS:
            stmt = sa.delete(table).where(
                table.c.bucket_seconds == seconds,
                table.c.ts <= from_epoch_seconds(rollup_cut - seconds),
            )
            total += (await conn.execute(stmt)).rowcount
        deleted[table.name] = total
    return deleted


async def roll_key(
    conn: AsyncConnection, insert: InsertFactory, kind: str, key: str, minutes: Sequence[int]
) -> dict[str, int]:
    """Recompute every bucket containing one of ``minutes`` (unix seconds) for one key.

    Returns how many buckets were written per level, e.g. ``{"token_1m": 3, ...}``.
    """
    counts: dict[str, int] = {}
    dirty = sorted(set(minutes))
    finer = 0
    for seconds in ROLLUP_SECONDS:
        starts = sorted({floor_to(m, seconds) for m in dirty})
        wanted = set(starts)
        buckets: list[Bucket] = []
        for first, last in runs(starts, join_within=seconds * 60, max_span=max(_DAY, 31 * seconds)):
            parts = await _parts(conn, kind, key, finer, first, last + seconds)
            buckets.extend(b for b in merge(parts, seconds) if b.start in wanted)
        if buckets:
            await _upsert(conn, insert, kind, key, seconds, buckets)
        counts[f"{kind}_{_label(seconds)}"] = len(buckets)
        finer = seconds
    return counts


async def _parts(
    conn: AsyncConnection, kind: str, key: str, finer: int, start: int, end: int
) -> Iterable[Bucket]:
    """The raw samples (``finer == 0``) or the ``finer`` buckets in ``[start, end)``."""
    lo, hi = from_epoch_seconds(start), from_epoch_seconds(end)
    key_column = KEY_COLUMNS[kind]
    if finer == 0:
        raw = RAW_TABLES[kind]
        if kind == KIND_TOKEN:
            stmt = sa.select(
                raw.c.ts, raw.c.price, raw.c.market_cap, raw.c.volume_24h, raw.c.velocity
            )
        else:
            stmt = sa.select(raw.c.ts, raw.c.price)
        stmt = stmt.where(raw.c[key_column] == key, raw.c.ts >= lo, raw.c.ts < hi)
        result = await conn.execute(stmt.order_by(raw.c.ts))
        return [sample(*row) for row in result]
    table = ROLLUP_TABLES[kind]
    columns = [table.c.ts, *(table.c[name] for name in _values(kind))]
    if kind == KIND_TOKEN:
        columns += [table.c.velocity_sum, table.c.velocity_count]
    stmt = sa.select(*columns, table.c.samples).where(
        table.c[key_column] == key,
        table.c.bucket_seconds == finer,
        table.c.ts >= lo,
        table.c.ts < hi,
    )
    result = await conn.execute(stmt.order_by(table.c.ts))
    return [rollup_bucket(kind, row) for row in result]


def rollup_bucket(kind: str, row: Sequence[Any]) -> Bucket:
    """A stored rollup row (ts, values…, [velocity_sum, velocity_count,] samples) as a Bucket."""
    if kind == KIND_TOKEN:
        ts, open_, high, low, close, market_cap, volume, v_sum, v_count, samples = row
        return Bucket(
            start=_epoch(ts),
            open=open_,
            high=high,
            low=low,
            close=close,
            market_cap=market_cap,
            volume_24h=volume,
            velocity_sum=v_sum,
            velocity_count=v_count,
            samples=samples,
        )
    ts, open_, high, low, close, samples = row
    return Bucket(start=_epoch(ts), open=open_, high=high, low=low, close=close, samples=samples)


def rollup_values(kind: str, key: str, seconds: int, bucket: Bucket) -> dict[str, Any]:
    """The row of ``bucket`` for the rollup table of ``kind``."""
    values: dict[str, Any] = {
        KEY_COLUMNS[kind]: key,
        "bucket_seconds": seconds,
        "ts": bucket.t,
        "open": bucket.open,
        "high": bucket.high,
        "low": bucket.low,
        "close": bucket.close,
        "samples": bucket.samples,
    }
    if kind == KIND_TOKEN:
        values.update(
            market_cap=bucket.market_cap,
            volume_24h=bucket.volume_24h,
            velocity=bucket.velocity,
            velocity_sum=bucket.velocity_sum,
            velocity_count=bucket.velocity_count,
        )
    return values


async def _upsert(
    conn: AsyncConnection,
    insert: InsertFactory,
    kind: str,
    key: str,
    seconds: int,
    buckets: Sequence[Bucket],
) -> None:
    table = ROLLUP_TABLES[kind]
    stmt = insert(table)
    keys = (KEY_COLUMNS[kind], "bucket_seconds", "ts")
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
    )
    await conn.execute(stmt, [rollup_values(kind, key, seconds, b) for b in buckets])


def _values(kind: str) -> tuple[str, ...]:
    return _TOKEN_VALUES if kind == KIND_TOKEN else _PAIR_VALUES


def _epoch(moment: Any) -> int:
    return epoch_seconds(moment)


def _label(seconds: int) -> str:
    return {60: "1m", 3600: "1h", 86400: "1d"}[seconds]
