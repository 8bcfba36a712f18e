"""The replay's history provider: the recording's earlier part, for the backfill (SPEC §5.4).

In replay mode the backfill asks these instead of CoinGecko ``market_chart`` and Kraken
``OHLC``; they answer with the bundled recording's readings from before ``play_from``,
re-based so they end where the replay starts (:meth:`ReplayTimeline.seed_time`). History,
trends and live values are then one recorded series, with no jump where the played part
begins, and seeding takes the same path (and the same rollups) as a live start's backfill.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from tokenpulse.domain.pairs import Pair
from tokenpulse.sources.coingecko.parser import MarketChart
from tokenpulse.sources.kraken.ohlc import Candle, OhlcResult
from tokenpulse.sources.replay.recording import Recording, ReplayTimeline, seed_points


class ReplayHistory:
    """``market_chart`` and ``fetch_ohlc`` over the recording's seed part."""

    def __init__(
        self, recording: Callable[[], Recording], timeline: Callable[[], ReplayTimeline | None]
    ) -> None:
        self._recording = recording
        self._timeline = timeline

    def _ready(self) -> tuple[Recording, ReplayTimeline] | None:
        timeline = self._timeline()
        return (self._recording(), timeline) if timeline is not None else None

    async def market_chart(self, coin_id: str, days: int) -> MarketChart:
        """The seeded readings of ``coin_id`` over the last ``days`` before the start."""
        chart = MarketChart()
        ready = self._ready()
        if ready is None:
            return chart
        recording, timeline = ready
        end = timeline.start
        for point in seed_points(recording, coin_id, timeline, end - timedelta(days=days), end):
            chart.prices.append((point.at, point.price))
            if point.market_cap is not None:
                chart.market_caps.append((point.at, point.market_cap))
            if point.volume is not None:
                chart.total_volumes.append((point.at, point.volume))
        return chart

    async def fetch_ohlc(
        self, pair: Pair, *, interval: int = 1, since: datetime | None = None
    ) -> OhlcResult:
        """One candle per seeded reading of the pair's coin, closing at the reading's time."""
        result = OhlcResult(pair=pair, interval=interval)
        ready = self._ready()
        coin = ready[0].pairs.get(str(pair)) if ready else None
        if ready is None or coin is None:
            return result
        recording, timeline = ready
        width = timedelta(minutes=interval)
        start = since or timeline.start - timedelta(days=7)
        for point in seed_points(recording, coin, timeline, start, timeline.start):
            opened = point.at - width + timedelta(seconds=1)  # filed at its last second
            price = point.price
            result.candles.append(Candle(opened, price, price, price, price, price, Decimal(0), 1))
        return result
