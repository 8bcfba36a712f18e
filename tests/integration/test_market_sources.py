"""MarketScheduler, CmcClient and CoinGeckoClient against fake providers on loopback.

Most tests drive :meth:`MarketScheduler.step` with a hand-moved clock (the clients and their
rate-limit deadlines share it), so minutes of provider time pass instantly; one test runs the
real loop in real time with a tiny ``Retry-After``. Nothing sleeps for a fixed time.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from structlog.testing import capture_logs

from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.coinmarketcap import FakeCmc
from tests.helpers import FakeClock, wait_for
from tokenpulse.domain.errors import (
    ProviderRateLimited,
    ProviderRejected,
    UnknownCoin,
    UpstreamError,
)
from tokenpulse.domain.tokens import TokenQuote
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.tokens.poller import MarketScheduler
from tokenpulse.sources._health import RequestLimiter
from tokenpulse.sources.coingecko.client import CoinGeckoClient
from tokenpulse.sources.coinmarketcap.client import CmcClient, CreditBudget

START = datetime(2024, 1, 10, 12, 0, tzinfo=UTC).timestamp()
FEB_1 = datetime(2024, 2, 1, tzinfo=UTC).timestamp()
POLL = 60.0
SLACK = 0.02  # loop scheduling jitter allowed on real-time lower bounds

C = TypeVar("C")


@pytest.fixture
async def cmc_fake() -> AsyncIterator[FakeCmc]:
    async with FakeCmc() as fake:
        yield fake


@pytest.fixture
async def cg_fake() -> AsyncIterator[FakeCoinGecko]:
    async with FakeCoinGecko() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock(START)


class Batches:
    """The sink: every list of quotes the scheduler hands over."""

    def __init__(self) -> None:
        self.batches: list[list[TokenQuote]] = []

    def __call__(self, quotes: list[TokenQuote]) -> None:
        self.batches.append(quotes)

    @property
    def sources(self) -> list[str]:
        return [batch[0].source for batch in self.batches if batch]


@pytest.fixture
def client_options(
    http: httpx.AsyncClient, metrics: Metrics, fake_clock: FakeClock
) -> dict[str, Any]:
    """What every provider client in these tests shares."""
    return {
        "http": http,
        "metrics": metrics,
        "clock": fake_clock,
        "request_timeout": 2.0,
        "backoff_initial": 0.001,
        "backoff_max": 0.005,
    }


def client_factory(
    client: Callable[..., C], shared: dict[str, Any], **defaults: Any
) -> Callable[..., C]:
    """A maker of ``client`` objects talking to a fake: the ``shared`` options, then
    ``defaults`` (the fake's URL and key, ...), then each call's overrides."""

    def make(**overrides: Any) -> C:
        options: dict[str, Any] = {**shared, **defaults, **overrides}
        # the limiter keeps time with the client, so a Retry-After deferral ends when the
        # (hand-moved) clock says so
        options.setdefault("limiter", RequestLimiter(0.0, clock=options["clock"]))
        return client(**options)

    return make


@pytest.fixture
def make_cmc(cmc_fake: FakeCmc, client_options: dict[str, Any]) -> Callable[..., CmcClient]:
    return client_factory(
        CmcClient,
        client_options,
        base_url=cmc_fake.base_url,
        api_key=cmc_fake.api_key,
        max_retries=2,
    )


@pytest.fixture
def make_cg(
    cg_fake: FakeCoinGecko, client_options: dict[str, Any]
) -> Callable[..., CoinGeckoClient]:
    return client_factory(
        CoinGeckoClient, client_options, base_url=cg_fake.base_url, api_key="", max_retries=1
    )


@pytest.fixture
def make_scheduler(
    make_cmc: Callable[..., CmcClient],
    make_cg: Callable[..., CoinGeckoClient],
    metrics: Metrics,
    fake_clock: FakeClock,
) -> Callable[..., tuple[MarketScheduler, Batches]]:
    def make(**overrides: Any) -> tuple[MarketScheduler, Batches]:
        batches = Batches()
        clock = overrides.pop("clock", fake_clock)
        options: dict[str, Any] = {
            "cmc": make_cmc(),
            "coingecko": make_cg(),
            "budget": CreditBudget(10_000, clock=clock),
            "poll_interval": POLL,
            "sink": batches,
            "metrics": metrics,
            "clock": clock,
            "rng": random.Random(7),
        }
        options.update(overrides)
        return MarketScheduler(**options), batches

    return make


@pytest.fixture
def market(
    make_scheduler: Callable[..., tuple[MarketScheduler, Batches]],
) -> tuple[MarketScheduler, Batches]:
    """A scheduler with the default options over both fakes, and the batches it hands over."""
    return make_scheduler()


@pytest.fixture
def scheduler(market: tuple[MarketScheduler, Batches]) -> MarketScheduler:
    return market[0]


@pytest.fixture
def batches(market: tuple[MarketScheduler, Batches]) -> Batches:
    return market[1]


async def advance_and_step(scheduler: MarketScheduler, clock: FakeClock) -> None:
    """Move the clock to the next due poll and run it."""
    clock.advance(await scheduler.step())
    await scheduler.step()


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def failovers(metrics: Metrics, source: str, target: str, reason: str) -> float:
    return sample(
        metrics, "tokenpulse_market_failovers_total", to=target, reason=reason, **{"from": source}
    )


# --------------------------------------------------------------------------- CMC primary


async def test_cmc_serves_the_top_n_when_keyed(
    scheduler: MarketScheduler,
    batches: Batches,
    cmc_fake: FakeCmc,
    cg_fake: FakeCoinGecko,
    metrics: Metrics,
) -> None:
    wait = await scheduler.step()

    (request,) = cmc_fake.requests
    assert request.path == "/v1/cryptocurrency/listings/latest"
    assert request.params == {"start": "1", "limit": "100", "convert": "USD", "sort": "market_cap"}
    assert request.headers["x-cmc_pro_api_key"] == cmc_fake.api_key
    assert cg_fake.requests == []
    assert len(batches.batches[0]) == 100
    assert batches.sources == ["coinmarketcap"]
    state = scheduler.state()
    assert (state["active_source"], state["reason"], state["status"]) == (
        "coinmarketcap",
        "cmc_primary",
        "ok",
    )
    assert state["credits"]["used_this_month"] == 1
    assert state["sources"]["coinmarketcap"]["credits_used_since_start"] == 1
    # 10 000 credits in a 31-day month allow a poll every 267.84 s: slower than POLL
    assert wait == pytest.approx(31 * 86400 / 10_000)
    assert state["cmc_interval_s"] == pytest.approx(267.84)
    assert sample(metrics, "tokenpulse_provider_credits_used_total", source="coinmarketcap") == 1
    assert sample(metrics, "tokenpulse_provider_credits_left", source="coinmarketcap") == 9_999
    assert sample(metrics, "tokenpulse_market_source_active", source="coinmarketcap") == 1


async def test_no_key_means_coingecko_without_asking_cmc(
    make_scheduler: Callable[..., tuple[MarketScheduler, Batches]],
    make_cmc: Callable[..., CmcClient],
    cmc_fake: FakeCmc,
    cg_fake: FakeCoinGecko,
) -> None:
    scheduler, batches = make_scheduler(cmc=make_cmc(api_key=""))

    await scheduler.step()

    assert cmc_fake.requests == []
    assert len(cg_fake.market_requests()) == 1
    assert batches.sources == ["coingecko"]
    state = scheduler.state()
    assert (state["active_source"], state["reason"]) == ("coingecko", "cmc_no_key")
    assert state["status"] == "ok"  # CoinGecko is the normal source without a key
    assert state["cmc_interval_s"] is None
    assert state["sources"]["coinmarketcap"]["state"] == "disabled"
    assert "CMC_API_KEY is not set" in state["sources"]["coinmarketcap"]["detail"]


async def test_key_missing_upstream_gets_the_recorded_401_and_disables_cmc(
    make_scheduler: Callable[..., tuple[MarketScheduler, Batches]],
    make_cmc: Callable[..., CmcClient],
    cmc_fake: FakeCmc,
    cg_fake: FakeCoinGecko,
    fake_clock: FakeClock,
) -> None:
    async def strip_key(request: httpx.Request) -> None:  # e.g. a proxy dropping the header
        del request.headers["X-CMC_PRO_API_KEY"]

    async with httpx.AsyncClient(trust_env=False, event_hooks={"request": [strip_key]}) as bare:
        scheduler, batches = make_scheduler(cmc=make_cmc(http=bare))
        with capture_logs() as logs:
            await scheduler.step()
            for _ in range(3):
                await advance_and_step(scheduler, fake_clock)

    assert len(cmc_fake.requests) == 1  # refused once: no retry loop, no second try
    assert "x-cmc_pro_api_key" not in cmc_fake.requests[0].headers
    assert len(cg_fake.market_requests()) == 4  # CoinGecko took over at once, every poll
    assert batches.sources == ["coingecko"] * 4
    state = scheduler.state()
    assert (state["active_source"], state["reason"]) == ("coingecko", "cmc_rejected")
    assert state["status"] == "degraded"
    assert "error_code 1002 (API key missing)" in state["detail"]
    assert "Check CMC_API_KEY" in state["detail"]
    cmc_state = state["sources"]["coinmarketcap"]
    assert (cmc_state["state"], cmc_state["disabled"]) == ("disabled", True)
    disabled = [entry for entry in logs if entry["event"] == "market data source disabled"]
    assert len(disabled) == 1
    assert disabled[0]["log_level"] == "error"


async def test_revoked_key_switch_is_logged_counted_and_visible(
    scheduler: MarketScheduler,
    batches: Batches,
    cmc_fake: FakeCmc,
    fake_clock: FakeClock,
    metrics: Metrics,
) -> None:
    await scheduler.step()
    started = scheduler.state()["since"]
    cmc_fake.reject_key()

    with capture_logs() as logs:
        await advance_and_step(scheduler, fake_clock)

    assert batches.sources == ["coinmarketcap", "coingecko"]
    state = scheduler.state()
    assert (state["active_source"], state["reason"], state["failovers"]) == (
        "coingecko",
        "cmc_rejected",
        1,
    )
    assert state["since"] != started
    assert "error_code 1001 (This API Key is invalid)" in state["detail"]
    assert failovers(metrics, "coinmarketcap", "coingecko", "cmc_rejected") == 1
    assert sample(metrics, "tokenpulse_market_source_active", source="coinmarketcap") == 0
    assert sample(metrics, "tokenpulse_market_source_active", source="coingecko") == 1
    switched = [entry for entry in logs if entry["event"] == "market data source switched"]
    assert [(e["from_source"], e["to_source"], e["reason"]) for e in switched] == [
        ("coinmarketcap", "coingecko", "cmc_rejected")
    ]
    with pytest.raises(ProviderRejected):  # and it stays refused without asking again
        await scheduler.cmc.listings(10)  # type: ignore[union-attr]
    assert len(cmc_fake.requests) == 2


# --------------------------------------------------------------------------- rate limits


async def test_429_retry_after_is_honoured_then_cmc_serves_again(
    make_scheduler: Callable[..., tuple[MarketScheduler, Batches]],
    cmc_fake: FakeCmc,
    cg_fake: FakeCoinGecko,
    fake_clock: FakeClock,
    metrics: Metrics,
) -> None:
    scheduler, batches = make_scheduler(budget=CreditBudget(1_000_000, clock=fake_clock))
    await scheduler.step()  # CMC serves; with this budget it is polled every POLL
    cmc_fake.fail_with(429, retry_after=150)

    await advance_and_step(scheduler, fake_clock)  # t=60: CMC 429 -> CoinGecko, same poll
    limited_at = fake_clock.now
    state = scheduler.state()
    assert (state["active_source"], state["reason"]) == ("coingecko", "cmc_rate_limited")
    assert sample(metrics, "tokenpulse_provider_rate_limited_total", source="coinmarketcap") == 1
    assert len(cmc_fake.requests) == 2  # a 429 is not retried in a loop

    await advance_and_step(scheduler, fake_clock)  # +60
    await advance_and_step(scheduler, fake_clock)  # +120
    assert len(cmc_fake.requests) == 2  # still inside Retry-After: CMC not asked
    assert batches.sources == ["coinmarketcap"] + ["coingecko"] * 3

    await advance_and_step(scheduler, fake_clock)  # +180, past the 150 s

    assert len(cmc_fake.requests) == 3
    assert fake_clock.now - limited_at >= 150
    assert batches.sources[-1] == "coinmarketcap"
    state = scheduler.state()
    assert (state["active_source"], state["reason"], state["failovers"]) == (
        "coinmarketcap",
        "cmc_recovered",
        2,
    )
    assert failovers(metrics, "coinmarketcap", "coingecko", "cmc_rate_limited") == 1
    assert failovers(metrics, "coingecko", "coinmarketcap", "cmc_recovered") == 1
    assert len(cg_fake.market_requests()) == 3


async def test_rate_limit_code_without_retry_after_waits_a_minute(
    make_cmc: Callable[..., CmcClient], cmc_fake: FakeCmc, fake_clock: FakeClock
) -> None:
    cmc = make_cmc()
    cmc_fake.fail_with(429, error_code=1011)  # IP rate limit, no Retry-After header

    with pytest.raises(ProviderRateLimited) as caught:
        await cmc.listings(10)

    assert caught.value.retry_after == 60.0
    assert caught.value.error_code == 1011
    fake_clock.advance(59)
    with pytest.raises(ProviderRateLimited):
        await cmc.listings(10)
    assert len(cmc_fake.requests) == 1
    fake_clock.advance(1)
    assert len((await cmc.listings(10)).quotes) == 10


async def test_monthly_limit_code_stops_cmc_until_the_month_rolls_over(
    scheduler: MarketScheduler,
    batches: Batches,
    cmc_fake: FakeCmc,
    fake_clock: FakeClock,
) -> None:
    cmc_fake.fail_with(429, error_code=1010)

    await scheduler.step()

    state = scheduler.state()
    assert (state["active_source"], state["reason"]) == ("coingecko", "cmc_rate_limited")
    assert state["credits"]["left_this_month"] == 0
    assert "error_code 1010 (You've exceeded your API Key's monthly rate limit)" in state["detail"]
    assert state["detail"].endswith("asked again from 2024-02-01T00:00:00.000Z")
    fake_clock.now = FEB_1 - 1
    await scheduler.step()
    assert len(cmc_fake.requests) == 1
    fake_clock.now = FEB_1 - 1 + POLL  # the next poll is due, and February has begun
    await scheduler.step()
    assert len(cmc_fake.requests) == 2
    assert batches.sources[-1] == "coinmarketcap"


async def test_real_time_loop_honours_a_tiny_retry_after(
    make_scheduler: Callable[..., tuple[MarketScheduler, Batches]],
    make_cmc: Callable[..., CmcClient],
    make_cg: Callable[..., CoinGeckoClient],
    cmc_fake: FakeCmc,
    cg_fake: FakeCoinGecko,
) -> None:
    retry_after = 0.3
    cmc_fake.fail_with(429, retry_after=retry_after)
    scheduler, batches = make_scheduler(
        cmc=make_cmc(clock=time.time, limiter=RequestLimiter(0.0)),
        coingecko=make_cg(clock=time.time, limiter=RequestLimiter(0.0)),
        budget=CreditBudget(1_000_000_000),
        poll_interval=0.05,
        clock=time.time,
    )
    task = asyncio.create_task(scheduler.run())
    try:
        await wait_for(
            lambda: scheduler.state()["reason"] == "cmc_recovered",
            message="CMC serves again after Retry-After",
        )
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    limited, retried = cmc_fake.requests[0], cmc_fake.requests[1]
    assert retried.at - limited.at >= retry_after - SLACK
    between = [r for r in cg_fake.requests if limited.at < r.at < retried.at]
    assert len(between) >= 2  # CoinGecko kept the data coming meanwhile
    assert "coingecko" in batches.sources
    assert batches.sources[-1] == "coinmarketcap"


# --------------------------------------------------------------------------- outages


async def test_cmc_down_coingecko_takes_over_and_cmc_back_switches_back(
    scheduler: MarketScheduler,
    batches: Batches,
    cmc_fake: FakeCmc,
    cg_fake: FakeCoinGecko,
    fake_clock: FakeClock,
    metrics: Metrics,
) -> None:
    await scheduler.step()
    cmc_fake.fail_with(503, times=None)

    await advance_and_step(scheduler, fake_clock)

    assert len(cmc_fake.requests) == 1 + 3  # one try and max_retries=2 retries
    state = scheduler.state()
    assert (state["active_source"], state["reason"]) == ("coingecko", "cmc_failed")
    assert "HTTP 503" in state["detail"]
    assert batches.sources == ["coinmarketcap", "coingecko"]
    assert failovers(metrics, "coinmarketcap", "coingecko", "cmc_failed") == 1

    for _ in range(3):  # still down: probed after a backoff, CoinGecko serves every poll
        await advance_and_step(scheduler, fake_clock)
    assert batches.sources[-1] == "coingecko"
    assert scheduler.state()["failovers"] == 1

    cmc_fake.reset()
    for _ in range(40):
        await advance_and_step(scheduler, fake_clock)
        if scheduler.state()["active_source"] == "coinmarketcap":
            break

    state = scheduler.state()
    assert (state["active_source"], state["reason"], state["failovers"]) == (
        "coinmarketcap",
        "cmc_recovered",
        2,
    )
    assert state["status"] == "ok"
    assert state["last_error"] is None
    assert failovers(metrics, "coingecko", "coinmarketcap", "cmc_recovered") == 1
    assert sample(metrics, "tokenpulse_market_source_active", source="coinmarketcap") == 1
    assert sample(metrics, "tokenpulse_market_source_active", source="coingecko") == 0
    assert len(cg_fake.market_requests()) >= 4


async def test_both_down_is_reported_and_the_loop_goes_on(
    scheduler: MarketScheduler,
    batches: Batches,
    cmc_fake: FakeCmc,
    cg_fake: FakeCoinGecko,
    fake_clock: FakeClock,
) -> None:
    cmc_fake.fail_with(500, times=None)
    cg_fake.fail_with(502, times=None)

    await scheduler.step()

    state = scheduler.state()
    assert state["status"] == "failing"
    assert state["active_source"] is None
    assert batches.batches == []
    cg_fake.reset()
    await advance_and_step(scheduler, fake_clock)
    assert scheduler.state()["active_source"] == "coingecko"


async def test_5xx_is_retried_within_one_call(
    make_cmc: Callable[..., CmcClient], cmc_fake: FakeCmc, metrics: Metrics
) -> None:
    cmc = make_cmc(max_retries=3)
    cmc_fake.fail_with(502, times=2)

    result = await cmc.listings(5)

    assert len(result.quotes) == 5
    assert len(cmc_fake.requests) == 3
    assert sample(metrics, "tokenpulse_source_retries_total", source="coinmarketcap") == 2
    assert cmc.credits_used == 1  # failed attempts cost nothing


# --------------------------------------------------------------------------- CoinGecko


async def test_top_n_above_250_pages_through_the_limiter(
    make_cg: Callable[..., CoinGeckoClient], cg_fake: FakeCoinGecko
) -> None:
    client = make_cg()

    result = await client.markets(top_n=600)

    # 600 needs pages 1-3 of 250; the recording has 100 coins, so page 1 comes back short
    # and there is nothing past it: one request.
    assert [r.params for r in cg_fake.market_requests()] == [
        {
            "vs_currency": "usd",
            "order": "market_cap_desc",
            "per_page": "250",
            "page": "1",
            "price_change_percentage": "1h,24h,7d",
        }
    ]
    assert (len(result.quotes), result.pages) == (100, 1)


async def test_full_pages_are_followed_in_order_and_spaced_by_the_limiter(
    make_cg: Callable[..., CoinGeckoClient], cg_fake: FakeCoinGecko
) -> None:
    spacing = 0.05
    client = make_cg(per_page=30, limiter=RequestLimiter(spacing))

    result = await client.markets(top_n=100)

    requests = cg_fake.market_requests()
    assert [(r.params["page"], r.params["per_page"]) for r in requests] == [
        ("1", "30"),
        ("2", "30"),
        ("3", "30"),
        ("4", "30"),
    ]
    assert [q.coingecko_id for q in result.quotes] == [c["id"] for c in cg_fake.coins]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    assert min(gaps) >= spacing - SLACK


async def test_scheduler_pages_coingecko_for_a_large_top_n(
    make_scheduler: Callable[..., tuple[MarketScheduler, Batches]],
    make_cg: Callable[..., CoinGeckoClient],
    cg_fake: FakeCoinGecko,
) -> None:
    scheduler, batches = make_scheduler(cmc=None, coingecko=make_cg(per_page=40), track_top_n=120)

    await scheduler.step()

    assert [r.params["page"] for r in cg_fake.market_requests()] == ["1", "2", "3"]
    assert len(batches.batches[0]) == 100  # all the recording has
    assert scheduler.state()["reason"] == "cmc_not_configured"


async def test_coingecko_429_gives_the_recorded_body_and_waits(
    make_cg: Callable[..., CoinGeckoClient], cg_fake: FakeCoinGecko, fake_clock: FakeClock
) -> None:
    client = make_cg(per_page=30)
    cg_fake.requests.clear()
    cg_fake.rate_limit(times=1, retry_after=120)

    with pytest.raises(ProviderRateLimited) as caught:
        await client.markets(top_n=60)

    assert caught.value.retry_after == 120
    assert "You've exceeded the Rate Limit" in caught.value.message  # the recorded body
    assert client.health.state == "rate_limited"
    with pytest.raises(ProviderRateLimited):
        await client.markets(top_n=60)
    assert len(cg_fake.requests) == 1
    fake_clock.advance(120)
    assert len((await client.markets(top_n=60)).quotes) == 60


async def test_tracked_symbols_use_cmc_quotes_and_filter_coingecko(
    make_scheduler: Callable[..., tuple[MarketScheduler, Batches]],
    cmc_fake: FakeCmc,
    fake_clock: FakeClock,
) -> None:
    scheduler, batches = make_scheduler(tracked_tokens=["btc", " eth", "HOT", "NOSUCH", "BTC"])

    await scheduler.step()

    (request,) = cmc_fake.requests
    assert request.path == "/v2/cryptocurrency/quotes/latest"
    assert request.params == {
        "symbol": "BTC,ETH,HOT,NOSUCH",
        "convert": "USD",
        "skip_invalid": "true",
    }
    assert sorted(q.symbol for q in batches.batches[0]) == ["BTC", "ETH", "HOT"]
    cmc_fake.reject_key()
    await advance_and_step(scheduler, fake_clock)
    assert sorted(q.coingecko_id or "" for q in batches.batches[1]) == [
        "bitcoin",
        "ethereum",
        "holotoken",
    ]
    assert scheduler.state()["unresolved_symbols"] == ["NOSUCH"]


async def test_demo_and_pro_keys_go_in_their_own_headers(
    make_cg: Callable[..., CoinGeckoClient], cg_fake: FakeCoinGecko, metrics: Metrics
) -> None:
    await make_cg(api_key="demo-key").markets(top_n=1)
    assert cg_fake.requests[-1].headers["x-cg-demo-api-key"] == "demo-key"

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cg_fake)) as in_process:
        pro = make_cg(api_key="pro-key", base_url="https://pro-api.coingecko.com/api/v3")
        pro.http = in_process
        await pro.markets(top_n=1)

    headers = cg_fake.requests[-1].headers
    assert headers["x-cg-pro-api-key"] == "pro-key"
    assert "x-cg-demo-api-key" not in headers
    assert cg_fake.requests[-1].path == "/api/v3/coins/markets"


async def test_market_chart_and_unknown_coin(
    make_cg: Callable[..., CoinGeckoClient], cg_fake: FakeCoinGecko
) -> None:
    client = make_cg()

    chart = await client.market_chart("terra-luna", "max")
    with pytest.raises(UnknownCoin):
        await client.market_chart("no-such-coin", 7)

    assert len(chart.market_caps) == 1157
    assert sum(cap == 0 for _, cap in chart.market_caps) == 166
    assert cg_fake.requests[0].path == "/api/v3/coins/terra-luna/market_chart"
    assert cg_fake.requests[0].params == {"vs_currency": "usd", "days": "max"}
    assert not client.disabled  # a 404 is a definite answer, not an outage
    assert client.breaker.state == "closed"


# --------------------------------------------------------------------------- one poller


async def test_no_request_is_made_except_by_the_scheduler(
    scheduler: MarketScheduler,
    cmc_fake: FakeCmc,
    cg_fake: FakeCoinGecko,
    metrics: Metrics,
) -> None:
    for _ in range(50):  # what /api/v1/sources and /metrics do, however often they are asked
        scheduler.state()
        metrics.render()

    assert cmc_fake.requests == []
    assert cg_fake.requests == []

    await scheduler.step()
    for _ in range(50):
        await scheduler.step()  # not due yet: nothing happens
        scheduler.state()

    assert len(cmc_fake.requests) == 1
    assert cg_fake.requests == []


async def test_run_survives_a_failing_sink(
    make_scheduler: Callable[..., tuple[MarketScheduler, Batches]],
    cmc_fake: FakeCmc,
    metrics: Metrics,
) -> None:
    calls: list[int] = []

    def broken_sink(quotes: list[TokenQuote]) -> None:
        calls.append(len(quotes))
        raise RuntimeError("sink exploded")

    scheduler, _ = make_scheduler(sink=broken_sink)

    await scheduler.step()

    assert calls == [100]
    assert sample(metrics, "tokenpulse_source_errors_total", source="market", kind="sink") == 1
    assert scheduler.state()["active_source"] == "coinmarketcap"


def test_scheduler_refuses_two_budgets(
    make_cmc: Callable[..., CmcClient], fake_clock: FakeClock
) -> None:
    cmc = make_cmc(budget=CreditBudget(10, clock=fake_clock))
    with pytest.raises(ValueError, match="share one CreditBudget"):
        MarketScheduler(
            cmc=cmc,
            coingecko=None,
            budget=CreditBudget(10, clock=fake_clock),
            poll_interval=POLL,
            sink=lambda quotes: None,
            metrics=None,
        )


async def test_upstream_error_carries_what_failed(
    make_cmc: Callable[..., CmcClient], cmc_fake: FakeCmc
) -> None:
    cmc = make_cmc(max_retries=0)
    cmc_fake.fail_with(500)

    with pytest.raises(UpstreamError) as caught:
        await cmc.listings(5)

    assert caught.value.details["http_status"] == 500
    assert caught.value.details["attempts"] == 1
    assert "CoinMarketCap listings failed" in caught.value.message
