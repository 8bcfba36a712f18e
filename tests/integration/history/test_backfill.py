"""Backfill from recorded provider data: CoinGecko's market_chart and Kraken's OHLC.

Tokens: a chart provider that answers from the recorded 7-day hourly BTC chart
(tests/fixtures/coingecko/market_chart_bitcoin_usd_7d_hourly_2023-10-10.json), like
CoinGecko does: only the points of the last ``days`` before the recording's end.
Pairs: the real Kraken OHLC client against FakeKrakenRest on loopback, whose candles are
built from the same recorded prices.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.fakes.kraken_rest import FakeKrakenRest
from tests.integration.history.builders import BTC_USD, snapshot
from tokenpulse.data import kraken_pair_registry
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.time import from_epoch
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.tokens.backfill import Backfiller, chart_points
from tokenpulse.sources.kraken.ohlc import KrakenOhlcClient
from tokenpulse.sources.kraken.rest import KrakenRestClient
from tokenpulse.store.history.repository import HistoryRepository

pytestmark = pytest.mark.services

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "coingecko"
BTC_CHART = FIXTURES / "market_chart_bitcoin_usd_7d_hourly_2023-10-10.json"
LUNA_CHART = FIXTURES / "market_chart_terra-luna_usd_max_daily_2022-07-06.json"
Series = list[tuple[datetime, Decimal]]


@dataclass
class Chart:
    prices: Series
    market_caps: Series
    total_volumes: Series


def load_chart(path: Path) -> Chart:
    body = json.loads(path.read_text(encoding="utf-8"))

    def series(name: str) -> Series:
        return [
            (from_epoch(ms / 1000), parse_decimal(value, field=name)) for ms, value in body[name]
        ]

    return Chart(series("prices"), series("market_caps"), series("total_volumes"))


@dataclass
class RecordedCharts:
    """A TokenChartProvider answering from one recorded chart, like CoinGecko would."""

    chart: Chart
    calls: list[tuple[str, int]] = field(default_factory=list)

    @property
    def end(self) -> datetime:
        return self.chart.prices[-1][0]

    async def market_chart(self, coin_id: str, days: int) -> Chart:
        self.calls.append((coin_id, days))
        since = self.end - timedelta(days=days)

        def recent(series: Series) -> Series:
            return [(at, value) for at, value in series if at >= since]

        return Chart(
            *(
                recent(s)
                for s in (self.chart.prices, self.chart.market_caps, self.chart.total_volumes)
            )
        )


@pytest.fixture
def charts() -> RecordedCharts:
    return RecordedCharts(load_chart(BTC_CHART))


def second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


async def test_token_backfill_fills_a_gap_exactly_once(
    repo: HistoryRepository, charts: RecordedCharts, metrics: Metrics
) -> None:
    now = charts.end + timedelta(minutes=1)
    recorded = charts.chart.prices
    # The service ran for the last 50 minutes (live rows every 10 minutes), and one live row
    # sits on the very second of a recorded point three days back.
    live_recent = [now - timedelta(minutes=m) for m in range(50, 0, -10)]
    clash_at, clash_price = recorded[100][0], "12345.6"
    await repo.write_tokens([snapshot(t, "27400") for t in live_recent])
    await repo.write_tokens([snapshot(clash_at, clash_price)])

    first = await Backfiller(repo, charts=charts, metrics=metrics).fill(["bitcoin"], [], now)

    # Every recorded point not on a live second, inside the 7-day window: all but the clash
    # and those within the live stretch (newer than the first live row).
    expected = [
        at
        for at, _ in recorded
        if at >= now - timedelta(days=7) and at < live_recent[0] and second(at) != second(clash_at)
    ]
    assert first.token_rows == len(expected) > 150
    assert first.failures == []
    assert charts.calls == [("bitcoin", 1), ("bitcoin", 7)]
    rows = await repo.token_series("bitcoin", now - timedelta(days=8), now + timedelta(hours=1))
    backfilled = [r for r in rows if r["origin"] == "backfill"]
    assert [r["t"] for r in backfilled] == [second(at) for at in expected]
    [clash] = [r for r in rows if r["t"] == second(clash_at)]
    assert (clash["price"], clash["origin"]) == (Decimal(clash_price), "live")
    assert metrics.registry.get_sample_value(
        "tokenpulse_backfill_rows_total", {"kind": "token"}
    ) == len(expected)

    # The values are the recorded digits, and velocity = volume / market cap.
    at, price = recorded[10]
    cap, volume = charts.chart.market_caps[10][1], charts.chart.total_volumes[10][1]
    [row] = [r for r in backfilled if r["t"] == second(at)]
    assert (row["price"], row["market_cap"], row["volume_24h"]) == (price, cap, volume)
    # Computed values keep 12 significant digits (SPEC §4.6).
    assert abs(row["velocity"] - volume / cap) <= volume / cap * Decimal("1e-11")
    # Rolled up on the way out, so hourly velocity trends work at once.
    assert await repo.velocity_points("bitcoin", now - timedelta(days=7), now)

    # A restart (a new backfiller) asks again and writes nothing.
    again = await Backfiller(repo, charts=charts, metrics=metrics).fill(["bitcoin"], [], now)
    assert again.token_rows == 0
    assert len(await repo.token_series("bitcoin", now - timedelta(days=8), now)) == len(rows)


async def test_no_gap_means_no_request(repo: HistoryRepository, charts: RecordedCharts) -> None:
    now = charts.end
    minutes = range(0, 7 * 24 * 60, 4)  # a live row every 4 minutes for 7 days
    await repo.write_tokens([snapshot(now - timedelta(minutes=m), "1") for m in minutes])

    report = await Backfiller(repo, charts=charts).fill(["bitcoin"], [], now)

    assert (report.token_rows, report.requests, charts.calls) == (0, 0, [])


def test_a_zero_market_cap_gives_no_velocity() -> None:
    luna = load_chart(LUNA_CHART)  # recorded: 166 days with market_cap 0

    points = chart_points(luna)

    zero = [p for p in points if p.market_cap == 0]
    assert len(zero) == 166
    assert all(p.velocity is None for p in zero)
    assert all(p.velocity is not None for p in points if p.market_cap and p.volume_24h)


@pytest.fixture
async def kraken() -> AsyncIterator[tuple[FakeKrakenRest, KrakenOhlcClient]]:
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
        yield fake, KrakenOhlcClient.from_rest_client(rest)


async def test_pair_backfill_from_kraken_ohlc(
    repo: HistoryRepository,
    kraken: tuple[FakeKrakenRest, KrakenOhlcClient],
    charts: RecordedCharts,
    metrics: Metrics,
) -> None:
    fake, ohlc = kraken
    now = charts.end  # 18:41:43: the 18:41 one-minute candle is still open
    recorded = charts.chart.prices
    backfiller = Backfiller(repo, ohlc=ohlc, metrics=metrics)

    report = await backfiller.fill([], [BTC_USD], now)

    # Last 12 h: one-minute candles (each recorded price is one), a sample at the candle's
    # last second; before that, hourly candles. A candle still open at ``now`` is not used.
    expected: dict[datetime, Decimal] = {}
    for width, older, newer in (
        (timedelta(hours=1), now - timedelta(days=7), now - timedelta(hours=12)),
        (timedelta(minutes=1), now - timedelta(hours=12), now),
    ):
        for at, price in recorded:
            start = from_epoch(at.timestamp() // width.total_seconds() * width.total_seconds())
            sample_at = start + width - timedelta(seconds=1)
            if start + width <= now and older < sample_at < newer:
                expected[sample_at] = price  # the last price of a candle is its close
    assert report.pair_rows == len(expected) > 150
    assert [q.split("&")[1] for q in fake.ohlc_requests] == ["interval=1", "interval=60"]
    samples = await repo.ltp_series(BTC_USD, now - timedelta(days=8), now)
    assert {s["origin"] for s in samples} == {"backfill"}
    assert {s["source"] for s in samples} == {"kraken_rest"}
    assert [(s["t"], s["price"]) for s in samples] == sorted(expected.items())
    assert samples[-1]["t"] == datetime(2023, 10, 10, 18, 1, 59, tzinfo=UTC)
    assert (
        metrics.registry.get_sample_value(
            "tokenpulse_backfill_runs_total", {"kind": "pair", "outcome": "filled"}
        )
        == 1
    )

    assert (await backfiller.fill([], [BTC_USD], now)).pair_rows == 0
    asked = len(fake.ohlc_requests)
    # What the provider had no data for is not asked again by the same backfiller.
    assert (await backfiller.fill([], [BTC_USD], now)).requests == 0
    assert len(fake.ohlc_requests) == asked


async def test_a_failing_provider_is_reported_and_the_rest_goes_on(
    repo: HistoryRepository,
    kraken: tuple[FakeKrakenRest, KrakenOhlcClient],
    charts: RecordedCharts,
    metrics: Metrics,
) -> None:
    _fake, ohlc = kraken
    backfiller = Backfiller(repo, charts=charts, ohlc=ohlc, metrics=metrics)

    report = await backfiller.fill(["bitcoin"], [Pair("BTC", "XYZ"), BTC_USD], charts.end)

    assert report.token_rows > 0
    assert report.pair_rows > 0
    assert len(report.failures) == 1
    assert "BTC/XYZ" in report.failures[0]
    assert (
        metrics.registry.get_sample_value(
            "tokenpulse_backfill_runs_total", {"kind": "pair", "outcome": "failed"}
        )
        == 1
    )
