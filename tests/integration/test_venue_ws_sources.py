"""CoinbaseWsSource and BinanceWsSource against their fakes: real WebSockets on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.binance import FakeBinanceWs
from tests.fakes.coinbase import FakeCoinbaseWs
from tests.helpers import wait_for
from tokenpulse.domain.events import DomainEvent, SourceHeartbeat, TickerUpdated
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._ws import WsTickerFeed
from tokenpulse.sources.binance.ws import BinanceWsSource
from tokenpulse.sources.coinbase.ws import CoinbaseWsSource

BTC, ETH, LTC = Pair("BTC", "USD"), Pair("ETH", "USD"), Pair("LTC", "USD")
SKL, BAND = Pair("SKL", "USD"), Pair("BAND", "GBP")
OPTIONS: dict[str, Any] = {
    "idle_timeout": 2.0,
    "max_pairs_per_connection": 50,
    "subscribe_batch_size": 20,
    "backoff_initial": 0.01,
    "backoff_max": 0.05,
}


class Harness:
    def __init__(self, cls: type[WsTickerFeed], url: str, symbols: Mapping[Pair, str], **kw: Any):
        self.events: list[DomainEvent] = []
        self.metrics = Metrics()
        self.source = cls(
            url=url,
            symbols=symbols,
            sink=self.events.append,
            metrics=self.metrics,
            **{**OPTIONS, **kw},
        )

    def tickers(self, pair: Pair) -> list[Ticker]:
        return [
            e.ticker for e in self.events if isinstance(e, TickerUpdated) and e.ticker.pair == pair
        ]

    def last(self, pair: Pair) -> Decimal | None:
        found = self.tickers(pair)
        return found[-1].last if found else None

    def subscribed(self, *pairs: Pair) -> bool:
        return all(self.source.pair_state(p).subscribed for p in pairs)

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, {"source": self.source.name, **labels})
        return value or 0.0

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self.source.run())
        try:
            yield
            assert not task.done(), "run() ended on its own"
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


# -- Coinbase ------------------------------------------------------------------------------


async def test_coinbase_snapshot_trades_and_heartbeats() -> None:
    async with FakeCoinbaseWs(heartbeat_interval=0.05) as fake:
        h = Harness(CoinbaseWsSource, fake.url, {SKL: "SKL-USD", BAND: "BAND-GBP"})
        async with h.running():
            await wait_for(lambda: h.last(SKL) and h.last(BAND), message="first tickers")
            # the last recorded trade of each product, digit for digit
            assert str(h.tickers(BAND)[0].last) == fake.values["BAND-GBP"]["price"]
            await fake.send_ticker("SKL-USD", price="0.5811", volume_24h="123.5")
            await wait_for(lambda: h.last(SKL) == Decimal("0.5811"), message="trade")
            assert h.tickers(SKL)[-1].volume_24h == Decimal("123.5")
            assert h.tickers(SKL)[-1].source == "coinbase_ws"
            await wait_for(
                lambda: any(isinstance(e, SourceHeartbeat) for e in h.events), message="beat"
            )
            assert h.subscribed(SKL, BAND)
            assert h.source.health.detail == "1/1 connections, 2/2 pairs subscribed"
            assert h.metric("tokenpulse_source_messages_total", kind="heartbeat") >= 1
        [request] = fake.requests
        assert request == {
            "type": "subscribe",
            "product_ids": ["SKL-USD", "BAND-GBP"],
            "channels": ["ticker", "heartbeat"],
        }


async def test_coinbase_rejected_subscription_is_reported() -> None:
    async with FakeCoinbaseWs(heartbeat_interval=0.05) as fake:
        h = Harness(CoinbaseWsSource, fake.url, {BTC: "BTC-USD"})  # not in the recording
        async with h.running():
            await wait_for(lambda: "subscribe_rejected" in h.source.health.errors, message="err")
            assert not h.subscribed(BTC)
            assert "1 rejected" in h.source.health.detail
            assert "BTC-USD is not a valid product" in (h.source.health.last_error or "")


async def test_coinbase_shards_and_reconnects_after_a_drop() -> None:
    async with FakeCoinbaseWs(heartbeat_interval=0.05) as fake:
        symbols = {SKL: "SKL-USD", BAND: "BAND-GBP", Pair("NU", "GBP"): "NU-GBP"}
        h = Harness(CoinbaseWsSource, fake.url, symbols, max_pairs_per_connection=2)
        async with h.running():
            await wait_for(lambda: h.subscribed(*symbols), message="subscribed")
            assert h.source.connection_count == 2
            assert fake.connections == 2
            await fake.drop_all()
            await wait_for(
                lambda: fake.total_connections == 4 and h.subscribed(*symbols),
                message="both shards back",
            )
            assert h.metric("tokenpulse_source_reconnects_total") >= 2


async def test_coinbase_silent_socket_is_replaced_and_junk_is_counted() -> None:
    async with FakeCoinbaseWs(heartbeat_interval=0.05) as fake:
        h = Harness(CoinbaseWsSource, fake.url, {SKL: "SKL-USD"}, idle_timeout=0.3)
        async with h.running():
            await wait_for(lambda: h.subscribed(SKL), message="subscribed")
            await fake.send_raw('{"type":"ticker","product_id":"SKL-USD","price":"x"}')
            await fake.send_raw("{truncated")
            await wait_for(
                lambda: h.metric("tokenpulse_source_parse_errors_total", kind="invalid_json") == 1,
                message="junk counted",
            )
            assert h.metric("tokenpulse_source_parse_errors_total", kind="bad_number") == 1
            fake.silence()
            await wait_for(lambda: fake.total_connections == 2, message="watchdog reconnect")
            assert h.metric("tokenpulse_source_errors_total", kind="idle_timeout") >= 1


# -- Binance -------------------------------------------------------------------------------


async def test_binance_subscribes_in_batches_and_reads_tickers() -> None:
    async with FakeBinanceWs() as fake:
        symbols = {BTC: "BTCUSDT", ETH: "ETHUSDT"}
        h = Harness(BinanceWsSource, fake.url, symbols, subscribe_batch_size=1)
        async with h.running():
            await wait_for(lambda: h.last(BTC) and h.last(ETH), message="first tickers")
            assert str(h.last(BTC)) == "73346.14000000"  # the recorded REST value
            assert str(h.last(ETH)) == "1792.84000000"  # the recorded stream frame
            await fake.send_ticker("BTCUSDT", last="73400.01", volume="130.5")
            await wait_for(lambda: h.last(BTC) == Decimal("73400.01"), message="update")
            assert h.tickers(BTC)[-1].volume_24h == Decimal("130.5")
            assert h.subscribed(BTC, ETH)
        assert fake.requests == [
            {"method": "SUBSCRIBE", "params": ["btcusdt@ticker"], "id": 1},
            {"method": "SUBSCRIBE", "params": ["ethusdt@ticker"], "id": 2},
        ]


async def test_binance_connection_is_renewed_at_its_maximum_age() -> None:
    async with FakeBinanceWs() as fake:
        h = Harness(
            BinanceWsSource, fake.url, {BTC: "BTCUSDT"}, max_connection_age=0.3, idle_timeout=5
        )
        async with h.running():
            await wait_for(lambda: fake.total_connections >= 3, message="two renewals")
            # a planned renewal is not an error
            assert h.metric("tokenpulse_source_errors_total", kind="idle_timeout") == 0
            await wait_for(lambda: h.subscribed(BTC), message="subscribed again")


async def test_binance_venue_down_backs_off_and_recovers() -> None:
    async with FakeBinanceWs() as fake:
        fake.refuse = True
        h = Harness(BinanceWsSource, fake.url, {BTC: "BTCUSDT"})
        async with h.running():
            await wait_for(
                lambda: h.metric("tokenpulse_source_errors_total", kind="connect") >= 3,
                message="connect failures",
            )
            assert h.source.health.state == "reconnecting"
            fake.refuse = False
            await wait_for(lambda: h.last(BTC) is not None, message="recovered")
            assert h.source.health.connected


def test_binance_refuses_more_streams_a_connection_than_binance_allows() -> None:
    with pytest.raises(ValueError, match="1024"):
        Harness(BinanceWsSource, "ws://x", {}, max_pairs_per_connection=2000)


async def test_coinbase_drops_a_ticker_whose_sequence_is_not_newer() -> None:
    async with FakeCoinbaseWs(heartbeat_interval=0.05) as fake:
        h = Harness(CoinbaseWsSource, fake.url, {SKL: "SKL-USD"})
        async with h.running():
            await fake.send_ticker("SKL-USD", price="0.6001")
            await wait_for(lambda: h.last(SKL) == Decimal("0.6001"), message="trade")
            late = {**fake.frame("SKL-USD"), "price": "0.5000", "sequence": 1}
            await fake.send_raw(json.dumps(late))  # an old trade arriving late
            await wait_for(
                lambda: h.metric("tokenpulse_source_messages_total", kind="out_of_order") == 1,
                message="the late ticker counted",
            )
            assert h.last(SKL) == Decimal("0.6001")
            await fake.send_ticker("SKL-USD", price="0.6002")
            await wait_for(lambda: h.last(SKL) == Decimal("0.6002"), message="next trade")
