"""Scale-out on the real Redis (SPEC §10): one ingest leader, every instance serves its values."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.helpers import wait_for
from tests.server import RunningApp, app_settings, running_app


def instance_settings(
    ws: FakeKrakenWs, rest: FakeKrakenRest, redis_url: str, prefix: str, tmp: Path, **extra: Any
) -> Any:
    return app_settings(
        kraken_ws_url=ws.url,
        kraken_rest_url=rest.base_url,
        cache_backend="redis",
        redis_url=redis_url,
        redis_key_prefix=prefix,
        database_url=f"sqlite+aiosqlite:///{tmp}/history.db",
        **extra,
    )


async def btc(http: httpx.AsyncClient, app: RunningApp) -> Any:
    response = await http.get(f"{app.base_url}/api/v1/ltp?pair=BTC/USD")
    return response.json()["ltp"][0]["amount"] if response.status_code == 200 else None


async def test_api_instance_serves_what_the_ingest_instance_reads(
    kraken_ws: FakeKrakenWs,
    kraken_rest: FakeKrakenRest,
    http: httpx.AsyncClient,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    ingest = instance_settings(
        kraken_ws, kraken_rest, redis_url, redis_prefix, tmp_path, role="ingest"
    )
    api = instance_settings(kraken_ws, kraken_rest, redis_url, redis_prefix, tmp_path, role="api")
    async with running_app(ingest) as leader, running_app(api) as replica:
        await kraken_ws.send_ticker("BTC/USD", last=Decimal("70123.4"))

        async def both_agree() -> bool:
            return await btc(http, leader) == await btc(http, replica) == 70123.4

        await wait_for(both_agree, 10, message="the api instance to serve the ingested price")
        assert kraken_ws.total_connections == 1  # only the ingest instance talks to Kraken
        metrics = (await http.get(f"{replica.base_url}/metrics")).text
        assert 'tokenpulse_replicated_updates_total{kind="ltp"}' in metrics


async def test_one_leader_among_all_instances_and_take_over(
    kraken_ws: FakeKrakenWs,
    kraken_rest: FakeKrakenRest,
    http: httpx.AsyncClient,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    settings = instance_settings(kraken_ws, kraken_rest, redis_url, redis_prefix, tmp_path)
    async with contextlib.AsyncExitStack() as leader_stack:
        first = await leader_stack.enter_async_context(running_app(settings))
        await wait_for(lambda: first.container.state.ingesting, 10, message="the first to lead")
        async with running_app(settings) as second:
            assert not second.container.state.ingesting  # the lock is taken
            await kraken_ws.send_ticker("BTC/USD", last=Decimal("70200.5"))

            async def follower_has_it() -> bool:
                return await btc(http, second) == 70200.5

            await wait_for(follower_has_it, 10, message="the follower to serve the price")
            # One feed open, the leader's (on a loaded machine the leader may have reconnected
            # once, so the total ever opened is not the measure); the follower ingests nothing.
            assert kraken_ws.connections == 1
            assert not second.container.state.ingesting
            await leader_stack.aclose()  # the leader goes away
            await wait_for(lambda: second.container.state.ingesting, 10, message="the take-over")

            async def fresh_trade_served() -> bool:
                await kraken_ws.send_ticker("BTC/USD", last=Decimal("70300.25"))
                return await btc(http, second) == 70300.25

            await wait_for(fresh_trade_served, 10, message="the new leader to serve trades")
