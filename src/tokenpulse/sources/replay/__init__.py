"""The replay source: recorded market data played as if live (SPEC §3.6)."""

from __future__ import annotations

from dataclasses import dataclass

from tokenpulse.sources.replay.history import ReplayHistory
from tokenpulse.sources.replay.recording import ReplayTimeline, bundled_recording


@dataclass(frozen=True, slots=True)
class ReplayKit:
    """What every replay part of one process shares: one clock, one history provider."""

    timeline: ReplayTimeline
    history: ReplayHistory


def replay_kit(speed: float) -> ReplayKit:
    """The shared clock over the bundled recording at ``speed`` (reads the recording)."""
    recording = bundled_recording()
    timeline = ReplayTimeline(recording.play_from, recording.span, speed)
    return ReplayKit(timeline, ReplayHistory(bundled_recording, lambda: timeline))
