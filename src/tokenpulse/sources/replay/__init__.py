"""The replay source: recorded market data played as if live (SPEC §3.6)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tokenpulse.data import data_path
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.domain.tokens import TokenQuote
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._health import EventSink
from tokenpulse.sources._ws_shard import FeedPairState
from tokenpulse.sources.replay.history import ReplayHistory
from tokenpulse.sources.replay.ltp import ReplaySource
from tokenpulse.sources.replay.recording import ReplayTimeline, bundled_recording
from tokenpulse.sources.replay.tokens import MarketReplaySource
from tokenpulse.sources.replay.venues import REPLAY_VENUES, ReplayVenue

#: Between recorded frames further apart than this, the LTP replay confirms its values with
#: a heartbeat, as a live socket does, so ``stale`` means what it means live.
HEARTBEAT_EVERY = 1.0


class VenueReplaySource(ReplaySource):
    """A replayed venue besides the primary (Coinbase, Binance): it feeds the venue book."""

    def pair_state(self, pair: Pair) -> FeedPairState:
        """Playing is connected and subscribed; silence is the time since the last frame."""
        playing = self.health.connected
        silent = self.health.silent_for() if playing else None
        return FeedPairState(connected=playing, subscribed=playing, silent_for=silent)


@dataclass(frozen=True, slots=True)
class ReplayKit:
    """What every replay part of one process shares: one clock, one history provider."""

    speed: float
    timeline: ReplayTimeline
    history: ReplayHistory

    def ltp_source(
        self, path: str, registry: PairRegistry, sink: EventSink, metrics: Metrics
    ) -> ReplaySource:
        """The LTP replay: the bundled frames on the shared clock, or ``path`` on its own."""
        return ReplaySource(
            path=Path(path) if path else None,
            speed=self.speed,
            registry=registry,
            sink=sink,
            metrics=metrics,
            timeline=None if path else self.timeline,
            heartbeat_every=HEARTBEAT_EVERY,
        )

    def venue_sources(
        self, registry: PairRegistry, sink: EventSink, metrics: Metrics
    ) -> list[tuple[ReplayVenue, VenueReplaySource]]:
        """Coinbase's and Binance's bundled frames on the shared clock, as sources of their own."""
        return [
            (
                venue,
                VenueReplaySource(
                    path=data_path(venue.file),
                    speed=self.speed,
                    registry=registry,
                    sink=sink,
                    metrics=metrics,
                    name=venue.source,
                    timeline=self.timeline,
                    heartbeat_every=HEARTBEAT_EVERY,
                ),
            )
            for venue in REPLAY_VENUES
        ]

    def token_source(
        self, sink: Callable[[list[TokenQuote]], None], interval: float, metrics: Metrics
    ) -> MarketReplaySource:
        """The token replay on the shared clock, a batch every ``interval / speed``."""
        return MarketReplaySource(
            sink=sink, interval=interval, speed=self.speed, metrics=metrics, timeline=self.timeline
        )


def replay_kit(speed: float) -> ReplayKit:
    """The shared clock over the bundled recording at ``speed`` (reads the recording)."""
    recording = bundled_recording()
    timeline = ReplayTimeline(recording.play_from, recording.span, speed)
    return ReplayKit(speed, timeline, ReplayHistory(bundled_recording, lambda: timeline))
