"""Replay: recorded ticker frames played through the real parser, looping, time moving forward.

``SOURCES=replay`` is the offline demo (§1, §3.6): :class:`ReplaySource` reads a JSONL file
and hands every frame to the parser of its ``feed`` (Kraken WS v2, Coinbase, Binance:
:data:`FEEDS` maps a feed name to its parser, see :mod:`~tokenpulse.sources.replay.venues`),
exactly as the live WebSocket source does, so the demo and the benchmarks exercise the real path.

File format, one JSON object per line (lines starting with ``#`` are comments)::

    {"recv_ts": 1696798831.002, "feed": "kraken_ws_v2", "frame": "{\\"channel\\":\\"heartbeat\\"}"}

Time (see :mod:`~tokenpulse.sources.replay.recording`): frame ``i`` of pass ``k`` plays at
``(k·span + recv_ts[i] − recv_ts[0]) / speed`` seconds after the replay's start, on a
:class:`ReplayTimeline` the token replay shares, so a price and its token show the same
recorded moment. Every exchange timestamp is re-based onto that schedule (it moves forward to
now and never back at the loop), and each pair's prices of pass ``k`` are multiplied by
``(last / first)^k`` of that pair in the file, so the loop continues from where the previous
pass ended. A line without the envelope is taken as a bare frame (a user's own recording):
bare frames are one recorded second apart. For a file of its own (not the bundled one), a
recorded pause longer than ``max_gap × speed`` plays as ``max_gap`` seconds. A malformed line
or frame is counted, logged once per kind and skipped; nothing in the file stops the source.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from pathlib import Path
from typing import overload

import orjson
import structlog

from tokenpulse.data import data_path
from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.events import SourceHeartbeat, TickerUpdated
from tokenpulse.domain.pairs import PairRegistry
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.time import utcnow
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._feed import FeedAlive
from tokenpulse.sources._health import (
    EventSink,
    ParseErrorReporter,
    SourceHealth,
    bind_health_metrics,
)
from tokenpulse.sources.kraken.ws_parser import Heartbeat, StatusUpdate, parse_ws_v2
from tokenpulse.sources.replay.recording import ReplayTimeline
from tokenpulse.sources.replay.venues import VENUE_FEEDS, FrameParser

log = structlog.get_logger(__name__)

DEFAULT_REPLAY_FILE = "replay_kraken_ws_v2.jsonl"
REPLAY_FEED = "kraken_ws_v2"
DEFAULT_MAX_GAP = 5.0
#: feed name in a replay line -> the live source's parser for its frames
FEEDS: dict[str, FrameParser] = {REPLAY_FEED: parse_ws_v2, **VENUE_FEEDS}


@dataclass(frozen=True, slots=True)
class ReplayFrame:
    """One frame of a recording: the raw frame text and when it was received (if recorded)."""

    frame: str
    recv_ts: float | None
    line: int
    feed: str = REPLAY_FEED


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
    if feed not in FEEDS:
        raise ParseError("replay_unknown_feed", f"line {line}: feed {str(feed)[:50]!r}")
    recv_ts = record.get("recv_ts")
    if recv_ts is None:
        return ReplayFrame(frame=frame, recv_ts=None, line=line, feed=feed)
    if isinstance(recv_ts, bool) or not isinstance(recv_ts, int | float):
        raise ParseError("replay_bad_envelope", f"line {line}: 'recv_ts' is not a number")
    if not math.isfinite(recv_ts):
        raise ParseError("replay_bad_envelope", f"line {line}: 'recv_ts' is not finite")
    return ReplayFrame(frame=frame, recv_ts=float(recv_ts), line=line, feed=feed)


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


def recorded_offsets(
    frames: Sequence[ReplayFrame], speed: float, max_gap: float | None
) -> tuple[list[float], float]:
    """Each frame's recorded seconds after the first, and the span of one pass.

    Bare frames (no ``recv_ts``) are one second apart; with ``max_gap``, a recorded pause
    longer than ``max_gap`` wall seconds at ``speed`` is shortened to that. The span is the
    last offset (or one second for a file whose frames share one instant).
    """
    offsets: list[float] = []
    previous: ReplayFrame | None = None
    for frame in frames:
        if previous is None:
            offsets.append(0.0)
        else:
            if previous.recv_ts is not None and frame.recv_ts is not None:
                gap = max(frame.recv_ts - previous.recv_ts, 0.0)
            else:
                gap = 1.0
            if max_gap is not None:
                gap = min(gap, max_gap * speed)
            offsets.append(offsets[-1] + gap)
        previous = frame
    span = offsets[-1] if offsets else 0.0
    if frames and frames[-1].recv_ts is None:
        span += 1.0  # bare frames: the next pass starts one second after the last frame
    return offsets, max(span, 1.0)


def _read_file(path: Path) -> tuple[list[ReplayFrame], list[ParseError]]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        return read_replay_lines(handle)


class ReplaySource:
    """Plays a recording of ticker frames at ``speed`` times real time, looping.

    Emits ``TickerUpdated`` for ticker frames and ``SourceHeartbeat`` for heartbeat and
    status frames. ``timeline`` is the process's shared replay clock (the bundled recording);
    without one, the file gets a clock of its own. ``clock`` and ``sleep`` are injectable so
    tests control time.
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
        timeline: ReplayTimeline | None = None,
        now: Callable[[], datetime] = utcnow,
        heartbeat_every: float | None = None,
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
        self.timeline = timeline
        # Between frames further apart than this, a heartbeat keeps the values current (a
        # live socket's heartbeats do the same), so ``stale`` means what it means live.
        self.heartbeat_every = heartbeat_every
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self._reporter = ParseErrorReporter(name, metrics)
        self._anchors: dict[str, Decimal] = {}
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
            shared = self.timeline is not None
            offsets, span = recorded_offsets(frames, self.speed, None if shared else self.max_gap)
            timeline = self.timeline or ReplayTimeline(
                datetime.fromtimestamp(frames[0].recv_ts or 0.0, UTC),
                timedelta(seconds=span),
                self.speed,
                clock=self._clock,
                now=self._now,
            )
            self._anchors = self._anchor_factors(frames)
            self.health.connected = True
            self.health.state = "connected"
            self.health.detail = f"replaying {self.path.name} at {self.speed:g}x"
            timeline.begin()
            while True:
                await self._play(frames, offsets, timeline)
                self.passes += 1
                if not self.loop_forever:
                    return
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

    def _anchor_factors(self, frames: Sequence[ReplayFrame]) -> dict[str, Decimal]:
        """Each pair's ``last / first`` price over the file: one loop's re-anchoring factor."""
        first: dict[str, Decimal] = {}
        last: dict[str, Decimal] = {}
        for frame in frames:
            with contextlib.suppress(ParseError):
                result = FEEDS[frame.feed](
                    frame.frame, source=self.name, received_at=self._now(), registry=self.registry
                )
                for message in result.messages:
                    if isinstance(message, TickerUpdated):
                        key = str(message.ticker.pair)
                        first.setdefault(key, message.ticker.last)
                        last[key] = message.ticker.last
        return {key: last[key] / first[key] for key in first if first[key] > 0}

    async def _play(
        self, frames: list[ReplayFrame], offsets: list[float], timeline: ReplayTimeline
    ) -> None:
        # Each frame is due at an absolute point of the shared schedule, so parsing time does
        # not accumulate as drift and the LTP and token replays show the same moment.
        loop = self.passes
        first = frames[0].recv_ts or 0.0
        span = timeline.span.total_seconds()
        for frame, offset in zip(frames, offsets, strict=True):
            due = timeline.start_mono + (loop * span + offset) / self.speed
            delay = due - self._clock()
            if delay <= 0:
                await asyncio.sleep(0)  # behind schedule: still never starve the event loop
            while delay > 0:  # in a long pause, heartbeats confirm the values
                await self._sleep(min(delay, self.heartbeat_every or delay))
                delay = due - self._clock()
                if delay > 0:
                    self.sink(SourceHeartbeat(source=self.name, at=self._now()))
            shift = timeline.start.timestamp() + loop * span / self.speed - first / self.speed
            self._emit(frame, loop, shift)

    def _emit(self, frame: ReplayFrame, loop: int, shift: float) -> None:
        """Parse and hand on one frame; ``at`` re-bases as ``shift + at / speed``."""
        received_at = self._now()
        self.health.heard()
        try:
            result = FEEDS[frame.feed](
                frame.frame, source=self.name, received_at=received_at, registry=self.registry
            )
        except ParseError as exc:
            self._reporter.report(exc, frame.frame)
            return
        for error in result.errors:
            self._reporter.report(error, frame.frame)
        for message in result.messages:
            if isinstance(message, TickerUpdated):
                self.sink(TickerUpdated(self._moved(message.ticker, loop, shift)))
                kind = "ticker"
            elif isinstance(message, Heartbeat | StatusUpdate | FeedAlive):
                self.sink(SourceHeartbeat(source=self.name, at=received_at))
                kind = "status" if isinstance(message, StatusUpdate) else "heartbeat"
            else:
                kind = type(message).__name__.lower()
            if self.metrics is not None:
                self.metrics.source_messages.labels(self.name, kind).inc()

    def _moved(self, ticker: Ticker, loop: int, shift: float) -> Ticker:
        """The ticker re-based to now and, after the first pass, re-anchored."""
        as_of = ticker.as_of
        if as_of is not None:
            moved = datetime.fromtimestamp(shift + as_of.timestamp() / self.speed, UTC)
            as_of = min(moved, ticker.received_at)
        factor = self._anchors.get(str(ticker.pair), Decimal(1))
        if loop == 0 or factor == 1:
            return replace(ticker, as_of=as_of)
        scale = factor**loop
        return replace(
            ticker,
            as_of=as_of,
            last=_scaled(ticker.last, scale),
            bid=_scaled(ticker.bid, scale),
            ask=_scaled(ticker.ask, scale),
            vwap=_scaled(ticker.vwap, scale),
        )


@overload
def _scaled(value: Decimal, scale: Decimal) -> Decimal: ...
@overload
def _scaled(value: None, scale: Decimal) -> None: ...
def _scaled(value: Decimal | None, scale: Decimal) -> Decimal | None:
    """``value × scale`` with as many digits after the point as ``value`` had (its tick)."""
    if value is None:
        return None
    exponent = value.as_tuple().exponent
    quantum = Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)
    try:
        return (value * scale).quantize(quantum, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:  # too many digits for the tick: keep 12 significant ones
        return Context(prec=12).multiply(value, scale)
