"""The per-second backfill from Kraken's trades (a take-over's hole): the real Kraken Trades
client against FakeKrakenRest on loopback, the real history store on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa

from tests.fakes.kraken_rest import FakeKrakenRest
from tests.integration.history.builders import BTC_USD
from tokenpulse.data import kraken_pair_registry
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.ltp.trade_backfill import TradeBackfill
from tokenpulse.sources.kraken.rest import KrakenRestClient
from tokenpulse.sources.kraken.trades import KrakenTradesClient
from tokenpulse.store.history.models import ltp_samples
from tokenpulse.store.history.repository import HistoryRepository

pytestmark = pytest.mark.services

T0 = 1_790_000_000  # a whole second, unix time


def at(second: int) -> datetime:
    return datetime.fromtimestamp(T0 + second, UTC)


@pytest.fixture
async def kraken() -> AsyncIterator[tuple[FakeKrakenRest, KrakenTradesClient]]:
    async with FakeKrakenRest() as fake, httpx.AsyncClient(trust_env=False) as http:
        rest = KrakenRestClient(
            base_url=fake.base_url,
            http=http,
            registry=kraken_pair_registry(),
            metrics=None,
            request_timeout=2.0,
            max_retries=0,
            min_interval=0.01,
        )
        yield fake, KrakenTradesClient.from_rest_client(rest)


async def _live(repo: HistoryRepository, seconds: range, price: str) -> None:
    await repo.write_ltp_points(
        BTC_USD, [(at(s), Decimal(price)) for s in seconds], origin="live", source="kraken"
    )


async def _stored(repo: HistoryRepository) -> dict[int, tuple[Decimal, str]]:
    """Second (from T0) -> (price, origin) of the stored BTC/USD rows."""
    table = ltp_samples
    async with repo.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(table.c.ts, table.c.price, table.c.origin).where(
                    table.c.pair == str(BTC_USD)
                )
            )
        ).all()
    return {int(ts.timestamp()) - T0: (Decimal(price), origin) for ts, price, origin in rows}


async def test_the_hole_gets_each_seconds_last_trade_and_a_second_without_trade_gets_nothing(
    repo: HistoryRepository, kraken: tuple[FakeKrakenRest, KrakenTradesClient], metrics: Metrics
) -> None:
    fake, client = kraken
    await _live(repo, range(0, 10), "100")  # the former leader's rows
    await _live(repo, range(16, 20), "200")  # this instance's first rows
    for second, price in [(9, "101"), (11, "110"), (11, "111"), (12, "120"), (15, "150")]:
        fake.record_trade("XBTUSD", price, T0 + second + 0.5)  # nothing traded in 13, 14
    fake.record_trade("XBTUSD", "199", T0 + 16.2)  # a live row already holds 16

    backfill = TradeBackfill(
        repo, client, pairs=[BTC_USD], received_at=lambda p: None, metrics=metrics
    )
    written = await backfill.fill(BTC_USD, at(0), at(20))

    stored = await _stored(repo)
    assert written == 3
    assert stored[11] == (Decimal("111"), "backfill")  # the second's last trade
    assert stored[12] == (Decimal("120"), "backfill")
    assert stored[15] == (Decimal("150"), "backfill")
    assert 13 not in stored  # no trade, no row: nothing carried forward
    assert 14 not in stored
    assert stored[9] == (Decimal("100"), "live")  # live rows are never replaced
    assert stored[16] == (Decimal("200"), "live")
    assert f"since={T0 + 9}" in fake.trades_requests[0]  # from the last row before the hole
    assert (
        metrics.registry.get_sample_value("tokenpulse_backfill_rows_total", {"kind": "pair_second"})
        == 3
    )
    assert await backfill.fill(BTC_USD, at(0), at(20)) == 0  # idempotent


async def test_a_busy_hole_is_read_page_by_page(
    repo: HistoryRepository, kraken: tuple[FakeKrakenRest, KrakenTradesClient]
) -> None:
    fake, client = kraken
    await _live(repo, range(0, 2), "100")
    await _live(repo, range(30, 32), "300")
    for n in range(2500):  # 100 trades a second, seconds 2..26: three pages of 1000
        fake.record_trade("XBTUSD", f"{1000 + n}", T0 + 2 + n / 100)
    backfill = TradeBackfill(repo, client, pairs=[BTC_USD], received_at=lambda p: None)
    assert await backfill.fill(BTC_USD, at(0), at(32)) == 25
    stored = await _stored(repo)
    assert stored[26] == (Decimal("3499"), "backfill")  # the last trade of the last page
    assert stored[2][0] == Decimal("1099")
    assert len(fake.trades_requests) == 3


async def test_a_fresh_start_reads_no_trades(
    repo: HistoryRepository, kraken: tuple[FakeKrakenRest, KrakenTradesClient]
) -> None:
    """No row in the window: nothing to fill, and the venue's REST budget is left to the
    ticker fallback."""
    fake, client = kraken
    now = datetime.now(UTC).replace(microsecond=0)
    fake.record_trade("XBTUSD", "123.4", (now - timedelta(seconds=5)).timestamp() + 0.5)
    backfill = TradeBackfill(repo, client, pairs=[BTC_USD], received_at=lambda pair: None)
    assert await backfill.fill(BTC_USD, now - timedelta(minutes=10), now) == 0
    assert fake.trades_requests == []


async def test_run_waits_for_this_instances_own_first_values_then_fills_every_pair(
    repo: HistoryRepository, kraken: tuple[FakeKrakenRest, KrakenTradesClient]
) -> None:
    fake, client = kraken
    now = datetime.now(UTC).replace(microsecond=0)
    fake.record_trade("XBTUSD", "123.4", (now - timedelta(seconds=5)).timestamp() + 0.5)
    # the old leader's last row: the hole after it is the take-over's (the span before a
    # pair's first row in the window is not a hole to fill: a fresh start has no history)
    await repo.write_ltp_points(
        BTC_USD, [(now - timedelta(seconds=8), Decimal("120"))], origin="live", source="kraken_ws"
    )
    seen: list[datetime | None] = [None]

    def received_at(pair: object) -> datetime | None:
        value, seen[0] = seen[0], datetime.now(UTC)  # nothing at first, then a fresh value
        return value

    backfill = TradeBackfill(repo, client, pairs=[BTC_USD], received_at=received_at)
    assert await backfill.run() == 1
    assert len(fake.trades_requests) == 1
