"""The token services see their adapters through ports; the composition root wires them."""

from __future__ import annotations

from typing import Any

from tests.server import app_settings
from tokenpulse.bootstrap import build_container
from tokenpulse.runtime import Runtime
from tokenpulse.services.tokens import poller
from tokenpulse.sources.coingecko.client import MAX_PER_PAGE, CoinGeckoClient
from tokenpulse.sources.replay.history import ReplayHistory


def test_tracked_symbols_are_looked_up_in_one_coingecko_page() -> None:
    # The scheduler no longer imports the CoinGecko client; its constant must still agree.
    assert poller.SYMBOL_SEARCH_DEPTH == MAX_PER_PAGE


async def test_the_replay_seeds_history_through_the_same_backfill(tmp_path: Any) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path}/replay.db"
    replayed = build_container(app_settings(sources="replay", database_url=database))
    live = build_container(app_settings(sources="coingecko", database_url=database))
    try:
        assert replayed.market is not None
        assert live.market is not None
        backfill, live_backfill = replayed.market.backfiller, live.market.backfiller
        assert backfill is not None
        assert live_backfill is not None
        assert isinstance(backfill.charts, ReplayHistory)
        assert backfill.ohlc is backfill.charts
        assert (backfill.chart_source, backfill.candle_source) == ("replay", "replay")
        assert isinstance(live_backfill.charts, CoinGeckoClient)
        assert live_backfill.chart_source == "coingecko"
    finally:
        await Runtime(replayed).stop()
        await Runtime(live).stop()
