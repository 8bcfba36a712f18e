"""Token replay: one recorded period through the real parser, time re-based, loops re-anchored."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import FakeClock, wait_for
from tokenpulse.data import data_path
from tokenpulse.domain.tokens import TokenQuote
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources.coingecko.parser import parse_markets
from tokenpulse.sources.replay.recording import ReplayTimeline, bundled_recording
from tokenpulse.sources.replay.tokens import MarketReplaySource

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
# The recorded fixture set, where a checkout has it beside the repository (CI does).
SHARED = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
SPEED = 60.0


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --------------------------------------------------------------------------- the recording


def test_the_recording_is_one_period_of_october_2023() -> None:
    recording = bundled_recording()

    assert recording.play_from == moment("2023-10-08T21:00:31.002+00:00")
    assert recording.play_to == moment("2023-10-14T00:26:44+00:00")
    assert len(recording.snapshot) == 100
    updated = {row["last_updated"][:13] for row in recording.snapshot}
    assert updated == {"2023-10-08T20"}  # one answer, recorded 20:10-20:12
    assert sorted(recording.series) == sorted(
        [
            "bitcoin",
            "ethereum",
            "litecoin",
            "ripple",
            "cardano",
            "bitcoin-cash",
            "binancecoin",
            "eos",
            "ethereum-classic",
            "chainlink",
            "solana",
            "tron",
        ]
    )
    every = [p.at for series in recording.series.values() for p in series.points]
    assert min(every) >= moment("2023-09-20T00:00:00+00:00")
    assert max(every) <= recording.play_to
    bitcoin = recording.series["bitcoin"].points
    hourly = [p for p in bitcoin if p.at >= moment("2023-10-03T19:00:00+00:00")]
    assert len(hourly) > 240  # two hourly charts joined (they agree where they overlap)
    assert all(b.at > a.at for a, b in itertools.pairwise(bitcoin))
    assert bitcoin[0].at == moment("2023-09-20T00:00:00+00:00")  # daily before the charts


def test_ranks_in_the_recorded_answer_agree_with_market_caps() -> None:
    rows = bundled_recording().snapshot
    caps = [Decimal(row["market_cap"]) for row in rows]
    assert [row["market_cap_rank"] for row in rows] == list(range(1, 101))
    assert caps == sorted(caps, reverse=True)


@pytest.mark.skipif(not SHARED.exists(), reason="shared fixture set not mounted")
def test_bundled_files_are_copies_of_the_recordings() -> None:
    chart = "market_chart_bitcoin_usd_7d_hourly_2023-10-10.json"
    shared_chart = SHARED / "coingecko" / chart
    assert (data_path("replay") / chart).read_bytes() == shared_chart.read_bytes()
    export = SHARED / "history" / "coingecko_export_until_2023-11-30"
    for daily in (data_path("replay") / "history").glob("*-usd-daily.csv"):
        full = (export / daily.name.replace("-daily", "-max")).read_text().splitlines()
        kept = daily.read_text().splitlines()
        assert kept[0] == full[0]
        assert set(kept[1:]) <= set(full[1:])  # lines unchanged, a window of them
        assert len(kept) == 26  # 2023-09-20 .. 2023-10-14


# --------------------------------------------------------------------------- the replay


def make(clock: FakeClock, *, speed: float = SPEED) -> MarketReplaySource:
    """A replay on ``clock``, whose wall clock reads NOW when ``clock`` reads its start."""
    recording = bundled_recording()
    start = clock.now

    def now() -> datetime:
        return NOW + timedelta(seconds=clock.now - start)

    timeline = ReplayTimeline(recording.play_from, recording.span, speed, clock=clock, now=now)
    source = MarketReplaySource(
        sink=lambda quotes: None,
        interval=60,
        speed=speed,
        metrics=None,
        timeline=timeline,
        clock=clock,
        now=now,
    )
    source.load()
    timeline.begin()
    return source


def by_id(quotes: list[TokenQuote]) -> dict[str, TokenQuote]:
    return {quote.coingecko_id or quote.symbol: quote for quote in quotes}


def test_first_batch_is_the_recording_at_the_start_of_its_window() -> None:
    quotes = make(FakeClock()).next_batch()
    coins = by_id(quotes)
    bitcoin = coins["bitcoin"]

    assert len(quotes) == 100
    assert {quote.source for quote in quotes} == {"replay"}
    assert bitcoin.price_usd == Decimal("27924.562097939088")  # the 21:00:31 hourly point
    assert bitcoin.as_of == NOW  # recorded play_from, re-based to the start
    assert bitcoin.circulating_supply == Decimal("19507918.0")  # from the 20:12 answer
    assert bitcoin.percent_change_1h == Decimal("0.07740956")  # vs 20:00:18, recorded
    # ethereum's newest reading is the 2023-10-08 00:00 daily row, 21 h before play_from
    assert coins["ethereum"].as_of == NOW - timedelta(hours=21, seconds=31.002) / SPEED
    assert coins["ethereum"].percent_change_1h is None  # no newer reading within the hour


def test_ranks_follow_market_caps_in_every_batch() -> None:
    clock = FakeClock()
    source = make(clock)
    for _ in range(5):
        quotes = sorted(source.next_batch(), key=lambda quote: quote.rank or 0)
        caps = [quote.market_cap_usd or Decimal(0) for quote in quotes]
        assert [quote.rank for quote in quotes] == list(range(1, 101))
        assert caps == sorted(caps, reverse=True)
        clock.advance(3600)  # 60 recorded hours


def test_coins_without_a_series_are_the_recorded_answer() -> None:
    source = make(FakeClock())
    payload = bundled_recording().snapshot
    parsed = by_id(parse_markets(payload, received_at=NOW, source="replay").quotes)
    tether = by_id(source.next_batch())["tether"]

    assert tether.price_usd == parsed["tether"].price_usd
    assert tether.market_cap_usd == parsed["tether"].market_cap_usd
    assert parsed["tether"].as_of is not None
    recorded_age = bundled_recording().play_from - parsed["tether"].as_of
    assert tether.as_of == NOW - recorded_age / SPEED  # re-based too


def test_time_moves_forward_and_the_loop_continues_from_where_it_was() -> None:
    clock = FakeClock()
    source = make(clock)
    recording = bundled_recording()
    span = recording.span.total_seconds() / SPEED
    first = by_id(source.next_batch())["bitcoin"]
    clock.advance(span - 0.001)
    end = by_id(source.next_batch())["bitcoin"]
    clock.advance(0.002)
    looped = by_id(source.next_batch())["bitcoin"]
    clock.advance(span)
    twice = by_id(source.next_batch())["bitcoin"]

    assert first.as_of is not None
    assert end.as_of is not None
    assert looped.as_of is not None
    assert first.as_of < end.as_of <= looped.as_of  # never back at the loop
    before_last = recording.series["bitcoin"].at(recording.play_to - timedelta(seconds=1))
    last = recording.series["bitcoin"].at(recording.play_to)
    assert before_last is not None
    assert last is not None
    assert end.price_usd == before_last.price
    # The next pass starts from the last reading of this one, not from the first again.
    assert looped.price_usd is not None
    assert abs(looped.price_usd / last.price - 1) < Decimal("1e-11")
    assert twice.price_usd is not None
    assert twice.as_of is not None
    assert twice.as_of > looped.as_of
    assert source.state()["loop"] == 2


async def test_run_emits_a_batch_every_interval_over_speed(metrics: Metrics) -> None:
    clock = FakeClock(0.0)
    sleeps: list[float] = []
    batches: list[list[TokenQuote]] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)
        await asyncio.sleep(0)

    source = MarketReplaySource(
        sink=batches.append,
        interval=60,
        speed=30,
        metrics=metrics,
        clock=clock,
        sleep=sleep,
        now=lambda: NOW,
    )
    task = asyncio.create_task(source.run())
    try:
        await wait_for(lambda: len(batches) >= 4, message="four batches")
        assert source.health.state == "connected"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    assert sleeps[:3] == [2.0, 2.0, 2.0]  # 60 s / 30x
    assert [len(batch) for batch in batches[:4]] == [100] * 4
    messages = metrics.registry.get_sample_value(
        "tokenpulse_source_messages_total", {"source": "replay_tokens", "kind": "markets"}
    )
    assert messages is not None
    assert messages >= 4
    assert source.health.state == "idle"


def test_a_fast_replay_is_capped_at_four_batches_a_second() -> None:
    source = MarketReplaySource(sink=lambda quotes: None, interval=60, speed=6000, metrics=None)
    assert source.period == 0.25


def test_replay_needs_a_positive_period() -> None:
    with pytest.raises(ValueError, match="positive"):
        MarketReplaySource(sink=lambda quotes: None, interval=60, speed=0, metrics=None)


async def test_a_replay_behind_its_schedule_still_yields_to_the_event_loop(
    metrics: Metrics,
) -> None:
    """Parsing a batch takes longer than a period (a fast replay on a loaded machine): the
    source must still let other coroutines run, or the whole service freezes."""
    clock = FakeClock(0.0)
    batches: list[list[TokenQuote]] = []

    def slow_sink(quotes: list[TokenQuote]) -> None:
        batches.append(quotes)
        clock.advance(5.0)  # each batch "takes" 5 s against a 2 s period: always behind

    async def never_called(seconds: float) -> None:
        raise AssertionError(f"a source behind schedule slept {seconds}s")

    source = MarketReplaySource(
        sink=slow_sink,
        interval=60,
        speed=30,
        metrics=metrics,
        clock=clock,
        sleep=never_called,
        now=lambda: NOW,
    )
    source.load()
    task = asyncio.create_task(source.run())
    try:
        # This coroutine only gets here again if the source yields between batches.
        await wait_for(lambda: len(batches) >= 3, message="batches while the loop stays live")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_the_window_file_names_what_exists() -> None:
    window = json.loads(data_path("replay/window.json").read_text())
    folder = data_path("replay")
    files = [window["snapshot"], *window["charts"]["bitcoin"], *window["daily"].values()]
    assert all((folder / name).is_file() for name in files)
    assert window["pairs"] == {
        "BTC/USD": "bitcoin",
        "ETH/USD": "ethereum",
        "LTC/USD": "litecoin",
        "XRP/USD": "ripple",
    }
