"""Pair validation with fetched, cached and bundled lists (SPEC §3.3): fake venue lists on
loopback; the fetch answering 5xx or too slowly falls back to the cache, then the bundle."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.fakes.pair_lists import FakePairLists
from tests.server import app_settings
from tokenpulse._bootstrap_venues import resolve_pairs_at_start, venue_symbol_maps
from tokenpulse.cli import app as cli_app
from tokenpulse.domain.errors import ConfigError
from tokenpulse.domain.pairs import Pair
from tokenpulse.settings import Settings, load_settings

SOL, BTC, WBTC = Pair("SOL", "USD"), Pair("BTC", "USD"), Pair("WBTC", "USD")


@pytest.fixture
async def lists() -> AsyncIterator[FakePairLists]:
    async with FakePairLists() as fake:
        yield fake


def settings(fake: FakePairLists, cache: Path, **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "sources": "kraken",
        "pair_lists_fetch": True,
        "pair_lists_dir": str(cache),
        "pair_lists_timeout": "2s",
        "kraken_rest_url": fake.base_url,
        "coinbase_rest_url": fake.base_url,
        "binance_rest_url": fake.base_url,
    }
    return app_settings(**{**options, **overrides})


async def start(config: Settings) -> Any:
    """The start-up check, in a thread: the fetch is blocking I/O, the fake runs on this loop."""
    return await asyncio.to_thread(resolve_pairs_at_start, config)


async def test_the_fetched_list_decides_and_is_cached(lists: FakePairLists, tmp_path: Path) -> None:
    lists.drop("kraken", "SOL", "USD")  # delisted since the bundled list
    config = settings(lists, tmp_path, supported_pairs="BTC/USD,SOL/USD")
    with pytest.raises(ConfigError) as failure:
        await start(config)
    [problem] = failure.value.problems
    assert problem.startswith("SUPPORTED_PAIRS: SOL/USD is not a pair Kraken lists")
    assert "the freshly fetched Kraken list of" in problem
    assert "(just now)" in problem
    cached = json.loads((tmp_path / "kraken.json").read_text())
    assert cached["url"] == lists.base_url + "/0/public/AssetPairs"
    assert "SOLUSD" not in cached["payload"]["result"]

    # the next start without network: the cache (not the older bundle) is the list
    with pytest.raises(ConfigError, match="SOL/USD is not a pair Kraken lists \\(the cached"):
        settings(lists, tmp_path, supported_pairs="BTC/USD,SOL/USD", pair_lists_fetch=False)


async def test_a_5xx_falls_back_to_the_cache_then_to_the_bundled_list(
    lists: FakePairLists, tmp_path: Path
) -> None:
    lists.fail_with(503, times=None)
    found, _, pairs = await start(settings(lists, tmp_path, supported_pairs="BTC/USD,SOL/USD"))
    assert found["kraken"].origin == "bundled"  # no cache yet: SOL/USD validates offline
    assert pairs == [BTC, SOL]
    assert not (tmp_path / "kraken.json").exists()

    lists.reset()
    lists.add("kraken", "PEPE", "USD")
    await start(settings(lists, tmp_path))  # a good answer fills the cache
    lists.fail_with(503, times=None)
    found, registry, _ = await start(settings(lists, tmp_path, supported_pairs="PEPE/USD"))
    assert found["kraken"].origin == "cache"
    assert registry.resolve("PEPEUSD") == Pair("PEPE", "USD")
    assert "the cached Kraken list of" in found["kraken"].describe()


async def test_a_slow_answer_times_out_to_the_bundled_list(
    lists: FakePairLists, tmp_path: Path
) -> None:
    lists.delay_seconds = 3.0
    started = time.monotonic()
    found, _, _ = await start(settings(lists, tmp_path, pair_lists_timeout="200ms"))
    assert time.monotonic() - started < 2.0
    assert found["kraken"].origin == "bundled"


async def test_a_pair_some_venues_list_is_served_by_those_only(
    lists: FakePairLists, tmp_path: Path
) -> None:
    config = settings(
        lists, tmp_path, sources="kraken,coinbase", supported_pairs="BTC/USD,WBTC/USD"
    )
    found, registry, pairs = await start(config)
    assert {v: pl.origin for v, pl in found.items()} == {"kraken": "fetched", "coinbase": "fetched"}
    maps = venue_symbol_maps(config, registry, pairs, found)
    assert maps["kraken"] == {BTC: "BTC/USD"}  # Kraken does not list WBTC/USD
    assert maps["coinbase"] == {BTC: "BTC-USD", WBTC: "WBTC-USD"}


async def test_binance_exchange_info_with_usdt_as_usd(lists: FakePairLists, tmp_path: Path) -> None:
    base = {"sources": "binance", "ltp_primary": "binance", "quote_equivalents": "USDT=USD"}
    config = settings(lists, tmp_path, supported_pairs="BTC/USD,ETH/USD", **base)
    found, registry, pairs = await start(config)
    assert found["binance"].origin == "fetched"
    maps = venue_symbol_maps(config, registry, pairs, found)
    assert maps["binance"] == {BTC: "BTCUSDT", Pair("ETH", "USD"): "ETHUSDT"}
    with pytest.raises(ConfigError, match="LTC/USD is not a pair Binance lists"):
        await start(settings(lists, tmp_path, supported_pairs="BTC/USD,LTC/USD", **base))


async def test_pairs_refresh_writes_the_cache(lists: FakePairLists, tmp_path: Path) -> None:
    env = {
        "SOURCES": "kraken,coinbase",
        "PAIR_LISTS_DIR": str(tmp_path),
        "KRAKEN_REST_URL": lists.base_url,
        "COINBASE_REST_URL": lists.base_url,
    }
    result = await asyncio.to_thread(
        CliRunner().invoke, cli_app, ["pairs", "--refresh"], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "# kraken: the cached Kraken list of" in result.output
    written = await asyncio.to_thread(lambda: sorted(p.name for p in tmp_path.iterdir()))
    assert written == ["coinbase.json", "kraken.json"]
    lists.fail_with(500, times=None)
    failed = await asyncio.to_thread(
        CliRunner().invoke, cli_app, ["pairs", "--refresh"], env=env, catch_exceptions=False
    )
    assert failed.exit_code == 1
    assert "kraken pair list not fetched: HTTP 500" in failed.output


async def test_pairs_refresh_is_how_a_new_listing_becomes_valid(
    lists: FakePairLists, tmp_path: Path
) -> None:
    lists.add("kraken", "PEPE", "USD")
    env = {
        "SOURCES": "kraken",
        "SUPPORTED_PAIRS": "BTC/USD,PEPE/USD",
        "PAIR_LISTS_DIR": str(tmp_path),
        "KRAKEN_REST_URL": lists.base_url,
    }
    with pytest.raises(ConfigError, match="PEPE/USD is not a pair Kraken lists"):
        load_settings(None, env)
    result = await asyncio.to_thread(
        CliRunner().invoke, cli_app, ["pairs", "--refresh"], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "PEPE/USD" in result.output
    assert load_settings(None, env).settings.supported_pairs == ["BTC/USD", "PEPE/USD"]
