"""Replay and history: seeding through the backfill, one store per mode, honest gaps.

Every test runs on SQLite and a real PostgreSQL (``repo`` fixture).
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.helpers import FakeClock, wait_for
from tests.integration.history.builders import BTC_USD, snapshot, ticker
from tokenpulse.data import known_tokens
from tokenpulse.domain.errors import StoreModeConflict
from tokenpulse.domain.identity import IdentityRegistry
from tokenpulse.domain.velocity import TREND_WINDOWS, VelocityPolicy, window_duration
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.tokens.backfill import Backfiller
from tokenpulse.services.tokens.ingest import MarketIngest, QuoteBuffer
from tokenpulse.services.tokens.service import TokenService
from tokenpulse.sources.replay.history import ReplayHistory
from tokenpulse.sources.replay.recording import ReplayTimeline, bundled_recording
from tokenpulse.store.history.repository import HistoryRepository

pytestmark = pytest.mark.services

START = datetime(2026, 12, 6, 12, 0, 30, tzinfo=UTC)


def replay_history() -> tuple[ReplayHistory, ReplayTimeline]:
    recording = bundled_recording()
    timeline = ReplayTimeline(
        recording.play_from, recording.span, 60.0, clock=FakeClock(), now=lambda: START
    )
    timeline.begin()
    return ReplayHistory(bundled_recording, lambda: timeline), timeline


async def test_replay_seeds_the_recordings_earlier_part_so_trends_work_at_once(
    repo: HistoryRepository,
) -> None:
    history, timeline = replay_history()
    recording = bundled_recording()
    backfiller = Backfiller(
        repo, charts=history, ohlc=history, chart_source="replay", candle_source="replay"
    )
    now = START + timedelta(seconds=5)

    report = await backfiller.fill(["bitcoin"], [BTC_USD], now)

    assert report.failures == []
    assert report.token_rows > 24 * 5  # five days hourly, then daily
    rows = await repo.token_series("bitcoin", now - timedelta(days=8), now)
    assert {row["origin"] for row in rows} == {"backfill"}
    assert {row["source"] for row in rows} == {"replay"}
    assert all(row["t"] < START for row in rows)
    # The seed ends with the reading just before the played part, an hour before the start.
    before = recording.series["bitcoin"].at(recording.play_from - timedelta(seconds=1))
    assert before is not None
    assert rows[-1]["price"] == before.price
    assert rows[-1]["t"] == timeline.seed_time(before.at).replace(microsecond=0)
    # Consecutive seeded points never jump (the recording is one coherent period).
    prices = [row["price"] for row in rows]
    assert max(abs(b / a - 1) for a, b in itertools.pairwise(prices)) < 0.05
    # Rolled up as soon as the key was written: every trend window has a reference point.
    for window in TREND_WINDOWS:
        span = window_duration(window)
        points = await repo.velocity_points("bitcoin", now - span * 1.1, now)
        near = [t for t, _ in points if abs(t - (now - span)) <= span * 0.1]
        assert near, f"no velocity near now - {window}"
    ltp = await repo.ltp_series(BTC_USD, now - timedelta(days=8), now)
    assert len(ltp) > 24 * 5
    assert ltp[-1]["price"] == before.price


async def test_a_store_holds_live_or_replay_data_never_both(repo: HistoryRepository) -> None:
    assert await repo.claim_mode("replay") == "new"
    assert await repo.claim_mode("replay") == "replay"

    with pytest.raises(StoreModeConflict) as refused:
        await repo.claim_mode("live")

    message = str(refused.value)
    assert "DATABASE_URL" in message
    assert "replayed (demo) history" in message
    assert "data/replay.db" in message  # the way out
    if repo.dialect == "sqlite":
        assert "tokenpulse.db" in message  # names the file
    else:
        assert "***" in message or "@" not in message  # never the password


async def test_a_store_from_before_the_marker_is_judged_by_its_rows(
    repo: HistoryRepository,
) -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    await repo.write_tokens([snapshot(at, "27000", source="replay")])
    await repo.write_ltp([ticker(at, "27000.5")])  # a live row beside them

    with pytest.raises(StoreModeConflict):
        await repo.claim_mode("live")
    assert await repo.claim_mode("replay") == "replay"


async def test_a_live_store_refuses_a_replay_start(repo: HistoryRepository) -> None:
    await repo.write_ltp([ticker(datetime(2026, 12, 1, tzinfo=UTC), "27000.5")])

    assert await repo.claim_mode("live") == "live"
    with pytest.raises(StoreModeConflict) as refused:
        await repo.claim_mode("replay")
    assert "holds live history" in str(refused.value)


async def test_gaps_never_cover_a_span_that_holds_data(repo: HistoryRepository) -> None:
    now = datetime(2026, 12, 6, 12, 10, 30, tzinfo=UTC)
    # A sample every 10 s for the last 10 minutes; rolled up until 12:05 only (the rollup
    # runs behind), so the newest minutes are only in the raw table.
    seconds = range(0, 600, 10)
    await repo.write_tokens(
        [snapshot(now - timedelta(minutes=10) + timedelta(seconds=s), "1") for s in seconds]
    )
    await repo.rollup(datetime(2026, 12, 6, 12, 6, tzinfo=UTC))
    start = now - timedelta(minutes=30)

    gaps = await repo.token_gaps(
        "bitcoin", start, now, expected_interval=timedelta(minutes=1), granularity="1m"
    )

    buckets = await repo.token_series("bitcoin", start, now, "1m")
    assert buckets  # 12:00 .. 12:05 rolled up
    first_bucket = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # holds 12:00:30 onwards
    for a, b in gaps:
        assert not any(a <= row["t"] < b for row in buckets)
        assert b <= first_bucket  # the unrolled tail holds raw data: no gap
    assert gaps == [(start, first_bucket)]

    # After a gap, a hole starts where the bucket before it ends, not at the bucket's start.
    await repo.write_tokens([snapshot(now - timedelta(minutes=25), "1")])
    await repo.rollup(now)
    gaps = await repo.token_gaps(
        "bitcoin", start, now, expected_interval=timedelta(minutes=1), granularity="1m"
    )
    lone = (now - timedelta(minutes=25)).replace(second=0)
    assert (lone + timedelta(minutes=1), first_bucket) in gaps
    assert Decimal(1) == (await repo.token_series("bitcoin", lone, now, "1m"))[0]["close"]


async def test_a_closed_minute_is_rolled_up_within_seconds(repo: HistoryRepository) -> None:
    """Issue 11: the 1m bucket of a closed minute exists within 5 s (the maintenance pass
    runs every ROLLUP_INTERVAL), so trends and 1m history never lag a minute or two."""
    tokens = TokenService(
        identities=IdentityRegistry(known_tokens()), policy=VelocityPolicy(), metrics=Metrics()
    )
    market = MarketIngest(
        tokens=tokens,
        source=None,
        history=repo,
        writer=None,
        backfiller=None,
        pairs=[],
        raw_retention=timedelta(days=7),
        rollup_retention=timedelta(days=365),
        buffer=QuoteBuffer(max_keys=4),
    )
    await market.start()
    try:
        closed = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
        await repo.write_tokens([snapshot(closed + timedelta(seconds=30), "27000")])
        written = time.monotonic()

        async def rolled_up() -> bool:
            rows = await repo.token_series("bitcoin", closed, closed + timedelta(minutes=1), "1m")
            return bool(rows)

        await wait_for(rolled_up, 10, message="the closed minute's 1m bucket")
        assert time.monotonic() - written <= 5.0
    finally:
        await market.stop()
