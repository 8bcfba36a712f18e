"""ReplaySource: the bundled recording through the real parser, timing, bad lines, looping.

Time is injected (``clock``/``sleep``), so nothing here actually waits for the recording.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import wait_for
from tokenpulse.data import data_path, kraken_pair_registry
from tokenpulse.domain.events import DomainEvent, SourceHeartbeat, TickerUpdated
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.observability.metrics import Metrics
from tokenpulse.settings import DEFAULT_PAIRS
from tokenpulse.sources.kraken.ws_parser import StatusUpdate, parse_ws_v2
from tokenpulse.sources.replay.ltp import ReplayFrame, ReplaySource, read_replay_lines
from tokenpulse.sources.replay.recording import bundled_recording

REPO = Path(__file__).resolve().parents[2]
BUNDLED = data_path("replay_kraken_ws_v2.jsonl")


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def ticker_frame(symbol: str, last: str) -> str:
    return json.dumps(
        {"channel": "ticker", "type": "update", "data": [{"symbol": symbol, "last": last}]}
    ).replace(f'"{last}"', last)


def envelope(recv_ts: float, frame: str) -> str:
    return json.dumps({"recv_ts": recv_ts, "feed": "kraken_ws_v2", "frame": frame})


def make_source(
    path: Path | None,
    events: list[DomainEvent],
    fake_time: FakeTime,
    *,
    speed: float = 60.0,
    metrics: Metrics | None = None,
    loop_forever: bool = False,
) -> ReplaySource:
    return ReplaySource(
        path=path,
        speed=speed,
        registry=kraken_pair_registry(),
        sink=events.append,
        metrics=metrics,
        loop_forever=loop_forever,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )


def tickers(events: list[DomainEvent]) -> list[TickerUpdated]:
    return [event for event in events if isinstance(event, TickerUpdated)]


def parse_errors(metrics: Metrics, kind: str) -> float:
    value = metrics.registry.get_sample_value(
        "tokenpulse_source_parse_errors_total", {"source": "replay", "kind": kind}
    )
    return value or 0.0


# -- the bundled recording --------------------------------------------------------------


def bundled_tickers() -> tuple[list[ReplayFrame], list[Ticker]]:
    frames, line_errors = read_replay_lines(BUNDLED.read_text(encoding="utf-8").splitlines())
    assert line_errors == []
    registry = kraken_pair_registry()
    now = datetime.now(UTC)
    results = [
        parse_ws_v2(frame.frame, source="replay", received_at=now, registry=registry)
        for frame in frames
    ]
    assert [error for result in results for error in result.errors] == []
    assert isinstance(results[0].messages[0], StatusUpdate)
    updates = [m.ticker for r in results for m in r.messages if isinstance(m, TickerUpdated)]
    return frames, updates


def test_bundled_file_is_the_recorded_period_through_the_real_parser() -> None:
    frames, updates = bundled_tickers()
    recording = bundled_recording()

    default_pairs = {Pair.of(*text.split("/")) for text in DEFAULT_PAIRS}
    assert {ticker.pair for ticker in updates} == default_pairs
    # The snapshot of every pair comes first, so a new pass starts cleanly.
    first_snapshots = [json.loads(frame.frame) for frame in frames[1 : 1 + len(default_pairs)]]
    assert {f["type"] for f in first_snapshots} == {"snapshot"}
    assert frames[0].recv_ts == recording.play_from.timestamp()
    assert frames[-1].recv_ts == recording.play_to.timestamp()
    for ticker in updates:
        assert ticker.as_of is not None
        assert recording.play_from <= ticker.as_of <= recording.play_to
        assert ticker.bid is not None
        assert ticker.ask is not None
        assert ticker.bid <= ticker.last <= ticker.ask
        assert ticker.ask - ticker.bid <= ticker.last * Decimal("0.001")
    btc = [t for t in updates if str(t.pair) == "BTC/USD"]
    assert len(btc) > 120  # hourly
    # Every BTC/USD price is bitcoin's recorded CoinGecko price at that moment, to Kraken's tick.
    series = recording.series["bitcoin"]
    for ticker in btc:
        assert ticker.as_of is not None
        point = series.at(ticker.as_of)
        assert point is not None
        assert abs(ticker.last - point.price) <= Decimal("0.05")


async def test_bundled_file_plays_every_frame_with_no_parse_error() -> None:
    events: list[DomainEvent] = []
    metrics = Metrics()
    source = make_source(None, events, FakeTime(), metrics=metrics)
    frames, updates = bundled_tickers()

    await source.run()

    assert source.path == BUNDLED
    assert source.passes == 1
    assert len(tickers(events)) == len(updates)
    heartbeats = sum('"heartbeat"' in f.frame or '"status"' in f.frame for f in frames)
    assert sum(isinstance(event, SourceHeartbeat) for event in events) == heartbeats
    assert "tokenpulse_source_parse_errors_total{" not in metrics.render().decode()
    assert all(event.ticker.source == "replay" for event in tickers(events))


async def test_bundled_timing_at_default_speed() -> None:
    fake_time = FakeTime()
    source = make_source(None, [], fake_time, speed=60.0)

    await source.run()

    # A heartbeat every 5 recorded minutes: 5 s apart at 60x; one pass is the whole window.
    assert max(fake_time.sleeps) <= 5.0 + 1e-6
    span = bundled_recording().span.total_seconds()
    assert sum(fake_time.sleeps) == pytest.approx(span / 60)


def test_build_script_takes_bid_and_ask_from_the_recorded_spread() -> None:
    spec = importlib.util.spec_from_file_location(
        "build_replay_data", REPO / "scripts" / "build_replay_data.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    at = datetime(2023, 10, 8, 21, tzinfo=UTC)

    frame = json.loads(
        module.ticker("update", "BTC/USD", Decimal("27924.562097939088"), at, Decimal("1.4e-6")),
        parse_float=Decimal,
    )["data"][0]
    assert (frame["bid"], frame["last"], frame["ask"]) == (
        Decimal("27924.6"),
        Decimal("27924.6"),
        Decimal("27924.7"),
    )
    frame = json.loads(
        module.ticker("update", "ETH/USD", Decimal("1635.0828"), at, Decimal("0.000115")),
        parse_float=Decimal,
    )["data"][0]
    assert (frame["bid"], frame["last"], frame["ask"]) == (
        Decimal("1634.99"),
        Decimal("1635.08"),
        Decimal("1635.18"),
    )


# -- timing ------------------------------------------------------------------------------


async def test_frames_are_spaced_by_recv_ts_over_speed_capped(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    frames = [ticker_frame("BTC/USD", price) for price in ("100.5", "101.5", "102.5", "103.5")]
    path.write_text(
        "\n".join(
            envelope(ts, frame) for ts, frame in zip((100, 101, 103, 200), frames, strict=True)
        )
        + "\n",
        encoding="utf-8",
    )
    events: list[DomainEvent] = []
    fake_time = FakeTime()

    await make_source(path, events, fake_time, speed=2.0).run()

    assert fake_time.sleeps == pytest.approx([0.5, 1.0, 5.0])  # 97 s / 2 capped at 5 s
    assert [str(event.ticker.last) for event in tickers(events)] == [
        "100.5",
        "101.5",
        "102.5",
        "103.5",
    ]


async def test_bare_frames_are_spaced_one_over_speed(tmp_path: Path) -> None:
    path = tmp_path / "bare.jsonl"
    lines = [
        ticker_frame("ETH/USD", "2000.1"),
        '{"channel":"heartbeat"}',
        ticker_frame("ETH/USD", "2000.2"),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    events: list[DomainEvent] = []
    fake_time = FakeTime()

    await make_source(path, events, fake_time, speed=4.0).run()

    assert fake_time.sleeps == pytest.approx([0.25, 0.25])
    assert [type(event).__name__ for event in events] == [
        "TickerUpdated",
        "SourceHeartbeat",
        "TickerUpdated",
    ]


async def test_time_spent_parsing_is_not_added_to_the_waits(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_text(
        "\n".join(envelope(ts, '{"channel":"heartbeat"}') for ts in (0, 10, 20)) + "\n",
        encoding="utf-8",
    )
    fake_time = FakeTime()

    def slow_sink(event: DomainEvent) -> None:
        fake_time.now += 0.4  # the consumer took 0.4 s of the 1 s gap

    source = ReplaySource(
        path=path,
        speed=10.0,
        registry=kraken_pair_registry(),
        sink=slow_sink,
        metrics=None,
        loop_forever=False,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )

    await source.run()

    assert fake_time.sleeps == pytest.approx([0.6, 0.6])


# -- bad input -----------------------------------------------------------------------------


async def test_malformed_lines_and_frames_are_counted_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "\n".join(
            [
                "# a comment",
                "",
                envelope(1, ticker_frame("BTC/USD", "100.5")),
                "this is not json",
                json.dumps({"recv_ts": 2, "feed": "kraken_ws_v2", "frame": {"channel": "x"}}),
                json.dumps({"recv_ts": 3, "feed": "coinbase", "frame": "{}"}),
                json.dumps({"recv_ts": "soon", "frame": '{"channel":"heartbeat"}'}),
                envelope(4, '{"channel":"nosuch"}'),
                envelope(5, "{not json"),
                envelope(6, ticker_frame("NOPE/USD", "1.5")),
                envelope(7, ticker_frame("ETH/USD", "2000.25")),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    events: list[DomainEvent] = []
    metrics = Metrics()
    source = make_source(path, events, FakeTime(), metrics=metrics)

    await source.run()

    assert [str(event.ticker.pair) for event in tickers(events)] == ["BTC/USD", "ETH/USD"]
    assert parse_errors(metrics, "replay_bad_line") == 1
    assert parse_errors(metrics, "replay_bad_envelope") == 2
    assert parse_errors(metrics, "replay_unknown_feed") == 1
    assert parse_errors(metrics, "unknown_channel") == 1
    assert parse_errors(metrics, "invalid_json") == 1
    assert parse_errors(metrics, "unknown_symbol") == 1
    assert source.passes == 1


async def test_missing_file_is_reported_and_retried_until_it_appears(tmp_path: Path) -> None:
    path = tmp_path / "later.jsonl"
    events: list[DomainEvent] = []
    fake_time = FakeTime()
    source = make_source(path, events, fake_time, loop_forever=True)

    task = asyncio.create_task(source.run())
    try:
        await wait_for(lambda: source.health.state == "failed", timeout=2.0)
        assert source.health.connected is False
        assert "cannot read replay file" in source.health.detail
        assert 5.0 in fake_time.sleeps  # retries every max_gap, not in a busy loop

        path.write_text(envelope(1, ticker_frame("BTC/USD", "100.5")) + "\n", encoding="utf-8")
        await wait_for(lambda: len(events) >= 1, timeout=2.0)
        assert source.health.connected is True
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert source.health.connected is False


async def test_missing_file_without_loop_returns(tmp_path: Path) -> None:
    source = make_source(tmp_path / "none.jsonl", [], FakeTime())
    await source.run()
    assert source.health.state == "failed"
    assert source.health.errors == {"replay_file": 1}


def test_speed_must_be_positive() -> None:
    with pytest.raises(ValueError, match="speed"):
        make_source(None, [], FakeTime(), speed=0.0)


# -- looping -------------------------------------------------------------------------------


async def test_loops_forward_re_anchored_and_reports_health(tmp_path: Path) -> None:
    path = tmp_path / "loop.jsonl"
    frames = [
        envelope(10, ticker_frame("BTC/USD", "100.5")),
        envelope(11, ticker_frame("BTC/USD", "200.5")),
    ]
    path.write_text("\n".join(frames) + "\n", encoding="utf-8")
    events: list[DomainEvent] = []
    fake_time = FakeTime()
    source = make_source(path, events, fake_time, speed=1.0, loop_forever=True)

    task = asyncio.create_task(source.run())
    try:
        await wait_for(lambda: source.passes >= 3, timeout=2.0)
        assert source.health.connected is True
        assert source.health.state == "connected"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    prices = [str(event.ticker.last) for event in tickers(events)]
    # Each pass continues from where the last one ended (x 200.5/100.5), never back.
    assert prices[:6] == ["100.5", "200.5", "200.5", "400.0", "400.0", "798.0"]
    assert fake_time.sleeps[:3] == pytest.approx([1.0, 1.0, 1.0])
    assert source.health.connected is False
    assert source.health.messages >= 6


async def test_exchange_timestamps_are_re_based_to_now(tmp_path: Path) -> None:
    path = tmp_path / "stamped.jsonl"
    frames = [
        '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","last":100.5,'
        f'"timestamp":"{stamp}"}}]}}'
        for stamp in ("2023-10-08T21:00:00.000000Z", "2023-10-08T22:00:00.000000Z")
    ]
    base = datetime(2023, 10, 8, 21, tzinfo=UTC).timestamp()
    lines = [envelope(base, frames[0]), envelope(base + 3600, frames[1])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    events: list[DomainEvent] = []
    started = datetime.now(UTC)

    await make_source(path, events, FakeTime(), speed=3600.0).run()

    stamps = [event.ticker.as_of for event in tickers(events)]
    assert stamps[0] is not None
    assert stamps[1] is not None
    assert started <= stamps[0] <= datetime.now(UTC)
    assert stamps[1] > stamps[0]  # an hour of recording is a second at 3600x


async def test_a_long_recorded_pause_is_filled_with_heartbeats(tmp_path: Path) -> None:
    """A live socket confirms its values with heartbeats; so does the replay between frames
    recorded far apart, so ``stale`` means the same as live."""
    path = tmp_path / "pause.jsonl"
    frames = [
        envelope(0, ticker_frame("BTC/USD", "100.5")),
        envelope(4, ticker_frame("BTC/USD", "101.5")),
    ]
    path.write_text("\n".join(frames) + "\n", encoding="utf-8")
    events: list[DomainEvent] = []
    fake_time = FakeTime()
    source = ReplaySource(
        path=path,
        speed=1.0,
        registry=kraken_pair_registry(),
        sink=events.append,
        metrics=None,
        loop_forever=False,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        heartbeat_every=1.0,
    )

    await source.run()

    assert fake_time.sleeps == pytest.approx([1.0] * 4)
    names = [type(event).__name__ for event in events]
    assert names == ["TickerUpdated", *["SourceHeartbeat"] * 3, "TickerUpdated"]
