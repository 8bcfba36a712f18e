"""The bundled replay's Coinbase and Binance frames: the same recorded moments and prices as
its Kraken-shaped frames, through each venue's real parser, on the shared clock (issue 12)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.unit.test_replay import FakeTime, bundled_tickers
from tokenpulse.data import data_path, kraken_pair_registry
from tokenpulse.domain.events import DomainEvent, TickerUpdated
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.ltp.venues import venue_of
from tokenpulse.sources.replay import VenueReplaySource, replay_kit
from tokenpulse.sources.replay.ltp import FEEDS, read_replay_lines
from tokenpulse.sources.replay.recording import ReplayTimeline, bundled_recording
from tokenpulse.sources.replay.venues import BINANCE, COINBASE, REPLAY_VENUES

TOLERANCE = Decimal("0.005")  # every venue within 0.5 % of the Kraken-shaped price


def venue_tickers(file: str, source: str) -> list[Ticker]:
    frames, line_errors = read_replay_lines(data_path(file).read_text("utf-8").splitlines())
    assert line_errors == []
    registry = kraken_pair_registry()
    now = datetime.now(UTC)
    found: list[Ticker] = []
    for frame in frames:
        result = FEEDS[frame.feed](frame.frame, source=source, received_at=now, registry=registry)
        assert list(result.errors) == []
        found += [m.ticker for m in result.messages if isinstance(m, TickerUpdated)]
    assert len(found) == len(frames)  # every frame is a ticker the real parser reads
    return found


def test_each_venue_plays_the_kraken_frames_moments_within_half_a_percent() -> None:
    _, kraken = bundled_tickers()
    at_kraken = {(t.pair, t.as_of): t.last for t in kraken}
    recording = bundled_recording()
    for venue in REPLAY_VENUES:
        tickers = venue_tickers(venue.file, venue.source)
        assert {t.pair for t in tickers} == set(venue.names)
        for ticker in tickers:
            assert ticker.as_of is not None
            assert recording.play_from <= ticker.as_of <= recording.play_to
            reference = at_kraken[(ticker.pair, ticker.as_of)]  # the same recorded moment
            assert abs(ticker.last / reference - 1) < TOLERANCE
            assert ticker.bid is not None
            assert ticker.ask is not None
            assert ticker.bid <= ticker.last <= ticker.ask
            assert ticker.ask - ticker.bid <= ticker.last * Decimal("0.001")
        # one frame per Kraken ticker of the pairs the venue serves
        assert len(tickers) == sum(t.pair in venue.names for t in kraken)


def test_binance_frames_are_usdt_symbols_read_as_usd_pairs_with_the_recorded_offset() -> None:
    assert BINANCE.names[Pair("BTC", "USD")] == "BTCUSDT"
    assert COINBASE.names[Pair("BTC", "USD")] == "BTC-USD"
    assert Pair("XRP", "USD") not in COINBASE.names  # not in the recorded Coinbase products
    _, kraken = bundled_tickers()
    first_btc = next(t for t in kraken if t.pair == Pair("BTC", "USD"))
    binance = venue_tickers(BINANCE.file, BINANCE.source)
    btc = next(t for t in binance if t.pair == Pair("BTC", "USD"))
    # Binance.US's BTCUSDT 3 s after Coinbase's, 2024-03-13: 73346.14 / 73367.8 - 1
    offset = btc.last / first_btc.last - 1
    assert Decimal("-0.0004") < offset < Decimal("-0.0002")


def test_replayed_venues_are_keyed_by_their_venue() -> None:
    assert venue_of("coinbase_replay") == "coinbase"
    assert venue_of("binance_replay") == "binance"
    assert venue_of("replay") == "replay"  # the primary: the book names it kraken by alias


async def test_venue_sources_play_on_the_shared_clock() -> None:
    fake_time = FakeTime()
    recording = bundled_recording()
    timeline = ReplayTimeline(recording.play_from, recording.span, 60.0, clock=fake_time.clock)
    events: list[DomainEvent] = []
    sources = [
        VenueReplaySource(
            path=data_path(venue.file),
            speed=60.0,
            registry=kraken_pair_registry(),
            sink=events.append,
            metrics=Metrics(),
            loop_forever=False,
            name=venue.source,
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            timeline=timeline,
        )
        for venue in REPLAY_VENUES
    ]
    await asyncio.gather(*(source.run() for source in sources))
    names = {e.ticker.source for e in events if isinstance(e, TickerUpdated)}
    assert names == {"coinbase_replay", "binance_replay"}
    # one pass of the recorded span at 60x, as the Kraken-shaped frames take
    assert fake_time.now - 1000.0 == pytest.approx(recording.span.total_seconds() / 60.0)
    assert all(s.pair_state(Pair("BTC", "USD")).connected is False for s in sources)  # done
    kit_sources = replay_kit(60.0).venue_sources(kraken_pair_registry(), events.append, Metrics())
    assert [(v.venue, s.name) for v, s in kit_sources] == [
        ("coinbase", "coinbase_replay"),
        ("binance", "binance_replay"),
    ]
