"""HistoryWriter: batching, flush on stop, buffering through an outage, a bounded buffer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.pool import NullPool

from tests.helpers import wait_for
from tests.integration.history.builders import BTC_USD, ETH_USD, T0, snapshot, ticker
from tests.integration.history.conftest import FreshBackend
from tokenpulse.observability.metrics import Metrics
from tokenpulse.store.history import migrate
from tokenpulse.store.history.repository import HistoryRepository
from tokenpulse.store.history.writer import HistoryWriter

pytestmark = pytest.mark.services

DAY = timedelta(days=1)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def batches(metrics: Metrics, table: str) -> float:
    return sample(metrics, "tokenpulse_history_write_batches_total", table=table)


async def count_ltp(repo: HistoryRepository) -> int:
    return len(await repo.ltp_series(BTC_USD, T0 - DAY, T0 + DAY)) + len(
        await repo.ltp_series(ETH_USD, T0 - DAY, T0 + DAY)
    )


@pytest.fixture
async def running() -> AsyncIterator[list[asyncio.Task[None]]]:
    """Background writer tasks, cancelled if a test fails before stopping them."""
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_many_adds_become_few_transactions(
    repo: HistoryRepository, metrics: Metrics, running: list[asyncio.Task[None]]
) -> None:
    writer = HistoryWriter(repo, metrics=metrics, flush_interval=1.0)
    running.append(asyncio.create_task(writer.run()))

    for i in range(2000):
        writer.add_ltp(ticker(T0 + timedelta(seconds=i), str(100 + i)))
        writer.add_ltp(ticker(T0 + timedelta(seconds=i), str(200 + i), pair=ETH_USD))
    for i in range(300):
        writer.add_token(snapshot(T0 + timedelta(seconds=i), str(i)))
    await wait_for(lambda: batches(metrics, "ltp_samples") == 1, timeout=5)
    first = time.monotonic()
    assert writer.buffered == 0
    assert batches(metrics, "token_snapshots") == 1

    # More rows right away: the next transaction waits for the flush interval.
    for i in range(2000, 2500):
        writer.add_ltp(ticker(T0 + timedelta(seconds=i), str(100 + i)))
    await wait_for(lambda: batches(metrics, "ltp_samples") == 2, timeout=5)
    assert time.monotonic() - first >= 0.9

    assert await writer.stop(timeout=5) == 0
    assert batches(metrics, "ltp_samples") == 2
    assert batches(metrics, "token_snapshots") == 1
    written = sample(
        metrics, "tokenpulse_history_rows_written_total", table="ltp_samples", origin="live"
    )
    assert written == 4500
    assert await count_ltp(repo) == 4500


async def test_last_value_per_pair_per_second_is_written(
    repo: HistoryRepository, metrics: Metrics
) -> None:
    writer = HistoryWriter(repo, metrics=metrics)
    for millis, price in ((0, "1"), (400, "2"), (999, "3")):
        writer.add_ltp(ticker(T0 + timedelta(milliseconds=millis), price))

    assert writer.buffered == 1
    assert await writer.stop(timeout=5) == 0
    assert [p["price"] for p in await repo.ltp_series(BTC_USD, T0, T0 + DAY)] == [Decimal(3)]


async def test_stop_flushes_what_is_buffered(
    repo: HistoryRepository, metrics: Metrics, running: list[asyncio.Task[None]]
) -> None:
    writer = HistoryWriter(repo, metrics=metrics, flush_interval=60.0)
    running.append(asyncio.create_task(writer.run()))
    writer.add_token(snapshot(T0, "1"))
    writer.add_ltp(ticker(T0, "2"))
    assert writer.buffered == 2

    assert await writer.stop(timeout=5) == 0

    assert running[0].done()
    assert len(await repo.token_series("bitcoin", T0, T0 + DAY)) == 1
    assert await count_ltp(repo) == 1


async def test_outage_is_buffered_and_replayed(
    fresh_backend: FreshBackend, metrics: Metrics, running: list[asyncio.Task[None]]
) -> None:
    await migrate.upgrade(fresh_backend.url)
    # No pool: every flush opens a new connection, as after a server restart.
    repo = HistoryRepository.from_url(fresh_backend.url, metrics=metrics, poolclass=NullPool)
    writer = HistoryWriter(
        repo, metrics=metrics, flush_interval=0.1, retry_max_interval=0.2, max_buffered=1000
    )
    running.append(asyncio.create_task(writer.run()))
    try:
        writer.add_ltp(ticker(T0, "1"))
        await wait_for(lambda: writer.buffered == 0, timeout=5)

        await fresh_backend.make_unreachable()
        for i in range(1, 101):
            writer.add_ltp(ticker(T0 + timedelta(seconds=i), str(i)))
        await wait_for(
            lambda: sample(metrics, "tokenpulse_history_write_errors_total") >= 2, timeout=10
        )
        assert writer.buffered == 100
        assert writer.lag() > 0
        assert sample(metrics, "tokenpulse_history_buffered_rows") == 100

        await fresh_backend.make_reachable()
        await wait_for(lambda: writer.buffered == 0, timeout=10)
        assert writer.dropped == 0
        assert await count_ltp(repo) == 101
        assert await writer.stop(timeout=5) == 0
    finally:
        await repo.close()


async def test_a_full_buffer_drops_the_oldest_and_counts(
    repo: HistoryRepository, metrics: Metrics
) -> None:
    writer = HistoryWriter(repo, metrics=metrics, max_buffered=5)
    for i in range(8):
        writer.add_ltp(ticker(T0 + timedelta(seconds=i), str(i)))
    writer.add_ltp(ticker(T0 + timedelta(seconds=7), "70"))  # same second: replaces, no drop

    assert writer.buffered == 5
    assert writer.dropped == 3
    assert sample(metrics, "tokenpulse_history_dropped_rows_total", table="ltp_samples") == 3
    assert await writer.stop(timeout=5) == 0
    prices = [p["price"] for p in await repo.ltp_series(BTC_USD, T0, T0 + DAY)]
    assert prices == [Decimal(3), Decimal(4), Decimal(5), Decimal(6), Decimal(70)]


async def test_stop_gives_up_in_time_and_reports_what_is_left(
    fresh_backend: FreshBackend, metrics: Metrics
) -> None:
    await migrate.upgrade(fresh_backend.url)
    repo = HistoryRepository.from_url(fresh_backend.url, metrics=metrics, poolclass=NullPool)
    writer = HistoryWriter(repo, metrics=metrics)
    try:
        await fresh_backend.make_unreachable()
        writer.add_ltp(ticker(T0, "1"))
        started = time.monotonic()
        assert await writer.stop(timeout=2) == 1
        assert time.monotonic() - started < 3
    finally:
        await fresh_backend.make_reachable()
        await repo.close()
