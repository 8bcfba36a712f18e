"""Rollups and retention, checked against numbers worked out by hand below."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.integration.history.builders import BTC_USD, T0, snapshot, ticker
from tokenpulse.store.history.repository import HistoryRepository

pytestmark = pytest.mark.services

MINUTE = timedelta(minutes=1)


def s(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def write_hand_example(repo: HistoryRepository) -> None:
    """Minute 12:00 has four samples, minute 12:01 two.

    12:00:05 price 100   cap 1000  volume 10  velocity 0.02
    12:00:20 price 105   cap 1001  volume 11  velocity —
    12:00:35 price  98   cap —     volume 12  velocity 0.03
    12:00:50 price 101   cap 1003  volume —   velocity 0.05
    12:01:10 price  99   cap 1004  volume 13  velocity 0.1
    12:01:40 price 102   cap 1005  volume 14  velocity —
    """
    rows = [
        (5, "100", "1000", "10", "0.02"),
        (20, "105", "1001", "11", None),
        (35, "98", None, "12", "0.03"),
        (50, "101", "1003", None, "0.05"),
        (70, "99", "1004", "13", "0.1"),
        (100, "102", "1005", "14", None),
    ]
    await repo.write_tokens(
        [
            snapshot(s(at), price, market_cap=cap, volume=volume, velocity=velocity)
            for at, price, cap, volume, velocity in rows
        ]
    )


async def test_a_minute_worked_out_by_hand(repo: HistoryRepository) -> None:
    await write_hand_example(repo)

    done = await repo.rollup(T0 + timedelta(minutes=5))

    assert done == {"token_1m": 2, "token_1h": 1, "token_1d": 1}
    first, second = await repo.token_series("bitcoin", T0, T0 + timedelta(hours=1), "1m")
    # open = first price 100, close = last price 101, high 105, low 98;
    # market cap = last one given (1003), volume = last one given (12);
    # mean velocity = (0.02 + 0.03 + 0.05) / 3 = 0.1 / 3, to 28 significant digits.
    assert first == {
        "t": T0,
        "open": Decimal("100"),
        "high": Decimal("105"),
        "low": Decimal("98"),
        "close": Decimal("101"),
        "market_cap": Decimal("1003"),
        "volume_24h": Decimal("12"),
        "velocity": Decimal("0.03333333333333333333333333333"),
        "samples": 4,
    }
    assert second["t"] == T0 + MINUTE
    assert (second["open"], second["close"], second["velocity"]) == (
        Decimal("99"),
        Decimal("102"),
        Decimal("0.1"),
    )
    # The hour averages all four velocity samples, (0.02 + 0.03 + 0.05 + 0.1) / 4 = 0.05,
    # not the two minute means ((0.0333… + 0.1) / 2 = 0.0666…).
    [hour] = await repo.token_series("bitcoin", T0, T0 + timedelta(hours=1), "1h")
    assert hour == {
        "t": T0,
        "open": Decimal("100"),
        "high": Decimal("105"),
        "low": Decimal("98"),
        "close": Decimal("102"),
        "market_cap": Decimal("1005"),
        "volume_24h": Decimal("14"),
        "velocity": Decimal("0.05"),
        "samples": 6,
    }
    [day] = await repo.token_series("bitcoin", T0, T0 + timedelta(hours=1), "1d")
    assert day == {**hour, "t": datetime(2023, 10, 10, tzinfo=UTC)}
    [five] = await repo.token_series("bitcoin", T0, T0 + timedelta(hours=1), "5m")
    assert five == {**hour, "t": T0}


async def test_an_open_minute_waits_and_late_data_is_rolled_again(
    repo: HistoryRepository,
) -> None:
    await write_hand_example(repo)

    # At 12:01:30 minute 12:00 has ended, 12:01 has not.
    assert await repo.rollup(s(90)) == {"token_1m": 1, "token_1h": 1, "token_1d": 1}
    assert await repo.rollup(s(90)) == {}  # nothing new: nothing recomputed
    await repo.write_tokens([snapshot(s(55), "200", velocity="0.3")])  # late, into 12:00
    assert await repo.rollup(s(130)) == {"token_1m": 2, "token_1h": 1, "token_1d": 1}

    first, _second = await repo.token_series("bitcoin", T0, T0 + timedelta(hours=1), "1m")
    assert (first["high"], first["close"], first["samples"]) == (Decimal(200), Decimal(200), 5)
    # (0.02 + 0.03 + 0.05 + 0.3) / 4 = 0.1
    assert first["velocity"] == Decimal("0.1")


async def test_ltp_bucket_by_hand(repo: HistoryRepository) -> None:
    prices = {3: "27000.5", 17: "27010.25", 29: "26990", 58: "27001.125"}
    await repo.write_ltp([ticker(s(at), price) for at, price in prices.items()])
    await repo.write_ltp([ticker(s(3600 + 1), "27100")])  # the next hour

    assert await repo.rollup(T0 + timedelta(hours=2)) == {
        "pair_1m": 2,
        "pair_1h": 2,
        "pair_1d": 1,
    }
    [minute] = await repo.ltp_series(BTC_USD, T0, T0 + MINUTE, "1m")
    assert minute == {
        "t": T0,
        "open": Decimal("27000.5"),
        "high": Decimal("27010.25"),
        "low": Decimal("26990"),
        "close": Decimal("27001.125"),
        "samples": 4,
    }
    [day] = await repo.ltp_series(BTC_USD, T0, T0 + timedelta(hours=2), "1d")
    assert (day["open"], day["high"], day["low"], day["close"], day["samples"]) == (
        Decimal("27000.5"),
        Decimal("27100"),
        Decimal("26990"),
        Decimal("27100"),
        5,
    )


async def test_retention_deletes_exactly_what_is_old(repo: HistoryRepository) -> None:
    now = datetime(2023, 10, 31, 12, 0, tzinfo=UTC)
    raw_keep, rollup_keep = timedelta(days=7), timedelta(days=30)
    # Raw cut-off 10-24 12:00:00; rollup cut-off 10-01 12:00:00.
    at = {
        "old": datetime(2023, 10, 1, 6, 0, tzinfo=UTC),  # rollups older than 30 days…
        "raw_edge": datetime(2023, 10, 24, 11, 59, 59, tzinfo=UTC),  # last old second
        "kept": datetime(2023, 10, 24, 12, 0, tzinfo=UTC),  # first kept second
    }
    await repo.write_tokens([snapshot(moment, "1") for moment in at.values()])
    await repo.write_ltp([ticker(moment, "1") for moment in at.values()])

    deleted = await repo.apply_retention(now, raw_keep, rollup_keep)

    # Raw: the rows at 10-01 06:00 and 10-24 11:59:59 are old, 10-24 12:00:00 is not.
    # Rollups of 10-01 06:00: its minute and hour ended before the cut-off (deleted);
    # its day (10-01 00:00 → 10-02 00:00) had not (kept). Per kind: 2 rollups deleted.
    assert deleted == {
        "token_snapshots": 2,
        "ltp_samples": 2,
        "token_rollups": 2,
        "ltp_rollups": 2,
    }
    raw = await repo.token_series("bitcoin", at["old"], now, fields=["price"])
    assert [p["t"] for p in raw] == [at["kept"]]
    days = await repo.token_series("bitcoin", at["old"], now, "1d", fields=["samples"])
    assert [(d["t"].day, d["samples"]) for d in days] == [(1, 1), (24, 2)]
    hours = await repo.ltp_series(BTC_USD, at["old"], now, "1h", fields=["samples"])
    assert [h["t"].day for h in hours] == [24, 24]
    assert await repo.apply_retention(now, raw_keep, rollup_keep) == dict.fromkeys(deleted, 0)
