"""KrakenRestClient against FakeKrakenRest: a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.fakes.kraken_rest import FakeKrakenRest
from tests.helpers import wait_for
from tokenpulse.data import kraken_pair_registry
from tokenpulse.domain.errors import UpstreamError
from tokenpulse.domain.pairs import Pair
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources.kraken.rest import KrakenRestClient

BTC = Pair("BTC", "USD")
ETH = Pair("ETH", "USD")
DOGE = Pair("DOGE", "USD")
ETC = Pair("ETC", "USD")  # a Kraken pair the recorded answers do not contain
TIMING_SLACK = 0.02  # loop scheduling jitter allowed on lower bounds


@pytest.fixture
async def fake() -> AsyncIterator[FakeKrakenRest]:
    async with FakeKrakenRest() as server:
        yield server


@pytest.fixture
def sent_at() -> list[float]:
    """``time.monotonic()`` of each request as the client sends it.

    Spacing is measured here, not at the fake: an arrival time also holds the connection
    set-up of a first request, which a loaded machine stretches by tens of milliseconds.
    """
    return []


@pytest.fixture
async def http(sent_at: list[float]) -> AsyncIterator[httpx.AsyncClient]:
    async def record(request: httpx.Request) -> None:
        sent_at.append(time.monotonic())

    async with httpx.AsyncClient(trust_env=False, event_hooks={"request": [record]}) as client:
        yield client


@pytest.fixture
def make_client(
    fake: FakeKrakenRest, http: httpx.AsyncClient, metrics: Metrics
) -> Callable[..., KrakenRestClient]:
    def make(**overrides: Any) -> KrakenRestClient:
        options: dict[str, Any] = {
            "base_url": fake.base_url,
            "http": http,
            "registry": kraken_pair_registry(),
            "metrics": metrics,
            "request_timeout": 2.0,
            "max_retries": 3,
            "min_interval": 0.0,
            "backoff_initial": 0.01,
            "backoff_max": 0.05,
        }
        options.update(overrides)
        return KrakenRestClient(**options)

    return make


def requests(metrics: Metrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "tokenpulse_source_requests_total", {"source": "kraken_rest", "outcome": outcome}
    )
    return value or 0.0


def retries(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value(
        "tokenpulse_source_retries_total", {"source": "kraken_rest"}
    )
    return value or 0.0


async def test_fetches_recorded_tickers_by_altname(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient], metrics: Metrics
) -> None:
    client = make_client()

    result = await client.fetch_tickers([BTC, ETH, DOGE])

    assert fake.requests == ["pair=XBTUSD,ETHUSD,XDGUSD"]
    by_pair = result.by_pair()
    assert str(by_pair[BTC].last) == "69767.60000"
    assert str(by_pair[ETH].bid) == "2084.14000"
    assert str(by_pair[DOGE].last) == "0.108361200"
    assert result.errors == []
    assert requests(metrics, "ok") == 1
    assert (
        metrics.registry.get_sample_value(
            "tokenpulse_source_request_duration_seconds_count", {"source": "kraken_rest"}
        )
        == 1
    )
    assert client.health.connected is True
    assert client.health.messages == 1
    assert client.health.kind == "rest"


async def test_set_last_changes_the_next_answer(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient]
) -> None:
    client = make_client()
    fake.set_last("XBTUSD", "70001.10000")

    result = await client.fetch_tickers([BTC])

    assert result.by_pair()[BTC].last == Decimal("70001.10000")


async def test_missing_pair_is_absent_and_kraken_error_kept(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient]
) -> None:
    client = make_client()

    result = await client.fetch_tickers([BTC, ETC])

    assert list(result.by_pair()) == [BTC]
    assert result.errors == ["EQuery:Unknown asset pair"]
    assert len(fake.requests) == 1  # a definite answer is not retried


async def test_5xx_then_success_is_retried_and_counted(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient], metrics: Metrics
) -> None:
    client = make_client()
    fake.fail_with(503, times=2)

    result = await client.fetch_tickers([BTC])

    assert BTC in result.by_pair()
    assert len(fake.requests) == 3
    assert requests(metrics, "http_error") == 2
    assert requests(metrics, "ok") == 1
    assert retries(metrics) == 2
    assert client.health.errors == {"http_error": 2}
    assert client.breaker.state == "closed"


async def test_429_retry_after_is_honoured(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient], sent_at: list[float]
) -> None:
    client = make_client(backoff_initial=0.001, backoff_max=0.001)
    fake.fail_with(429, times=1, retry_after=0.3)

    result = await client.fetch_tickers([BTC])

    assert BTC in result.by_pair()
    assert len(sent_at) == len(fake.request_times) == 2
    gap = sent_at[1] - sent_at[0]
    assert gap >= 0.3 - TIMING_SLACK  # not the 1 ms backoff


async def test_retry_after_beyond_the_deadline_gives_up_at_once(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient]
) -> None:
    client = make_client()
    fake.fail_with(429, times=1, retry_after=30)
    started = time.monotonic()

    with pytest.raises(UpstreamError, match="HTTP 429"):
        await client.fetch_tickers([BTC], deadline=started + 2.0)

    assert time.monotonic() - started < 1.0
    assert len(fake.requests) == 1


async def test_retryable_kraken_error_is_retried(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient], metrics: Metrics
) -> None:
    client = make_client()
    fake.kraken_error(["EService:Unavailable"], times=1)

    result = await client.fetch_tickers([BTC])

    assert BTC in result.by_pair()
    assert len(fake.requests) == 2
    assert requests(metrics, "kraken_error") == 1
    assert client.health.errors == {"kraken_error": 1}


async def test_rate_limit_error_in_body_is_retried(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient]
) -> None:
    client = make_client()
    fake.kraken_error(["EAPI:Rate limit exceeded"], times=2)

    result = await client.fetch_tickers([ETH])

    assert ETH in result.by_pair()
    assert len(fake.requests) == 3


async def test_permanent_kraken_error_is_not_retried(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient], metrics: Metrics
) -> None:
    client = make_client()
    fake.kraken_error(["EGeneral:Invalid arguments"], times=None)

    with pytest.raises(UpstreamError, match="EGeneral:Invalid arguments"):
        await client.fetch_tickers([BTC])

    assert len(fake.requests) == 1
    assert requests(metrics, "kraken_error") == 1
    assert client.breaker.state == "closed"  # Kraken answered: not an outage


async def test_unknown_pair_only_raises(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient]
) -> None:
    client = make_client()

    with pytest.raises(UpstreamError, match="EQuery:Unknown asset pair") as caught:
        await client.fetch_tickers([ETC])

    assert "ETC/USD" in caught.value.message
    assert len(fake.requests) == 1


async def test_gives_up_within_the_deadline_naming_pairs_not_url(
    fake: FakeKrakenRest, http: httpx.AsyncClient, make_client: Callable[..., KrakenRestClient]
) -> None:
    secret_url = fake.base_url.replace("http://", "http://user:s3cret@")
    client = make_client(base_url=secret_url, max_retries=50, backoff_initial=0.05)
    fake.fail_with(502, times=None)
    started = time.monotonic()

    with pytest.raises(UpstreamError) as caught:
        await client.fetch_tickers([BTC, ETH], deadline=started + 0.5)

    elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 0.1
    assert 1 < len(fake.requests) < 50
    message = caught.value.message
    assert "BTC/USD, ETH/USD" in message
    assert "HTTP 502" in message
    assert "s3cret" not in message
    assert fake.base_url not in message
    assert client.health.state == "failed"
    assert client.health.connected is False


async def test_gives_up_after_max_retries(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient], metrics: Metrics
) -> None:
    client = make_client(max_retries=2)
    fake.fail_with(500, times=None)

    with pytest.raises(UpstreamError, match="after 3 attempts"):
        await client.fetch_tickers([BTC])

    assert len(fake.requests) == 3
    assert retries(metrics) == 2
    assert (
        metrics.registry.get_sample_value(
            "tokenpulse_source_errors_total", {"source": "kraken_rest", "kind": "http_error"}
        )
        == 1
    )


async def test_circuit_opens_fails_fast_and_recovers(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient], metrics: Metrics
) -> None:
    client = make_client(max_retries=0, circuit_threshold=3, circuit_cooldown=0.2)
    fake.fail_with(500, times=None)
    for _ in range(3):
        with pytest.raises(UpstreamError):
            await client.fetch_tickers([BTC])
    assert client.breaker.state == "open"
    assert client.health.circuit == "open"
    assert (
        metrics.registry.get_sample_value(
            "tokenpulse_source_circuit_state", {"source": "kraken_rest"}
        )
        == 2
    )

    started = time.monotonic()
    with pytest.raises(UpstreamError, match="circuit open"):
        await client.fetch_tickers([BTC])
    assert time.monotonic() - started < 0.1
    assert len(fake.requests) == 3  # no request while open

    fake.reset()
    await wait_for(client.breaker.allow, timeout=2.0)  # cooldown over: half-open trial
    result = await client.fetch_tickers([BTC])
    assert BTC in result.by_pair()
    assert client.breaker.state == "closed"
    assert client.health.circuit == "closed"


async def test_circuit_opening_mid_retries_stops_them(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient]
) -> None:
    client = make_client(max_retries=10, circuit_threshold=2)
    fake.fail_with(503, times=None)

    with pytest.raises(UpstreamError, match="circuit open"):
        await client.fetch_tickers([BTC])

    assert len(fake.requests) == 2


async def test_limiter_spaces_sequential_and_concurrent_requests(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient], sent_at: list[float]
) -> None:
    client = make_client(min_interval=0.15)

    await client.fetch_tickers([BTC])
    await client.fetch_tickers([ETH])
    await asyncio.gather(*(client.fetch_tickers([pair]) for pair in (BTC, ETH, DOGE)))

    times = sent_at
    assert len(times) == len(fake.request_times) == 5
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 0.15 - TIMING_SLACK
    assert times[-1] - times[0] < 4 * 0.15 + 0.3  # and not much slower than needed


async def test_limiter_counts_retries_too(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient], sent_at: list[float]
) -> None:
    client = make_client(min_interval=0.1, backoff_initial=0.001, backoff_max=0.001)
    fake.fail_with(503, times=2)

    await client.fetch_tickers([BTC])

    assert len(fake.request_times) == 3
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert len(gaps) == 2
    assert min(gaps) >= 0.1 - TIMING_SLACK


async def test_limiter_never_waits_past_the_deadline(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient]
) -> None:
    client = make_client(min_interval=5.0)
    await client.fetch_tickers([BTC])
    started = time.monotonic()

    with pytest.raises(UpstreamError, match="rate limiter"):
        await client.fetch_tickers([BTC], deadline=started + 0.2)

    assert time.monotonic() - started < 0.1
    assert len(fake.requests) == 1


async def test_slow_answers_time_out_and_are_retried(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient], metrics: Metrics
) -> None:
    client = make_client(request_timeout=0.1, max_retries=1)
    fake.delay(1.0)
    started = time.monotonic()

    with pytest.raises(UpstreamError, match="timed out"):
        await client.fetch_tickers([BTC])

    assert time.monotonic() - started < 0.6
    assert len(fake.requests) == 2
    assert requests(metrics, "transport_error") == 2


async def test_answer_within_the_timeout_is_accepted(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient]
) -> None:
    client = make_client(request_timeout=1.0)
    fake.delay(0.05)

    result = await client.fetch_tickers([BTC])

    assert BTC in result.by_pair()
    assert len(fake.requests) == 1


async def test_deadline_shortens_the_request_timeout(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient]
) -> None:
    client = make_client(request_timeout=5.0, max_retries=0)
    fake.delay(2.0)
    started = time.monotonic()

    with pytest.raises(UpstreamError):
        await client.fetch_tickers([BTC], deadline=started + 0.2)

    assert time.monotonic() - started < 0.4


async def test_connection_refused_is_a_transport_error(
    http: httpx.AsyncClient, metrics: Metrics
) -> None:
    async with FakeKrakenRest() as stopped:
        base_url = stopped.base_url
    client = KrakenRestClient(
        base_url=base_url,
        http=http,
        registry=kraken_pair_registry(),
        metrics=metrics,
        request_timeout=1.0,
        max_retries=1,
        min_interval=0.0,
        backoff_initial=0.01,
        backoff_max=0.01,
    )

    with pytest.raises(UpstreamError, match="ConnectError"):
        await client.fetch_tickers([BTC])

    assert requests(metrics, "transport_error") == 2
    assert client.health.errors == {"transport_error": 2}


async def test_malformed_body_is_a_parse_error_not_retried(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient], metrics: Metrics
) -> None:
    client = make_client()
    fake.raw_response(b"<html><body>Just a moment...</body></html>", times=None)

    with pytest.raises(UpstreamError, match="malformed response"):
        await client.fetch_tickers([BTC])

    assert len(fake.requests) == 1
    assert requests(metrics, "parse_error") == 1
    assert (
        metrics.registry.get_sample_value(
            "tokenpulse_source_parse_errors_total", {"source": "kraken_rest", "kind": "rest_json"}
        )
        == 1
    )


async def test_unknown_entries_are_counted_as_parse_errors(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient], metrics: Metrics
) -> None:
    client = make_client()
    fake.raw_response(
        b'{"error":[],"result":{"XXBTZUSD":{"c":["69767.6","0.1"]},"NOSUCHUSD":{"c":["1.0","1"]}}}'
    )

    result = await client.fetch_tickers([BTC])

    assert [ticker.pair for ticker in result.tickers] == [BTC]
    assert requests(metrics, "ok") == 1
    assert (
        metrics.registry.get_sample_value(
            "tokenpulse_source_parse_errors_total",
            {"source": "kraken_rest", "kind": "rest_unknown_pair"},
        )
        == 1
    )


async def test_no_pairs_makes_no_request(
    fake: FakeKrakenRest, make_client: Callable[..., KrakenRestClient]
) -> None:
    result = await make_client().fetch_tickers([])
    assert result.tickers == []
    assert fake.requests == []
