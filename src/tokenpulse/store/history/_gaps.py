"""Finding holes in a series: one window-function query, the edges handled in Python.

The query returns, for one key in ``[start, end)``, the first and last point and every
point whose predecessor is more than the threshold before it — never the whole series, so
a week of one-second samples costs one index range scan and a handful of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tokenpulse.store.history.models import (
    KEY_COLUMNS,
    RAW_TABLES,
    ROLLUP_TABLES,
    UtcSecond,
)


def gap_query(
    dialect: str,
    kind: str,
    key: str,
    bucket_seconds: int,
    start: datetime,
    end: datetime,
    threshold: timedelta,
) -> Any:
    """Rows ``(prev, ts, next)`` at the edges of the range and after each hole."""
    if bucket_seconds:
        table = ROLLUP_TABLES[kind]
        extra = [table.c.bucket_seconds == bucket_seconds]
    else:
        table = RAW_TABLES[kind]
        extra = []
    ts = table.c.ts
    inner = (
        sa.select(
            ts.label("ts"),
            sa.type_coerce(sa.func.lag(ts).over(order_by=ts), UtcSecond()).label("prev"),
            sa.type_coerce(sa.func.lead(ts).over(order_by=ts), UtcSecond()).label("next"),
        )
        .where(table.c[KEY_COLUMNS[kind]] == key, ts >= start, ts < end, *extra)
        .subquery()
    )
    seconds = threshold.total_seconds()
    if dialect == "sqlite":
        # UtcSecond is INTEGER unix seconds on SQLite.
        gap = sa.type_coerce(inner.c.ts, sa.Integer) - sa.type_coerce(inner.c.prev, sa.Integer)
    else:
        stamp = sa.DateTime(timezone=True)
        gap = sa.extract(
            "epoch", sa.type_coerce(inner.c.ts, stamp) - sa.type_coerce(inner.c.prev, stamp)
        )
    return (
        sa.select(inner.c.prev, inner.c.ts, inner.c.next)
        .where(
            sa.or_(
                inner.c.prev.is_(None),
                inner.c.next.is_(None),
                gap > sa.literal(seconds, sa.Float()),
            )
        )
        .order_by(inner.c.ts)
    )


def holes(
    rows: Sequence[Any],
    start: datetime,
    end: datetime,
    threshold: timedelta,
    width: timedelta = timedelta(0),
) -> list[tuple[datetime, datetime]]:
    """The holes described by :func:`gap_query`'s rows, including the range's edges.

    ``width`` is how long a row covers (a rollup bucket's length; 0 for a raw sample): a
    hole starts where the row before it ends, so it never overlaps a bucket that has data.
    """
    if not rows:
        return [(start, end)] if end - start > threshold else []
    found: list[tuple[datetime, datetime]] = []
    first = rows[0][1]
    if first - start > threshold:
        found.append((start, first))
    for prev, ts, _next in rows:
        if prev is not None and ts - prev > threshold:
            found.append((prev + width, ts))
    last = rows[-1][1]
    if end - last > threshold:
        found.append((last + width, end))
    return [(a, b) for a, b in found if a < b]
