"""Series reads through the driver give exactly what SQLAlchemy's result path gives.

The series queries read rows through the database driver and decode them a column at a time
(``store/history/_fetch.py``). Here a seeded store is read both ways, on SQLite and
PostgreSQL, for every granularity and a few field selections: same keys in the same order,
same types, the same digits of every Decimal and the same aware UTC times.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from tests.integration.history.builders import BTC_USD, T0, snapshot, ticker
from tokenpulse.domain.errors import InvalidParameter, StoreError
from tokenpulse.store.history import _rollup
from tokenpulse.store.history import _series as series
from tokenpulse.store.history._buckets import floor_to, merge
from tokenpulse.store.history.models import (
    KIND_PAIR,
    KIND_TOKEN,
    RAW_TABLES,
    ROLLUP_TABLES,
)
from tokenpulse.store.history.repository import HistoryRepository

PRICES = ("27309.802923311734", "0.00000001234", "120000", "98765432109876543210.123456789")
START = T0 - timedelta(hours=1)
END = T0 + timedelta(days=2)


async def seed(repo: HistoryRepository) -> None:
    """Two tokens and a pair, 1 to 3 samples a minute, with nulls and awkward digits."""
    tokens = []
    tickers = []
    for minute in range(0, 36 * 60, 7):
        at = T0 + timedelta(minutes=minute)
        for second in range(1 + minute % 3):
            price = PRICES[(minute + second) % len(PRICES)]
            when = at + timedelta(seconds=10 * second)
            tokens.append(
                snapshot(
                    when,
                    None if minute % 11 == 0 else price,
                    market_cap=None if minute % 13 == 0 else "533365938838.0774",
                    velocity=None if minute % 5 == 0 else f"0.0{minute % 97}789",
                )
            )
            tokens.append(snapshot(when, price, token_id="ethereum", volume="1E+3"))
            tickers.append(ticker(when, price))
    await repo.write_tokens(tokens)
    await repo.write_ltp(tickers)
    await repo.rollup(END + timedelta(days=2))


async def reference(
    repo: HistoryRepository, kind: str, key: str, granularity: str, fields: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The series read through SQLAlchemy's result path (Core select, TypeDecorators)."""
    g = series.parse_granularity(granularity)
    first, last = series.bounds(START, END)
    key_column = "token_id" if kind == KIND_TOKEN else "pair"
    if g.raw:
        table = RAW_TABLES[kind]
        where = [table.c[key_column] == key, table.c.ts >= START, table.c.ts < END]
        stmt = sa.select(table.c.ts, *(table.c[f] for f in fields)).where(*where)
        rows = await _rows(repo, stmt.order_by(table.c.ts))
        return [dict(zip(("t", *fields), row, strict=True)) for row in rows]
    table = ROLLUP_TABLES[kind]
    first = floor_to(first, g.seconds)
    where = [
        table.c[key_column] == key,
        table.c.bucket_seconds == g.stored,
        table.c.ts >= datetime.fromtimestamp(first, UTC),
        table.c.ts < datetime.fromtimestamp(last, UTC),
    ]
    if not g.derived:
        stmt = sa.select(table.c.ts, *(table.c[f] for f in fields)).where(*where)
        rows = await _rows(repo, stmt.order_by(table.c.ts))
        return [dict(zip(("t", *fields), row, strict=True)) for row in rows]
    values = ["open", "high", "low", "close"]
    if kind == KIND_TOKEN:
        values += ["market_cap", "volume_24h", "velocity_sum", "velocity_count"]
    stmt = sa.select(table.c.ts, *(table.c[c] for c in values), table.c.samples).where(*where)
    parts = [_rollup.rollup_bucket(kind, row) for row in await _rows(repo, stmt.order_by("ts"))]
    return [
        {"t": bucket.t, **{name: getattr(bucket, name) for name in fields}}
        for bucket in merge(parts, g.seconds)
    ]


async def _rows(repo: HistoryRepository, stmt: Any) -> list[Any]:
    async with repo.engine.connect() as conn:
        return list((await conn.execute(stmt)).all())


def exact(rows: list[dict[str, Any]]) -> list[list[tuple[str, type, str]]]:
    """Every value with its key, type and text: Decimal('1.0') and Decimal('1') differ."""
    return [[(k, type(v), str(v)) for k, v in row.items()] for row in rows]


TOKEN_CASES = [
    ("raw", series.TOKEN_RAW_FIELDS),
    ("raw", ("price", "velocity")),
    *((g, series.TOKEN_ROLLUP_FIELDS) for g in ("1m", "5m", "15m", "1h", "4h", "1d")),
    ("1m", ("close", "velocity")),
    ("1h", ("samples",)),
]
PAIR_CASES = [
    ("raw", series.LTP_RAW_FIELDS),
    *((g, series.LTP_ROLLUP_FIELDS) for g in ("1m", "5m", "15m", "1h", "4h", "1d")),
]


async def test_driver_reads_equal_the_sqlalchemy_path(repo: HistoryRepository) -> None:
    await seed(repo)
    compared = 0
    for key in ("bitcoin", "ethereum"):
        for granularity, fields in TOKEN_CASES:
            got = await repo.token_series(key, START, END, granularity, fields)
            want = await reference(repo, KIND_TOKEN, key, granularity, fields)
            assert got, (key, granularity)
            assert exact(got) == exact(want), (key, granularity, fields)
            assert all(row["t"].tzinfo is UTC for row in got)
            compared += len(got)
    for granularity, fields in PAIR_CASES:
        got = await repo.ltp_series(BTC_USD, START, END, granularity, fields)
        want = await reference(repo, KIND_PAIR, str(BTC_USD), granularity, fields)
        assert got
        assert exact(got) == exact(want), (granularity, fields)
        compared += len(got)
    assert compared > 5_000


async def test_awkward_digits_and_nulls_come_back_as_written(repo: HistoryRepository) -> None:
    await seed(repo)
    raw = await repo.token_series("bitcoin", START, END, "raw", ("price", "market_cap"))
    prices = [row["price"] for row in raw if row["price"] is not None]
    assert {format(price, "f") for price in prices} == set(PRICES)
    assert {str(price) for price in prices} == {str(Decimal(text)) for text in PRICES}
    assert any(row["price"] is None for row in raw)
    assert any(row["market_cap"] is None for row in raw)
    minutes = await repo.token_series("ethereum", START, END, "1m", ("volume_24h", "samples"))
    # Written as 1E+3: both backends keep the positional digits, 1000.
    assert {row["volume_24h"] for row in minutes} == {Decimal("1000")}
    assert {str(row["volume_24h"]) for row in minutes} == {"1000"}
    assert {type(row["samples"]) for row in minutes} == {int}


async def test_an_empty_range_is_an_empty_series(repo: HistoryRepository) -> None:
    await seed(repo)
    before = T0 - timedelta(days=3)
    after = before + timedelta(hours=1)
    for granularity in ("raw", "1m", "5m"):
        assert await repo.token_series("bitcoin", before, after, granularity) == []


@pytest.mark.parametrize("granularity", ["raw", "1m"])
async def test_too_many_points_are_refused(repo: HistoryRepository, granularity: str) -> None:
    await seed(repo)
    with pytest.raises(InvalidParameter, match="points") as caught:
        await repo.token_series("bitcoin", START, END, granularity, max_points=100)
    assert caught.value.details["max_points"] == 100


async def test_a_driver_error_is_a_store_error(repo: HistoryRepository) -> None:
    """The driver's own exceptions (not wrapped by SQLAlchemy here) become StoreError."""
    await seed(repo)
    async with repo.engine.begin() as conn:
        await conn.execute(sa.text("ALTER TABLE token_rollups RENAME TO token_rollups_moved"))
    try:
        with pytest.raises(StoreError) as caught:
            await repo.token_series("bitcoin", START, END, "1m")
        assert "token_rollups" in caught.value.message
        assert "SELECT" not in caught.value.message.upper()
        assert caught.value.details == {"operation": "read"}
        # The connection that failed is not handed out again: the next read works.
        assert await repo.token_series("bitcoin", START, END, "raw", ("price",))
    finally:
        async with repo.engine.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE token_rollups_moved RENAME TO token_rollups"))
