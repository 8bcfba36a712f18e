"""The token services see their adapters through ports; the composition root wires them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.server import app_settings
from tokenpulse.bootstrap import build_container
from tokenpulse.data import known_tokens
from tokenpulse.domain.history import HistoryRow
from tokenpulse.domain.identity import IdentityRegistry
from tokenpulse.domain.velocity import VelocityPolicy
from tokenpulse.observability.metrics import Metrics
from tokenpulse.runtime import Runtime
from tokenpulse.services.tokens import ingest, poller
from tokenpulse.services.tokens.service import TokenService
from tokenpulse.sources.coingecko.client import MAX_PER_PAGE
from tokenpulse.sources.replay.tokens import MarketReplaySource, history_rows


def test_tracked_symbols_are_looked_up_in_one_coingecko_page() -> None:
    # The scheduler no longer imports the CoinGecko client; its constant must still agree.
    assert poller.SYMBOL_SEARCH_DEPTH == MAX_PER_PAGE


async def test_the_replay_hands_its_bundled_history_to_the_ingest() -> None:
    replayed = build_container(app_settings(sources="replay", history_enabled=False))
    live = build_container(app_settings(sources="coingecko", history_enabled=False))
    try:
        assert replayed.market is not None
        assert replayed.market.history_seed is history_rows
        assert live.market is not None
        assert live.market.history_seed is None
    finally:
        await Runtime(replayed).stop()
        await Runtime(live).stop()


class RecordingStore:
    """Just enough of the HistoryStore port to watch the replay seeding."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, list[tuple[Any, ...]], dict[str, str]]] = []
        self.rollups = 0

    async def write_token_points(self, token_id: str, points: Any, **options: str) -> int:
        self.writes.append((token_id, list(points), options))
        return len(points)

    async def rollup(self, now: datetime) -> dict[str, int]:
        self.rollups += 1
        return {}


async def test_replay_seeding_files_the_handed_in_rows_so_they_end_today() -> None:
    tokens = TokenService(
        identities=IdentityRegistry(known_tokens()), policy=VelocityPolicy(), metrics=Metrics()
    )
    replay = MarketReplaySource(sink=lambda q: None, interval=60, speed=60, metrics=None)
    await tokens.accept(replay.next_batch())
    day = datetime(2023, 1, 1, tzinfo=UTC)
    recorded = [
        HistoryRow(day + timedelta(days=i), Decimal(100 + i), Decimal(1000), Decimal(10))
        for i in range(40)
    ]
    asked: list[str] = []

    def seed(coin_id: str) -> list[HistoryRow]:
        asked.append(coin_id)
        return recorded if coin_id == "bitcoin" else []

    store = RecordingStore()
    market = ingest.MarketIngest(
        tokens=tokens,
        source=None,
        history=store,  # type: ignore[arg-type]
        writer=None,
        backfiller=None,
        pairs=[],
        raw_retention=timedelta(days=1),
        rollup_retention=timedelta(days=30),
        replay=True,
        buffer=ingest.QuoteBuffer(max_keys=4),
        history_seed=seed,
    )
    market._first_batch.set()
    await market._seed_replay_history()

    assert "bitcoin" in asked
    ((token_id, points, options),) = store.writes
    assert token_id == "bitcoin"
    assert options == {"origin": "backfill", "source": "replay"}
    assert len(points) == ingest.REPLAY_SEED_DAYS
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert points[-1][0] == today
    assert points[-1][1:] == (Decimal(139), Decimal(1000), Decimal(10), Decimal("0.01"))
    assert store.rollups == 1
