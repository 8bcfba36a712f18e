"""HistoryRepository contract: the same behaviour on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.history.builders import BTC_USD, ETH_USD, T0, snapshot, ticker
from tests.integration.history.conftest import sqlite_threads_finished
from tokenpulse.domain.errors import InvalidParameter, StoreError
from tokenpulse.observability.metrics import Metrics
from tokenpulse.store.history import finest_granularity
from tokenpulse.store.history.repository import HistoryRepository

pytestmark = pytest.mark.services

HOUR = timedelta(hours=1)
EXACT = (
    "67890.123456789012345678901234",  # 29 significant digits: more than a float keeps
    "0.000000012345678901234567890",
    "120000",  # trailing zeros of an integer (asyncpg alone would return 1.2E+5)
    "1.50",  # trailing zero after the point
    "987654321098765432109876543210.5",
)


async def test_tokens_round_trip_every_field(repo: HistoryRepository, metrics: Metrics) -> None:
    written = await repo.write_tokens([snapshot(T0, "27309.802923311734", velocity="0.02789")])

    assert written == 1
    points = await repo.token_series("bitcoin", T0, T0 + HOUR)
    assert points == [
        {
            "t": T0,
            "price": Decimal("27309.802923311734"),
            "market_cap": Decimal("533365938838.0774"),
            "volume_24h": Decimal("14878768683.005728"),
            "circulating_supply": Decimal("19500000"),
            "velocity": Decimal("0.02789"),
            "source": "coingecko",
            "origin": "live",
        }
    ]
    assert points[0]["t"].tzinfo is UTC
    sample = metrics.registry.get_sample_value
    labels = {"table": "token_snapshots", "origin": "live"}
    assert sample("tokenpulse_history_rows_written_total", labels) == 1
    assert sample("tokenpulse_history_write_batches_total", {"table": "token_snapshots"}) == 1


async def test_last_value_of_a_second_wins(repo: HistoryRepository) -> None:
    at = T0 + timedelta(milliseconds=200)
    later = T0 + timedelta(milliseconds=800)

    in_one_call = await repo.write_tokens([snapshot(at, "100"), snapshot(later, "101")])
    await repo.write_tokens([snapshot(T0 + timedelta(milliseconds=900), "102")])
    await repo.write_ltp([ticker(at, "50000.1"), ticker(later, "50000.2")])
    await repo.write_ltp([ticker(T0 + timedelta(milliseconds=999), "50000.3")])

    assert in_one_call == 1
    tokens = await repo.token_series("bitcoin", T0, T0 + HOUR, fields=["price"])
    assert tokens == [{"t": T0, "price": Decimal("102")}]
    ltp = await repo.ltp_series(BTC_USD, T0, T0 + HOUR)
    assert ltp == [{"t": T0, "price": Decimal("50000.3"), "source": "kraken_ws", "origin": "live"}]


async def test_the_later_reading_of_a_second_wins_whatever_order_it_is_written_in(
    repo: HistoryRepository,
) -> None:
    """A new leader writes a reading, then the old leader replays its spill with an earlier
    reading of the same second: the later reading stays."""
    await repo.write_ltp([ticker(T0 + timedelta(milliseconds=800), "50000.2")])
    await repo.write_ltp([ticker(T0 + timedelta(milliseconds=200), "50000.1")])
    await repo.write_ltp([ticker(T0 + timedelta(seconds=1, milliseconds=100), "50001")])
    await repo.write_ltp([ticker(T0 + timedelta(seconds=1, milliseconds=900), "50002")])

    ltp = await repo.ltp_series(BTC_USD, T0, T0 + HOUR, fields=["price"])
    assert ltp == [
        {"t": T0, "price": Decimal("50000.2")},
        {"t": T0 + timedelta(seconds=1), "price": Decimal("50002")},
    ]


@pytest.mark.parametrize("digits", EXACT)
async def test_numbers_keep_every_digit(repo: HistoryRepository, digits: str) -> None:
    await repo.write_tokens([snapshot(T0, digits, market_cap=digits, velocity=digits)])
    await repo.write_ltp([ticker(T0, digits)])

    [token] = await repo.token_series("bitcoin", T0, T0 + HOUR)
    [pair] = await repo.ltp_series(BTC_USD, T0, T0 + HOUR)
    for value in (token["price"], token["market_cap"], token["velocity"], pair["price"]):
        assert isinstance(value, Decimal)
        assert str(value) == str(Decimal(digits))


async def test_pairs_and_tokens_are_kept_apart(repo: HistoryRepository) -> None:
    await repo.write_ltp([ticker(T0, "1", pair=BTC_USD), ticker(T0, "2", pair=ETH_USD)])
    await repo.write_tokens([snapshot(T0, "3", token_id="ethereum")])

    assert [p["price"] for p in await repo.ltp_series("ETH/USD", T0, T0 + HOUR)] == [Decimal(2)]
    assert await repo.token_series("bitcoin", T0, T0 + HOUR) == []


async def test_range_is_half_open(repo: HistoryRepository) -> None:
    await repo.write_ltp([ticker(T0 + timedelta(seconds=s), str(100 + s)) for s in range(5)])

    points = await repo.ltp_series(BTC_USD, T0 + timedelta(seconds=1), T0 + timedelta(seconds=3))

    assert [p["price"] for p in points] == [Decimal(101), Decimal(102)]


async def test_every_granularity(repo: HistoryRepository) -> None:
    # One sample every 30 s for 2 days: prices 0, 1, 2, … so each bucket's OHLC is known.
    start = datetime(2023, 10, 9, tzinfo=UTC)
    count = 2 * 24 * 120
    points = [
        (start + timedelta(seconds=30 * i), Decimal(i), Decimal(1000 + i), Decimal(7), None)
        for i in range(count)
    ]
    await repo.write_token_points("bitcoin", points)
    await repo.rollup(start + timedelta(days=3))
    end = start + timedelta(days=2)

    expected = {"1m": 2880, "5m": 576, "15m": 192, "1h": 48, "4h": 12, "1d": 2}
    for granularity, n in expected.items():
        series = await repo.token_series("bitcoin", start, end, granularity)
        assert len(series) == n, granularity
        per = count // n  # samples per bucket
        second = series[1]
        assert second["t"] == start + (end - start) / n
        assert second["open"] == Decimal(per)
        assert second["low"] == Decimal(per)
        assert second["high"] == Decimal(2 * per - 1)
        assert second["close"] == Decimal(2 * per - 1)
        assert second["market_cap"] == Decimal(1000 + 2 * per - 1)
        assert second["volume_24h"] == Decimal(7)
        assert second["velocity"] is None
        assert second["samples"] == per
    raw = await repo.token_series("bitcoin", start, start + timedelta(minutes=2), "raw")
    assert [p["price"] for p in raw] == [Decimal(0), Decimal(1), Decimal(2), Decimal(3)]


async def test_ltp_rollup_granularities(repo: HistoryRepository) -> None:
    prices = ["10", "12", "9", "11", "20", "18"]  # 10 s apart: minute 0 gets the first six
    await repo.write_ltp([ticker(T0 + timedelta(seconds=10 * i), p) for i, p in enumerate(prices)])
    await repo.write_ltp([ticker(T0 + timedelta(minutes=3), "30")])
    await repo.rollup(T0 + HOUR)

    minutes = await repo.ltp_series(BTC_USD, T0, T0 + HOUR, "1m")
    five = await repo.ltp_series(BTC_USD, T0, T0 + HOUR, "5m", fields=["open", "close"])

    assert minutes[0] == {
        "t": T0,
        "open": Decimal(10),
        "high": Decimal(20),
        "low": Decimal(9),
        "close": Decimal(18),
        "samples": 6,
    }
    assert [m["t"] for m in minutes] == [T0, T0 + timedelta(minutes=3)]
    assert five == [{"t": T0, "open": Decimal(10), "close": Decimal(30)}]


async def test_fields_restrict_the_keys(repo: HistoryRepository) -> None:
    await repo.write_tokens([snapshot(T0, "1")])
    await repo.rollup(T0 + HOUR)

    raw = await repo.token_series("bitcoin", T0, T0 + HOUR, "raw", fields=["velocity", "t"])
    minute = await repo.token_series("bitcoin", T0, T0 + HOUR, "1m", fields=["close"])
    derived = await repo.token_series("bitcoin", T0, T0 + HOUR, "15m", fields=["samples"])

    assert raw == [{"t": T0, "velocity": Decimal("0.0279")}]
    assert minute == [{"t": T0, "close": Decimal(1)}]
    assert derived == [{"t": T0, "samples": 1}]


@pytest.mark.parametrize(
    ("granularity", "field"), [("raw", "open"), ("1h", "price"), ("5m", "bogus")]
)
async def test_unknown_field_is_named(
    repo: HistoryRepository, granularity: str, field: str
) -> None:
    with pytest.raises(InvalidParameter) as caught:
        await repo.token_series("bitcoin", T0, T0 + HOUR, granularity, fields=["t", field])

    assert caught.value.parameter == "fields"
    assert repr(field) in caught.value.message


async def test_unknown_granularity_and_bad_range(repo: HistoryRepository) -> None:
    with pytest.raises(InvalidParameter) as caught:
        await repo.token_series("bitcoin", T0, T0 + HOUR, "2m")
    assert caught.value.parameter == "granularity"
    assert "1m, 5m, 15m" in caught.value.message
    with pytest.raises(InvalidParameter) as caught:
        await repo.ltp_series(BTC_USD, T0, T0 - HOUR)
    assert caught.value.parameter == "from"


async def test_point_limit_names_a_granularity_that_fits(repo: HistoryRepository) -> None:
    # 7 days at 1m is 10 080 points: over the limit before any row is read.
    with pytest.raises(InvalidParameter) as caught:
        await repo.token_series("bitcoin", T0 - timedelta(days=7), T0, "1m")
    message = caught.value.message
    assert "10080 points" in message
    assert "use granularity=5m" in message
    assert "15m, 1h, 4h, 1d" in message  # …and the coarser ones that fit, up to the coarsest
    assert caught.value.details["suggested_granularity"] == "5m"

    # Raw: 10 001 stored samples one second apart.
    points = [(T0 + timedelta(seconds=i), Decimal(i), None, None, None) for i in range(10_001)]
    await repo.write_token_points("bitcoin", points)
    with pytest.raises(InvalidParameter) as caught:
        await repo.token_series("bitcoin", T0, T0 + timedelta(days=1), "raw")
    assert "10001 points" in caught.value.message
    assert "use granularity=1m" in caught.value.message
    assert len(await repo.token_series("bitcoin", T0, T0 + timedelta(seconds=10_000))) == 10_000


async def test_gaps_are_the_holes_longer_than_twice_the_interval(repo: HistoryRepository) -> None:
    minutes = [*range(10), *range(40, 50)]  # a 30-minute hole after minute 9
    await repo.write_tokens([snapshot(T0 + timedelta(minutes=m), "1") for m in minutes])
    await repo.write_ltp([ticker(T0 + timedelta(minutes=m), "1") for m in minutes])
    start, end = T0 - timedelta(minutes=5), T0 + timedelta(minutes=60)

    for gaps in (
        await repo.token_gaps("bitcoin", start, end, expected_interval=timedelta(minutes=1)),
        await repo.ltp_gaps(BTC_USD, start, end, expected_interval=timedelta(minutes=1)),
    ):
        assert gaps == [
            (start, T0),  # nothing in the first 5 minutes of the range
            (T0 + timedelta(minutes=9), T0 + timedelta(minutes=40)),
            (T0 + timedelta(minutes=49), end),
        ]
    wide = await repo.token_gaps("bitcoin", T0, end, expected_interval=timedelta(minutes=20))
    assert wide == []
    empty = await repo.ltp_gaps(ETH_USD, start, end, expected_interval=timedelta(minutes=1))
    assert empty == [(start, end)]


async def test_gaps_in_a_rollup(repo: HistoryRepository) -> None:
    await repo.write_tokens([snapshot(T0 + timedelta(hours=h), "1") for h in (0, 1, 5)])
    await repo.rollup(T0 + timedelta(days=1))

    gaps = await repo.token_gaps(
        "bitcoin", T0, T0 + timedelta(hours=6), expected_interval=HOUR, granularity="1h"
    )

    # The 1h bucket at T0 + 1h holds data until T0 + 2h: the hole starts where it ends.
    assert gaps == [(T0 + 2 * HOUR, T0 + timedelta(hours=5))]


async def test_backfill_points_are_idempotent_and_never_replace_live(
    repo: HistoryRepository,
) -> None:
    await repo.write_tokens([snapshot(T0, "100")])
    points = [(T0 + timedelta(minutes=m), Decimal(90 + m), None, None, None) for m in range(3)]

    first = await repo.write_token_points("bitcoin", points)
    second = await repo.write_token_points("bitcoin", points)
    ltp_first = await repo.write_ltp_points(BTC_USD, [(T0, Decimal(5))])
    ltp_second = await repo.write_ltp_points(BTC_USD, [(T0, Decimal(5))])

    assert (first, second, ltp_first, ltp_second) == (2, 0, 1, 0)
    series = await repo.token_series("bitcoin", T0, T0 + HOUR, fields=["price", "origin"])
    assert series == [
        {"t": T0, "price": Decimal(100), "origin": "live"},
        {"t": T0 + timedelta(minutes=1), "price": Decimal(91), "origin": "backfill"},
        {"t": T0 + timedelta(minutes=2), "price": Decimal(92), "origin": "backfill"},
    ]
    # A live value does replace a backfilled one.
    await repo.write_tokens([snapshot(T0 + timedelta(minutes=1), "95")])
    [point] = await repo.token_series(
        "bitcoin", T0 + timedelta(minutes=1), T0 + timedelta(minutes=2), fields=["price", "origin"]
    )
    assert (point["price"], point["origin"]) == (Decimal(95), "live")


async def test_velocity_points_come_from_raw_or_rollups(repo: HistoryRepository) -> None:
    await repo.write_tokens(
        [
            snapshot(T0, "1", velocity="0.01"),
            snapshot(T0 + timedelta(seconds=30), "1", velocity="0.03"),
            snapshot(T0 + timedelta(minutes=1), "1", velocity=None),
        ]
    )
    await repo.rollup(T0 + HOUR)

    raw = await repo.velocity_points("bitcoin", T0, T0 + HOUR)
    week = await repo.velocity_points("bitcoin", T0 - timedelta(days=6), T0 + HOUR)
    month = await repo.velocity_points("bitcoin", T0 - timedelta(days=30), T0 + HOUR)

    assert raw == [(T0, Decimal("0.01")), (T0 + timedelta(seconds=30), Decimal("0.03"))]
    assert week == [(T0, Decimal("0.02"))]  # the 1-minute mean
    assert month == [(T0, Decimal("0.02"))]  # the hourly mean


async def test_failures_are_store_errors_without_sql_or_url(tmp_path: Path) -> None:
    directory = tmp_path / "gone"
    url = f"sqlite+aiosqlite:///{directory}/history.db"
    threads = set(threading.enumerate())
    repo = HistoryRepository.from_url(url)
    directory.rmdir()
    try:
        with pytest.raises(StoreError) as caught:
            await repo.ping()
        with pytest.raises(StoreError) as written:
            await repo.write_ltp([ticker(T0, "1")])
    finally:
        await repo.close()
        await sqlite_threads_finished(threads)

    for error in (caught.value, written.value):
        text = error.message
        assert "unable to open database file" in text
        assert str(directory) not in text
        assert "SELECT" not in text.upper()
        assert "INSERT" not in text.upper()
        assert "sqlalche.me" not in text


async def test_postgres_failures_hide_the_url(pg_session_url: str) -> None:
    url = pg_session_url.rsplit("/", 1)[0] + "/tokenpulse_no_such_database"
    repo = HistoryRepository.from_url(url)
    try:
        with pytest.raises(StoreError) as caught:
            await repo.ping()
    finally:
        await repo.close()

    assert "does not exist" in caught.value.message
    assert "postgresql" not in caught.value.message
    assert "127.0.0.1:5432" not in caught.value.message


def test_finest_granularity_that_fits() -> None:
    assert finest_granularity(T0, T0 + timedelta(days=6)) == "1m"
    assert finest_granularity(T0, T0 + timedelta(days=7)) == "5m"  # 10 080 one-minute points
    assert finest_granularity(T0, T0 + timedelta(days=365)) == "1h"
    assert finest_granularity(T0, T0 + timedelta(days=365 * 30)) == "1d"
