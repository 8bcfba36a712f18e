"""Backfill (SPEC §5.4): fill the holes in recent history from the providers' history APIs.

Tokens come from a :class:`TokenChartProvider` (CoinGecko ``market_chart``: price, market
cap and total volume per point; velocity = volume / market cap, as for live data); pairs
from Kraken ``OHLC`` (the close of each finished candle becomes an LTP sample). Rows are
written with origin ``backfill``.

How much, at what resolution (tiers, newest first):

* tokens: the last day at CoinGecko's 5-minute resolution (``days=1``), then up to 7 days
  hourly (``days=7``) — so the 1h velocity trend works minutes after a fresh start and the
  7d trend soon after;
* pairs: the last 720 one-minute candles (12 h), then 7 days of hourly candles.

For each key and tier the store is asked for holes longer than twice the tier's
resolution (in the raw rows, or for hourly tiers in the 1m rollup, which is brought up to
date first and has one row a minute where raw LTP has one a second); only when there is
one is the provider called (once per key and tier, through
its own rate limiter), and only points strictly inside a hole are written; each key that got
rows is rolled up at once, so its trends show before the next key is asked. The store skips
points it already holds and never replaces live rows, so a second run writes nothing.
Holes the provider had no data for are remembered and not asked for again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, TypeVar

import structlog

from tokenpulse.domain.errors import TokenpulseError
from tokenpulse.domain.history import TokenPoint
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.tokens import TokenQuote
from tokenpulse.domain.velocity import compute_velocity
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services._unbroken import Unbroken
from tokenpulse.services.tokens.ports import Gap, HistoryStore

log = structlog.get_logger(__name__)

Series = Sequence[tuple[datetime, Decimal]]
P = TypeVar("P")
T = TypeVar("T")


class MarketChart(Protocol):
    """What a market-chart answer offers: three time series of exact numbers."""

    @property
    def prices(self) -> Series:
        """(time, price in USD), oldest first."""
        ...

    @property
    def market_caps(self) -> Series:
        """(time, market cap in USD), at the same times as ``prices``."""
        ...

    @property
    def total_volumes(self) -> Series:
        """(time, 24 h volume in USD), at the same times as ``prices``."""
        ...


class TokenChartProvider(Protocol):
    """A source of token history, e.g. CoinGecko ``/coins/{id}/market_chart``."""

    async def market_chart(self, coin_id: str, days: int) -> MarketChart:
        """The last ``days`` of ``coin_id`` (raises a TokenpulseError when it cannot)."""
        ...


class Candle(Protocol):
    """One OHLC candle, as far as backfill cares: when it opened, its close, its trades."""

    @property
    def time(self) -> datetime:
        """When the candle opened."""
        ...

    @property
    def close(self) -> Decimal:
        """The last trade's price in the candle."""
        ...

    @property
    def count(self) -> int:
        """How many trades the candle holds (0: no trade, no price to file)."""
        ...


class Candles(Protocol):
    """An OHLC answer, e.g. :class:`~tokenpulse.sources.kraken.ohlc.OhlcResult`."""

    def closed(self, now: datetime) -> Sequence[Candle]:
        """The candles that had ended by ``now``, oldest first."""
        ...


class OhlcProvider(Protocol):
    """A source of pair candles, e.g. :class:`~tokenpulse.sources.kraken.ohlc.KrakenOhlcClient`."""

    async def fetch_ohlc(
        self, pair: Pair, *, interval: int = 1, since: datetime | None = None
    ) -> Candles:
        """Candles of ``interval`` minutes after ``since`` (raises a TokenpulseError)."""
        ...


@dataclass(frozen=True, slots=True)
class ChartTier:
    """Ask ``market_chart(days=days)``, whose points come every ``interval``."""

    days: int
    interval: timedelta


@dataclass(frozen=True, slots=True)
class CandleTier:
    """Ask for up to ``candles`` candles of ``minutes`` each."""

    minutes: int
    candles: int

    @property
    def interval(self) -> timedelta:
        """The width of one candle."""
        return timedelta(minutes=self.minutes)

    @property
    def span(self) -> timedelta:
        """How far back this tier reaches."""
        return self.interval * self.candles


DEFAULT_TOKEN_TIERS = (ChartTier(1, timedelta(minutes=5)), ChartTier(7, timedelta(hours=1)))
DEFAULT_PAIR_TIERS = (CandleTier(1, 720), CandleTier(60, 168))
MAX_TOKEN_DAYS = 7


@dataclass(slots=True)
class FillReport:
    """What one :meth:`Backfiller.fill` did."""

    token_rows: int = 0
    pair_rows: int = 0
    requests: int = 0
    failures: list[str] = field(default_factory=list)


class Backfiller:
    """Finds holes in recent token and pair history and fills them from the providers."""

    def __init__(
        self,
        repo: HistoryStore,
        *,
        charts: TokenChartProvider | None = None,
        ohlc: OhlcProvider | None = None,
        metrics: Metrics | None = None,
        coin_id_for: Callable[[str], str | None] = lambda token_id: token_id,
        token_tiers: Sequence[ChartTier] = DEFAULT_TOKEN_TIERS,
        pair_tiers: Sequence[CandleTier] = DEFAULT_PAIR_TIERS,
        chart_source: str = "coingecko",
        candle_source: str = "kraken_rest",
    ) -> None:
        if any(tier.days > MAX_TOKEN_DAYS for tier in token_tiers):
            raise ValueError(f"token backfill is bounded to {MAX_TOKEN_DAYS} days")
        self.repo = repo
        self.charts = charts
        self.ohlc = ohlc
        self.metrics = metrics
        self.coin_id_for = coin_id_for
        self.token_tiers = sorted(token_tiers, key=lambda tier: tier.days)
        self.pair_tiers = sorted(pair_tiers, key=lambda tier: tier.span)
        self.chart_source = chart_source
        self.candle_source = candle_source
        self._unfillable: dict[tuple[str, str, int], list[Gap]] = {}
        self._unbroken = Unbroken()  # a cancelled fill never cuts a store call in half

    async def settle(self) -> None:
        """Wait for the store operation a cancelled :meth:`fill` left running, if any."""
        await self._unbroken.settle()

    async def fill(
        self, token_ids: Sequence[str], pairs: Sequence[Pair], now: datetime
    ) -> FillReport:
        """Fill what is missing before ``now`` for every token and pair, then roll up.

        A provider or store failure for one key is logged, counted and reported; the
        others go on.
        """
        report = FillReport()
        try:
            # Hourly tiers look for holes in the 1m rollup (one row a minute, not one a
            # second): bring it up to date first.
            await self._unbroken(self.repo.rollup(now))
        except TokenpulseError as exc:
            report.failures.append(f"rollup: {exc.message}")
            return report
        if self.charts is not None:
            for token_id in token_ids:
                report.token_rows += await self._guarded("token", token_id, report, now)
        if self.ohlc is not None:
            for pair in pairs:
                report.pair_rows += await self._guarded("pair", str(pair), report, now, pair)
        if report.token_rows or report.pair_rows:
            try:
                await self._unbroken(self.repo.rollup(now))
            except TokenpulseError as exc:
                report.failures.append(f"rollup: {exc.message}")
        log.info(
            "backfill done",
            token_rows=report.token_rows,
            pair_rows=report.pair_rows,
            requests=report.requests,
            failures=len(report.failures),
        )
        return report

    async def _guarded(
        self, kind: str, key: str, report: FillReport, now: datetime, pair: Pair | None = None
    ) -> int:
        try:
            if pair is None:
                rows = await self._fill_token(key, now, report)
            else:
                rows = await self._fill_pair(pair, now, report)
        except TokenpulseError as exc:
            self._count_run(kind, "failed")
            report.failures.append(f"{kind} {key}: {exc.message}")
            log.warning("backfill failed", kind=kind, key=key, error=exc.message)
            return 0
        self._count_run(kind, "filled" if rows else "complete")
        if rows and self.metrics is not None:
            self.metrics.backfill_rows.labels(kind).inc(rows)
        if rows:
            # Roll this key up at once: trends read the 1m rollup, and the next key's
            # backfill may take a while (a rate-limited provider call per key and tier).
            try:
                await self._unbroken(self.repo.rollup(now))
            except TokenpulseError as exc:
                report.failures.append(f"rollup after {kind} {key}: {exc.message}")
        return rows

    async def _fill_token(self, token_id: str, now: datetime, report: FillReport) -> int:
        assert self.charts is not None
        coin_id = self.coin_id_for(token_id)
        if coin_id is None:
            return 0
        written = 0
        newer = now
        for tier in self.token_tiers:
            older = now - timedelta(days=tier.days)
            table = _table(tier)
            gaps = await self._unbroken(
                self.repo.token_gaps(
                    token_id, older, newer, expected_interval=tier.interval, granularity=table
                )
            )
            gaps = self._still_open(("token", token_id, tier.days), gaps)
            if gaps:
                report.requests += 1
                chart = await self.charts.market_chart(coin_id, tier.days)
                points = [p for p in chart_points(chart) if older <= p.t < newer]
                inside = self._inside(("token", token_id, tier.days), gaps, points, _point_time)
                written += await self._unbroken(
                    self.repo.write_token_points(token_id, inside, source=self.chart_source)
                )
            newer = older
        return written

    async def _fill_pair(self, pair: Pair, now: datetime, report: FillReport) -> int:
        assert self.ohlc is not None
        written = 0
        newer = now
        for tier in self.pair_tiers:
            older = now - tier.span
            if older >= newer:
                continue
            gaps = await self._unbroken(
                self.repo.ltp_gaps(
                    pair, older, newer, expected_interval=tier.interval, granularity=_table(tier)
                )
            )
            gaps = self._still_open(("pair", str(pair), tier.minutes), gaps)
            if gaps:
                report.requests += 1
                since = max(gaps[0][0], older) - tier.interval
                result = await self.ohlc.fetch_ohlc(pair, interval=tier.minutes, since=since)
                # A candle's close is the last trade of the candle: file it at its last second.
                samples = [
                    (candle.time + tier.interval - timedelta(seconds=1), candle.close)
                    for candle in result.closed(now)
                    if candle.count > 0
                ]
                points = [p for p in samples if older <= p[0] < newer]
                inside = self._inside(("pair", str(pair), tier.minutes), gaps, points, _sample_time)
                written += await self._unbroken(
                    self.repo.write_ltp_points(pair, inside, source=self.candle_source)
                )
            newer = older
        return written

    def _still_open(self, memo: tuple[str, str, int], gaps: list[Gap]) -> list[Gap]:
        """Holes not already known to be holes in the provider's data too."""
        known = self._unfillable.get(memo, [])
        return [g for g in gaps if not any(k[0] <= g[0] and g[1] <= k[1] for k in known)]

    def _inside(
        self,
        memo: tuple[str, str, int],
        gaps: list[Gap],
        points: Sequence[P],
        when: Callable[[P], datetime],
    ) -> list[P]:
        """Points strictly inside a hole; holes that got none are remembered."""
        inside: list[P] = []
        for start, end in gaps:
            found = [p for p in points if start < when(p) < end]
            if not found:
                self._unfillable.setdefault(memo, []).append((start, end))
            inside.extend(found)
        return inside

    def _count_run(self, kind: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.backfill_runs.labels(kind, outcome).inc()


def _table(tier: ChartTier | CandleTier) -> str:
    """Where to look for holes: raw rows, or the 1m rollup for hourly (and coarser) tiers."""
    return "1m" if tier.interval >= timedelta(hours=1) else "raw"


def _point_time(point: TokenPoint) -> datetime:
    return point.t


def _sample_time(sample: tuple[datetime, Decimal]) -> datetime:
    return sample[0]


def chart_points(chart: MarketChart) -> list[TokenPoint]:
    """Join a market chart's three series on their timestamps into token points.

    Velocity follows the live rules (:func:`~tokenpulse.domain.velocity.compute_velocity`):
    a point whose market cap is missing, zero or negative gets no velocity.
    """
    caps = dict(chart.market_caps)
    volumes = dict(chart.total_volumes)
    points: list[TokenPoint] = []
    for at, price in sorted(chart.prices):
        market_cap, volume = caps.get(at), volumes.get(at)
        quote = TokenQuote(
            source="backfill",
            symbol="",
            name="",
            received_at=at,
            price_usd=price,
            market_cap_usd=market_cap,
            volume_24h_usd=volume,
        )
        velocity, _used, _flags = compute_velocity(quote)
        points.append(TokenPoint(at, price, market_cap, volume, velocity))
    return points
