"""What the fault scenarios read back from the history store: LTP rows per pair per second."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tokenpulse.store.history.models import ltp_samples


async def ltp_rows(
    database_url: str, first: int, last: int, pairs: Iterable[str]
) -> dict[str, dict[int, tuple[str, str]]]:
    """Pair -> unix second -> (origin, price digits) of the LTP rows in ``[first, last]``."""
    wanted = list(pairs)
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        ltp_samples.c.pair,
                        ltp_samples.c.ts,
                        ltp_samples.c.origin,
                        ltp_samples.c.price,
                    ).where(
                        ltp_samples.c.pair.in_(wanted),
                        ltp_samples.c.ts >= datetime.fromtimestamp(first, UTC),
                        ltp_samples.c.ts <= datetime.fromtimestamp(last, UTC),
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    found: dict[str, dict[int, tuple[str, str]]] = defaultdict(dict)
    for pair, ts, origin, price in rows:
        stamp = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
        found[pair][int(stamp.timestamp())] = (str(origin), str(price))
    return {pair: found.get(pair, {}) for pair in wanted}


def missing_seconds(
    rows: dict[str, dict[int, tuple[str, str]]], first: int, last: int
) -> dict[str, list[int]]:
    """Pair -> the seconds of ``[first, last]`` it has no row for."""
    return {
        pair: [s for s in range(first, last + 1) if s not in seconds]
        for pair, seconds in rows.items()
    }
