"""Token replay for ``SOURCES=replay`` (SPEC §3.6): one recorded period through the real parser.

:class:`MarketReplaySource` plays the bundled recording
(:mod:`~tokenpulse.sources.replay.recording`, ``data/README.md``): every
``interval / speed`` seconds (``MARKET_POLL_INTERVAL / REPLAY_SPEED``, one second by default,
never faster than :data:`MIN_PERIOD`) the CoinGecko ``coins/markets`` answer of 2023-10-08
goes through :func:`parse_markets`, and the coins with a recorded series (bitcoin hourly,
eleven others daily) take price, market cap and 24 h volume from their newest reading at the
recorded moment the shared :class:`ReplayTimeline` shows, re-anchored after each loop. Their
``as_of`` is that reading's time re-based to now, and their 1 h / 24 h / 7 d changes are
computed from the series (null when the series has no newer reading within the window).
The other coins keep the recorded answer's values. ``rank`` is the order by market cap
within the batch, so ranks always agree with market caps. ``received_at`` is now.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog

from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.time import utcnow
from tokenpulse.domain.tokens import TokenQuote
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._health import ParseErrorReporter, SourceHealth, bind_health_metrics
from tokenpulse.sources.coingecko.parser import parse_markets
from tokenpulse.sources.replay.recording import (
    Recording,
    ReplayTimeline,
    bundled_recording,
    reanchor,
)

log = structlog.get_logger(__name__)

MIN_PERIOD = 0.25  # seconds between batches, whatever the speed
CHANGE_WINDOWS = {
    "percent_change_1h": timedelta(hours=1),
    "percent_change_24h": timedelta(days=1),
    "percent_change_7d": timedelta(days=7),
}
_PERCENT = Decimal("0.00000001")


class MarketReplaySource:
    """Emits the recorded token market data as a live-looking batch every period.

    ``clock``/``sleep`` (monotonic) and ``now`` (the ``received_at`` stamp) are injectable;
    ``timeline`` is the process's shared replay clock (one is made when none is given).
    """

    def __init__(
        self,
        *,
        sink: Callable[[list[TokenQuote]], None],
        interval: float,
        speed: float,
        metrics: Metrics | None,
        name: str = "replay_tokens",
        source: str = "replay",
        timeline: ReplayTimeline | None = None,
        recording: Callable[[], Recording] = bundled_recording,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        if not interval > 0 or not speed > 0:
            raise ValueError(f"replay needs a positive interval and speed ({interval}, {speed})")
        self.name = name
        self.source = source
        self.sink = sink
        self.speed = speed
        self.period = max(interval / speed, MIN_PERIOD)
        self.metrics = metrics
        self.batches = 0
        self.health = SourceHealth(name=name, kind="replay")
        self.timeline = timeline
        self._recording_loader = recording
        self._recording: Recording | None = None
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self._reporter = ParseErrorReporter(name, metrics)
        if metrics is not None:
            bind_health_metrics(self.health, metrics)

    def load(self) -> Recording:
        """Read the bundled recording (blocking: call it from a thread)."""
        if self._recording is None:
            self._recording = self._recording_loader()
            if self.timeline is None:
                self.timeline = ReplayTimeline(
                    self._recording.play_from,
                    self._recording.span,
                    self.speed,
                    clock=self._clock,
                    now=self._now,
                )
        return self._recording

    def next_batch(self) -> list[TokenQuote]:
        """The quotes of the recorded moment now, through the real parser."""
        recording = self.load()
        assert self.timeline is not None
        loop, recorded = self.timeline.position()
        received_at = self._now()
        try:
            result = parse_markets(recording.snapshot, received_at=received_at, source=self.source)
        except ParseError as exc:
            self._reporter.report(exc, str(recording.snapshot)[:500])
            return []
        for bad in result.bad_entries:
            self._reporter.report(bad, str(bad))
        if self.metrics is not None:
            self.metrics.source_messages.labels(self.name, "markets").inc()
        moved = [self._at(quote, recording, loop, recorded) for quote in result.quotes]
        self.batches += 1
        self.health.heard()
        return _ranked(moved)

    def _at(
        self, quote: TokenQuote, recording: Recording, loop: int, recorded: datetime
    ) -> TokenQuote:
        """``quote`` as its recorded series shows it at ``recorded`` of pass ``loop``."""
        assert self.timeline is not None
        coin = quote.coingecko_id or ""
        series = recording.series.get(coin)
        point = series.at(recorded) if series else None
        if series is None or point is None:
            as_of = quote.as_of and self.timeline.rebase(loop, quote.as_of)
            return dataclasses.replace(quote, as_of=as_of and min(as_of, quote.received_at))
        price_factor = recording.anchor(coin, "price")
        changes: dict[str, Decimal | None] = {}
        for name, window in CHANGE_WINDOWS.items():
            then_loop, then = loop, recorded - window
            while then < recording.play_from and then_loop > 0:  # the previous pass
                then, then_loop = then + recording.span, then_loop - 1
            before = series.at(then)
            if before is None or before.at == point.at or before.price == 0:
                changes[name] = None
                continue
            now_price = reanchor(point.price, price_factor, loop)
            then_price = reanchor(before.price, price_factor, then_loop)
            changes[name] = _percent(now_price, then_price)
        as_of = self.timeline.rebase(loop, point.at)
        return dataclasses.replace(
            quote,
            price_usd=reanchor(point.price, price_factor, loop),
            market_cap_usd=reanchor(point.market_cap, recording.anchor(coin, "market_cap"), loop),
            volume_24h_usd=reanchor(point.volume, recording.anchor(coin, "volume"), loop),
            as_of=min(as_of, quote.received_at),
            percent_change_1h=changes["percent_change_1h"],
            percent_change_24h=changes["percent_change_24h"],
            percent_change_7d=changes["percent_change_7d"],
        )

    async def run(self) -> None:
        """Emit a batch every period until cancelled."""
        try:
            while self._recording is None:
                try:
                    await asyncio.to_thread(self.load)
                except (OSError, ParseError, ValueError) as exc:
                    self._unusable(f"cannot read the bundled replay data: {exc}")
                    await self._sleep(60.0)
            assert self.timeline is not None
            self.timeline.begin()
            self.health.connected = True
            self.health.state = "connected"
            self.health.detail = f"replaying recorded token data every {self.period:g}s"
            target = self._clock()
            while True:
                self._emit(self.next_batch())
                target += self.period
                delay = target - self._clock()
                if delay > 0:
                    await self._sleep(delay)
                else:
                    if -delay > self.period * 10:  # stalled: restart the schedule, no burst
                        target = self._clock()
                    # Behind schedule (parsing took longer than a period): yield anyway, or
                    # the event loop would starve.
                    await asyncio.sleep(0)
        finally:
            self.health.connected = False
            self.health.state = "idle"

    def _emit(self, quotes: list[TokenQuote]) -> None:
        try:
            self.sink(quotes)
        except Exception as exc:  # the sink is someone else's; keep replaying
            log.exception("replay sink failed", source=self.name, error=str(exc))
            if self.metrics is not None:
                self.metrics.source_errors.labels(self.name, "sink").inc()

    def _unusable(self, text: str) -> None:
        log.error("token replay unusable", source=self.name, error=text)
        self.health.state = "failed"
        self.health.detail = text
        self.health.failed("replay_file", text)

    def state(self) -> dict[str, Any]:
        """Where the replay is: batches sent, the pass and the recorded moment it shows."""
        state: dict[str, Any] = {**self.health.to_json(), "batches": self.batches}
        state["period_s"] = self.period
        if self._recording is not None and self.timeline is not None:
            loop, recorded = self.timeline.position()
            state["loop"] = loop
            state["recorded_at"] = recorded.isoformat().replace("+00:00", "Z")
            state["recorded_window"] = [
                self._recording.play_from.isoformat().replace("+00:00", "Z"),
                self._recording.play_to.isoformat().replace("+00:00", "Z"),
            ]
        return state


def _percent(now: Decimal | None, then: Decimal | None) -> Decimal | None:
    if now is None or then is None or then == 0:
        return None
    try:
        return ((now / then - 1) * 100).quantize(_PERCENT)
    except InvalidOperation:
        return None


def _ranked(quotes: list[TokenQuote]) -> list[TokenQuote]:
    """Ranks 1..n by market cap (largest first; coins without one after, in recorded order)."""
    order = sorted(
        range(len(quotes)),
        key=lambda i: (quotes[i].market_cap_usd is None, -(quotes[i].market_cap_usd or 0), i),
    )
    ranked = list(quotes)
    for rank, index in enumerate(order, start=1):
        ranked[index] = dataclasses.replace(quotes[index], rank=rank)
    return ranked
