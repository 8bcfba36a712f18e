"""A shutdown never cuts a backfill's store operation in half (a cut aiosqlite call leaves a
connection that never closes, and a process that never exits)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from tokenpulse.services.tokens.backfill import Backfiller

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


class SlowStore:
    """The HistoryStore port; ``token_gaps`` takes until ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.finished: list[str] = []

    async def rollup(self, now: datetime) -> dict[str, int]:
        return {}

    async def token_gaps(self, token_id: str, *args: Any, **kwargs: Any) -> list[Any]:
        self.entered.set()
        await self.release.wait()
        self.finished.append(token_id)
        return []


class NoCharts:
    async def market_chart(self, coin_id: str, days: int) -> Any:
        raise AssertionError("no hole: never asked")


async def test_a_cancelled_fill_lets_its_store_operation_finish() -> None:
    store = SlowStore()
    backfiller = Backfiller(store, charts=NoCharts())  # type: ignore[arg-type]
    task = asyncio.create_task(backfiller.fill(["bitcoin"], [], NOW))
    await asyncio.wait_for(store.entered.wait(), 5)

    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task  # the fill ends at once ...
    assert store.finished == []
    settling = asyncio.create_task(backfiller.settle())
    await asyncio.sleep(0)
    assert not settling.done()  # ... but settle waits for the operation it left running
    store.release.set()
    await asyncio.wait_for(settling, 5)
    assert store.finished == ["bitcoin"]  # completed, not cut in half
    await backfiller.settle()  # nothing left: returns at once
