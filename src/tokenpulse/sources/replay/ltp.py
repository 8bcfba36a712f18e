"""Replay: recorded Kraken WS v2 frames played through the real parser, looping.

``SOURCES=replay`` is the offline demo (§1, §3.6): :class:`ReplaySource` reads a JSONL file
and hands every frame to :func:`~tokenpulse.sources.kraken.ws_parser.parse_ws_v2`, exactly as
the live WebSocket source does, so the demo and the benchmarks exercise the real path.

File format, one JSON object per line (lines starting with ``#`` are comments)::

    {"recv_ts": 1669852800.0, "feed": "kraken_ws_v2", "frame": "{\\"channel\\":\\"heartbeat\\"}"}

Frames are spaced ``(recv_ts[i] - recv_ts[i-1]) / speed`` seconds apart, capped at
``max_gap`` so a long pause in a recording does not look like an outage; the first frame
plays at once. A line without the envelope is taken as a bare frame (a user's own recording)
and bare frames are spaced ``1 / speed`` apart. At the end the file starts again; its first
frames are snapshots, so a new pass starts cleanly. A malformed line or frame is counted,
logged once per kind and skipped; nothing in the file stops the source.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson
import structlog

from tokenpulse.data import data_path
from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.events import SourceHeartbeat, TickerUpdated
from tokenpulse.domain.pairs import PairRegistry
from tokenpulse.domain.time import utcnow
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._health import (
    EventSink,
    ParseErrorReporter,
    SourceHealth,
    bind_health_metrics,
)
from tokenpulse.sources.kraken.ws_parser import Heartbeat, StatusUpdate, parse_ws_v2

log = structlog.get_logger(__name__)

DEFAULT_REPLAY_FILE = "replay_kraken_ws_v2.jsonl"
REPLAY_FEED = "kraken_ws_v2"
DEFAULT_MAX_GAP = 5.0


@dataclass(frozen=True, slots=True)
class ReplayFrame:
    """One frame of a recording: the raw frame text and when it was received (if recorded)."""

    frame: str
    recv_ts: float | None
    line: int


def parse_replay_line(text: str, line: int) -> ReplayFrame | None:
    """One line of a replay file -> a frame; None for blank and ``#`` comment lines.

    Raises :class:`ParseError` for a line that is not JSON or has a broken envelope.
    """
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return None
    try:
        record = orjson.loads(stripped)
    except orjson.JSONDecodeError as exc:
        raise ParseError("replay_bad_line", f"line {line}: not JSON ({exc})") from None
    if not isinstance(record, dict) or "frame" not in record:
        return ReplayFrame(frame=stripped, recv_ts=None, line=line)  # a bare frame
    frame = record["frame"]
    if not isinstance(frame, str):
        raise ParseError("replay_bad_envelope", f"line {line}: 'frame' is not a string")
    feed = record.get("feed", REPLAY_FEED)
    if feed != REPLAY_FEED:
        raise ParseError("replay_unknown_feed", f"line {line}: feed {str(feed)[:50]!r}")
    recv_ts = record.get("recv_ts")
    if recv_ts is None:
        return ReplayFrame(frame=frame, recv_ts=None, line=line)
    if isinstance(recv_ts, bool) or not isinstance(recv_ts, int | float):
        raise ParseError("replay_bad_envelope", f"line {line}: 'recv_ts' is not a number")
    if not math.isfinite(recv_ts):
        raise ParseError("replay_bad_envelope", f"line {line}: 'recv_ts' is not finite")
    return ReplayFrame(frame=frame, recv_ts=float(recv_ts), line=line)


def read_replay_lines(lines: Iterable[str]) -> tuple[list[ReplayFrame], list[ParseError]]:
    """All frames of a recording, and one error per malformed line (which is skipped)."""
    frames: list[ReplayFrame] = []
    errors: list[ParseError] = []
    for number, text in enumerate(lines, start=1):
        try:
            frame = parse_replay_line(text, number)
        except ParseError as exc:
            errors.append(exc)
            continue
        if frame is not None:
            frames.append(frame)
    return frames, errors


def replay_gap(previous: ReplayFrame, current: ReplayFrame, speed: float, max_gap: float) -> float:
    """Seconds to wait between two frames at ``speed``, never negative nor above ``max_gap``."""
    if previous.recv_ts is not None and current.recv_ts is not None:
        gap = (current.recv_ts - previous.recv_ts) / speed
    else:
        gap = 1.0 / speed
    return min(max(gap, 0.0), max_gap)


def _read_file(path: Path) -> tuple[list[ReplayFrame], list[ParseError]]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        return read_replay_lines(handle)


class ReplaySource:
    """Plays a recording of Kraken WS v2 frames at ``speed`` times real time, looping.

    Emits ``TickerUpdated`` for ticker frames and ``SourceHeartbeat`` for heartbeat and
    status frames. ``clock`` and ``sleep`` are injectable so tests control time.
    """

    def __init__(
        self,
        *,
        path: Path | None,
        speed: float,
        registry: PairRegistry,
        sink: EventSink,
        metrics: Metrics | None,
        loop_forever: bool = True,
        name: str = "replay",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        max_gap: float = DEFAULT_MAX_GAP,
    ) -> None:
        if not speed > 0 or not math.isfinite(speed):
            raise ValueError(f"replay speed must be a positive number, got {speed!r}")
        self.name = name
        self.path = path if path is not None else data_path(DEFAULT_REPLAY_FILE)
        self.speed = speed
        self.registry = registry
        self.sink = sink
        self.metrics = metrics
        self.loop_forever = loop_forever
        self.max_gap = max_gap
        self.passes = 0  # completed passes over the file
        self.health = SourceHealth(name=name, kind="replay")
        self._clock = clock
        self._sleep = sleep
        self._reporter = ParseErrorReporter(name, metrics)
        if metrics is not None:
            bind_health_metrics(self.health, metrics)

    async def run(self) -> None:
        """Play the file until cancelled (or once, with ``loop_forever=False``)."""
        try:
            frames = await self._load()
            while not frames:
                if not self.loop_forever:
                    return
                await self._sleep(self.max_gap)  # the file may be fixed or appear
                frames = await self._load()
            self.health.connected = True
            self.health.state = "connected"
            self.health.detail = f"replaying {self.path.name} at {self.speed:g}x"
            first_wait = 0.0
            while True:
                await self._play(frames, first_wait)
                self.passes += 1
                if not self.loop_forever:
                    return
                first_wait = min(1.0 / self.speed, self.max_gap)
        finally:
            if self.health.connected:
                self.health.connected = False
                self.health.state = "idle"

    async def _load(self) -> list[ReplayFrame]:
        try:
            frames, errors = await asyncio.to_thread(_read_file, self.path)
        except OSError as exc:
            self._unusable(f"cannot read replay file {self.path}: {exc.strerror or exc}")
            return []
        for error in errors:
            self._reporter.report(error, str(error))
        if not frames:
            self._unusable(f"replay file {self.path} has no frames")
        return frames

    def _unusable(self, text: str) -> None:
        if self.health.detail != text:  # log a lasting problem once, count every retry
            log.error("replay file unusable", source=self.name, error=text)
        self.health.connected = False
        self.health.state = "failed"
        self.health.detail = text
        self.health.failed("replay_file", text)
        if self.metrics is not None:
            self.metrics.source_errors.labels(self.name, "replay_file").inc()

    async def _play(self, frames: list[ReplayFrame], first_wait: float) -> None:
        # Waits are scheduled against the clock, not chained, so parsing time does not
        # accumulate as drift; after a stall (longer than max_gap) the schedule restarts.
        target = self._clock()
        previous: ReplayFrame | None = None
        for frame in frames:
            wait = (
                first_wait
                if previous is None
                else replay_gap(previous, frame, self.speed, self.max_gap)
            )
            target += wait
            delay = target - self._clock()
            if delay > 0:
                await self._sleep(delay)
            else:
                if -delay > self.max_gap:
                    target = self._clock()
                await asyncio.sleep(0)  # behind schedule: still never starve the event loop
            self._emit(frame)
            previous = frame

    def _emit(self, frame: ReplayFrame) -> None:
        received_at = utcnow()
        self.health.heard()
        try:
            result = parse_ws_v2(
                frame.frame, source=self.name, received_at=received_at, registry=self.registry
            )
        except ParseError as exc:
            self._reporter.report(exc, frame.frame)
            return
        for error in result.errors:
            self._reporter.report(error, frame.frame)
        for message in result.messages:
            if isinstance(message, TickerUpdated):
                self.sink(message)
                kind = "ticker"
            elif isinstance(message, Heartbeat | StatusUpdate):
                self.sink(SourceHeartbeat(source=self.name, at=received_at))
                kind = "heartbeat" if isinstance(message, Heartbeat) else "status"
            else:
                kind = type(message).__name__.lower()
            if self.metrics is not None:
                self.metrics.source_messages.labels(self.name, kind).inc()
