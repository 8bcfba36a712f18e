"""CoinbaseRestClient and BinanceRestClient against their fakes: real HTTP on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from tests.fakes.binance import FakeBinanceRest
from tests.fakes.coinbase import FakeCoinbaseRest
from tokenpulse.domain.errors import UpstreamError
from tokenpulse.domain.pairs import Pair
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources.binance.rest import BinanceRestClient
from tokenpulse.sources.coinbase.rest import CoinbaseRestClient

BTC, ETH, SKL = Pair("BTC", "USD"), Pair("ETH", "USD"), Pair("SKL", "USD")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


async def test_coinbase_one_request_per_product(http: httpx.AsyncClient) -> None:
    async with FakeCoinbaseRest() as fake:
        client = CoinbaseRestClient(
            base_url=fake.base_url,
            http=http,
            products={SKL: "SKL-USD", BTC: "BTC-USD"},
            metrics=Metrics(),
            request_timeout=2,
            max_retries=1,
            min_interval=0,
        )
        result = await client.fetch_tickers([SKL, BTC])
        [ticker] = result.tickers
        assert ticker.pair == SKL
        assert ticker.last == Decimal(fake.values["SKL-USD"]["price"])
        assert ticker.source == "coinbase_rest"
        assert [e.split(":")[0] for e in result.errors] == ["BTC/USD"]  # 404 NotFound
        assert [r.path for r in fake.requests] == [
            "/products/SKL-USD/ticker",
            "/products/BTC-USD/ticker",
        ]


async def test_coinbase_5xx_is_retried_then_given_up(http: httpx.AsyncClient) -> None:
    async with FakeCoinbaseRest() as fake:
        client = CoinbaseRestClient(
            base_url=fake.base_url,
            http=http,
            products={SKL: "SKL-USD"},
            metrics=Metrics(),
            request_timeout=2,
            max_retries=2,
            min_interval=0,
        )
        fake.fail_with(503, times=1)
        assert len((await client.fetch_tickers([SKL])).tickers) == 1
        fake.fail_with(502, times=None)
        with pytest.raises(UpstreamError, match="Coinbase REST"):
            await client.fetch_tickers([SKL])
        assert len(fake.requests) == 2 + 3


async def test_binance_all_pairs_in_one_request(http: httpx.AsyncClient) -> None:
    async with FakeBinanceRest() as fake:
        client = BinanceRestClient(
            base_url=fake.base_url,
            http=http,
            symbols={BTC: "BTCUSDT", ETH: "ETHUSDT"},
            metrics=Metrics(),
            request_timeout=2,
            max_retries=1,
            min_interval=0,
        )
        result = await client.fetch_tickers([BTC, ETH])
        assert {t.pair: str(t.last) for t in result.tickers} == {
            BTC: "73346.14000000",
            ETH: "1792.84000000",
        }
        [request] = fake.requests
        assert request.params == {"symbols": '["BTCUSDT","ETHUSDT"]'}
        fake.fail_with(500, times=None)
        with pytest.raises(UpstreamError):
            await client.fetch_tickers([BTC])
