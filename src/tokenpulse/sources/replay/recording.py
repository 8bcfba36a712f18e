"""The bundled recorded period and the replay's clock (SPEC §3.6).

:class:`Recording` is the bundled set (``data/replay/window.json`` names its files, see
``data/README.md``): the CoinGecko ``coins/markets`` answer of 2023-10-08 20:12, bitcoin's
hourly ``market_chart`` of 2023-10-03 .. 2023-10-14 and eleven coins' daily exports. The part
before ``play_from`` seeds history; ``play_from`` .. ``play_to`` is what the replay plays.

:class:`ReplayTimeline` maps wall time onto that window and back, for every replay source of
one process alike, so LTP and token values show the same recorded moment:

* the recorded moment ``play_from + (elapsed × speed) mod span`` plays ``elapsed`` seconds
  after the start; ``loop`` counts how often the window wrapped;
* a recorded time ``t`` of loop ``k`` is re-based to ``start + (k·span + t − play_from) /
  speed`` (so provider timestamps move forward to now, never back at the loop), and a
  recorded time before ``play_from`` (seeded history) to ``start − (play_from − t)``;
* at every loop a series is re-anchored: its values are multiplied by ``(last / first)^k``,
  so a price continues from where the previous pass ended instead of jumping back.
"""

from __future__ import annotations

import bisect
import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from tokenpulse.data import data_path
from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.time import utcnow

WINDOW_FILE = "replay/window.json"
_DIGITS = Context(prec=12, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class Point:
    """One recorded reading of a coin: price, market cap and 24 h volume (USD)."""

    at: datetime
    price: Decimal
    market_cap: Decimal | None
    volume: Decimal | None


@dataclass(frozen=True, slots=True)
class Series:
    """A coin's recorded readings, oldest first."""

    points: tuple[Point, ...]

    def at(self, moment: datetime) -> Point | None:
        """The newest reading at or before ``moment`` (None before the first)."""
        index = bisect.bisect_right([p.at for p in self.points], moment)
        return self.points[index - 1] if index else None

    def between(self, start: datetime, end: datetime) -> list[Point]:
        """Readings with ``start <= at < end``."""
        return [p for p in self.points if start <= p.at < end]


@dataclass(frozen=True, slots=True)
class Recording:
    """The bundled recorded period: window, top-100 answer, per-coin series, pair coins."""

    play_from: datetime
    play_to: datetime
    snapshot: Any  # the decoded coins/markets answer, for parse_markets
    series: dict[str, Series]  # CoinGecko id -> readings
    pairs: dict[str, str]  # "BTC/USD" -> CoinGecko id

    @property
    def span(self) -> timedelta:
        """How much recorded time one pass plays."""
        return self.play_to - self.play_from

    def anchor(self, coin: str, field: str) -> Decimal:
        """``last / first`` of one field over the play window: the factor of one loop."""
        series = self.series.get(coin)
        first = series.at(self.play_from) if series else None
        last = series.at(self.play_to) if series else None
        if first is None or last is None:
            return Decimal(1)
        before: Decimal | None = getattr(first, field)
        after: Decimal | None = getattr(last, field)
        if not before or after is None:
            return Decimal(1)
        return after / before


def reanchor(value: Decimal | None, factor: Decimal, loop: int) -> Decimal | None:
    """``value × factor^loop``, to 12 significant digits (exact on the first pass)."""
    if value is None or loop == 0 or factor == 1:
        return value
    return _DIGITS.multiply(value, _DIGITS.power(factor, loop))


class ReplayTimeline:
    """Wall time ↔ recorded time for one replaying process (see the module docstring)."""

    def __init__(
        self,
        play_from: datetime,
        span: timedelta,
        speed: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        if not speed > 0 or span <= timedelta(0):
            raise ValueError(f"replay needs a positive speed and span ({speed}, {span})")
        self.play_from = play_from
        self.span = span
        self.speed = speed
        self._clock = clock
        self._now = now
        self._started: tuple[float, datetime] | None = None

    def begin(self) -> None:
        """Start the clock (the first source to play does; later calls change nothing)."""
        if self._started is None:
            self._started = (self._clock(), self._now())

    @property
    def start_mono(self) -> float:
        """The monotonic time the replay started at."""
        self.begin()
        assert self._started is not None
        return self._started[0]

    @property
    def start(self) -> datetime:
        """The wall-clock time the replay started at: recorded ``play_from`` of loop 0."""
        self.begin()
        assert self._started is not None
        return self._started[1]

    def recorded_offset(self) -> float:
        """Recorded seconds played since the start, over every loop."""
        return (self._clock() - self.start_mono) * self.speed

    def position(self, offset: float | None = None) -> tuple[int, datetime]:
        """(loop, recorded moment) now, or at a recorded ``offset`` since the start."""
        played = self.recorded_offset() if offset is None else offset
        span = self.span.total_seconds()
        loop, within = divmod(max(played, 0.0), span)
        return int(loop), self.play_from + timedelta(seconds=within)

    def rebase(self, loop: int, recorded: datetime) -> datetime:
        """When recorded time ``recorded`` of pass ``loop`` plays, as a wall-clock time."""
        offset = loop * self.span + (recorded - self.play_from)
        return self.start + offset / self.speed

    def seed_time(self, recorded: datetime) -> datetime:
        """Where history recorded before ``play_from`` is filed: it ends at the start."""
        return self.start - (self.play_from - recorded)

    def wall_offset(self, loop: int, recorded: datetime) -> float:
        """Monotonic seconds after the start at which ``recorded`` of ``loop`` plays."""
        offset = loop * self.span + (recorded - self.play_from)
        return offset.total_seconds() / self.speed


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _chart_points(path: Path) -> list[Point]:
    payload = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    payload = payload.get("data", payload)
    caps = {int(t): Decimal(v) for t, v in payload["market_caps"]}
    volumes = {int(t): Decimal(v) for t, v in payload["total_volumes"]}
    return [
        Point(datetime.fromtimestamp(int(t) / 1000, UTC), Decimal(p), caps.get(t), volumes.get(t))
        for t, p in payload["prices"]
    ]


def _daily_points(path: Path) -> list[Point]:
    points: list[Point] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text = row["snapped_at"].replace(" UTC", "+0000")
            stamp = datetime.strptime(text, "%Y-%m-%d %H:%M:%S%z")
            cells = [row[name].strip() for name in ("price", "market_cap", "total_volume")]
            price, cap, volume = (
                parse_decimal(cell, field=f"{path.name} {stamp}") if cell else None
                for cell in cells
            )
            if price is not None:
                points.append(Point(stamp.astimezone(UTC), price, cap, volume))
    return points


def load_recording(window_file: Path | None = None) -> Recording:
    """Read the bundled recorded period (blocking). Raises ParseError on a broken file."""
    path = window_file or data_path(WINDOW_FILE)
    folder = path.parent
    try:
        window = json.loads(path.read_text(encoding="utf-8"))
        series: dict[str, Series] = {}
        for coin in set(window["daily"]) | set(window["charts"]):
            hourly = sorted(
                (
                    p
                    for name in window["charts"].get(coin, [])
                    for p in _chart_points(folder / name)
                ),
                key=lambda p: p.at,
            )
            joined = {p.at: p for p in hourly}  # the charts agree where they overlap
            daily = window["daily"].get(coin)
            first = min(joined) if joined else None
            for point in _daily_points(folder / daily) if daily else []:
                if first is None or point.at < first:  # daily only before the hourly part
                    joined[point.at] = point
            series[coin] = Series(tuple(joined[at] for at in sorted(joined)))
        snapshot = json.loads(
            (folder / window["snapshot"]).read_text(encoding="utf-8"), parse_float=Decimal
        )
        return Recording(
            play_from=_time(window["play_from"]),
            play_to=_time(window["play_to"]),
            snapshot=snapshot.get("data", snapshot) if isinstance(snapshot, dict) else snapshot,
            series=series,
            pairs=dict(window["pairs"]),
        )
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ParseError("replay_recording", f"{path.name}: {exc}") from None


@lru_cache(maxsize=1)
def bundled_recording() -> Recording:
    """The bundled recording, read once per process."""
    return load_recording()


def seed_points(
    recording: Recording, coin: str, timeline: ReplayTimeline, start: datetime, end: datetime
) -> Sequence[Point]:
    """The readings before ``play_from`` whose seeded (re-based) time is in ``[start, end)``,
    with their times re-based."""
    series = recording.series.get(coin)
    if series is None:
        return []
    return [
        Point(timeline.seed_time(p.at), p.price, p.market_cap, p.volume)
        for p in series.points
        if p.at < recording.play_from and start <= timeline.seed_time(p.at) < end
    ]
