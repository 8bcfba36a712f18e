"""PostgreSQL goes away (SPEC §13): history reads answer 503 STORE_UNAVAILABLE (standard
shape, Retry-After, no driver or host named), prices are served on, and the rows ingested
meanwhile are written once it returns."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes.coingecko import FakeCoinGecko
from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.faults.proxy import TcpProxy
from tests.helpers import wait_for
from tests.server import RunningApp, app_settings, running_app
from tokenpulse.settings import Settings
from tokenpulse.store.history.models import ltp_samples

DEADLINE = 15.0


async def test_history_reads_answer_503_store_unavailable_while_postgres_is_down(
    kraken_ws: FakeKrakenWs,
    kraken_rest: FakeKrakenRest,
    coingecko: FakeCoinGecko,
    http: httpx.AsyncClient,
    pg_proxy: TcpProxy,
    proxied_pg_url: str,
    pg_test_url: str,
    tmp_path: Path,
) -> None:
    settings = app_settings(
        kraken_ws_url=kraken_ws.url,
        kraken_rest_url=kraken_rest.base_url,
        sources="kraken,coingecko",
        coingecko_base_url=coingecko.base_url,
        database_url=proxied_pg_url,
    )
    async with running_app(settings) as app:
        url = f"{app.base_url}/api/v1/tokens/bitcoin/history"

        async def answers() -> bool:
            return (await http.get(url)).status_code == 200

        await wait_for(answers, DEADLINE, message="bitcoin served with its history")
        pg_proxy.cut()
        response = await http.get(url)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        body = response.json()
        assert body["status"] == "error"
        assert body["error"]["code"] == "STORE_UNAVAILABLE"
        assert body["request_id"]
        for leak in ("asyncpg", "postgres", "sqlalchemy", "127.0.0.1"):
            assert leak not in response.text.lower(), leak
        assert "Error" not in response.text  # no exception class name
        ltp = await http.get(f"{app.base_url}/api/v1/ltp?pair=BTC/USD")
        assert ltp.status_code == 200  # prices come from memory, not the store

        await kraken_ws.send_ticker("BTC/USD", last=Decimal("73123.5"))
        await wait_for(
            lambda: app.container.metrics.registry.get_sample_value(
                "tokenpulse_history_write_errors_total", {}
            ),
            DEADLINE,
            message="a failed history write while PostgreSQL is down",
        )
        pg_proxy.restore()

        await wait_for(answers, DEADLINE, message="history reads once PostgreSQL is back")

    engine = create_async_engine(pg_test_url)
    try:
        async with engine.connect() as conn:
            written = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(ltp_samples)
                .where(ltp_samples.c.price == Decimal("73123.5"))
            )
    finally:
        await engine.dispose()
    print(f"\nFIGURE postgres-outage: buffered row written after the outage: {written}")
    assert written == 1


async def test_two_instances_answer_503_while_postgres_is_down_and_lose_no_row(
    kraken_ws: FakeKrakenWs,
    kraken_rest: FakeKrakenRest,
    coingecko: FakeCoinGecko,
    http: httpx.AsyncClient,
    pg_proxy: TcpProxy,
    proxied_pg_url: str,
    pg_test_url: str,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """A ``ROLE=all`` leader and a ``ROLE=api`` follower on one PostgreSQL (behind the proxy)
    and one Redis: both answer history reads 503 while it is down, both serve prices, and
    the leader writes what it buffered once it is back."""

    def settings(role: str) -> Settings:
        return app_settings(
            kraken_ws_url=kraken_ws.url,
            kraken_rest_url=kraken_rest.base_url,
            sources="kraken,coingecko",
            coingecko_base_url=coingecko.base_url,
            database_url=proxied_pg_url,
            cache_backend="redis",
            redis_url=redis_url,
            redis_key_prefix=redis_prefix,
            role=role,
        )

    async with running_app(settings("all")) as leader, running_app(settings("api")) as api:
        instances = (leader, api)

        async def answers(instance: RunningApp) -> bool:
            url = f"{instance.base_url}/api/v1/tokens/bitcoin/history"
            return (await http.get(url)).status_code == 200

        for instance in instances:
            await wait_for(lambda i=instance: answers(i), DEADLINE, message="history served")
        pg_proxy.cut()
        for instance in instances:
            response = await http.get(f"{instance.base_url}/api/v1/tokens/bitcoin/history")
            assert response.status_code == 503
            assert response.headers["retry-after"] == "5"
            assert response.json()["error"]["code"] == "STORE_UNAVAILABLE"
            assert "asyncpg" not in response.text.lower()
        await kraken_ws.send_ticker("BTC/USD", last=Decimal("73124.5"))

        async def served_everywhere() -> bool:
            for instance in instances:
                ltp = await http.get(f"{instance.base_url}/api/v1/ltp?pair=BTC/USD")
                if ltp.status_code != 200 or ltp.json()["ltp"][0]["amount"] != 73124.5:
                    return False
            return True

        await wait_for(served_everywhere, DEADLINE, message="the new price on both instances")
        await wait_for(
            lambda: leader.container.metrics.registry.get_sample_value(
                "tokenpulse_history_write_errors_total", {}
            ),
            DEADLINE,
            message="a failed history write on the leader",
        )
        pg_proxy.restore()
        for instance in instances:
            await wait_for(lambda i=instance: answers(i), DEADLINE, message="history again")

    engine = create_async_engine(pg_test_url)
    try:
        async with engine.connect() as conn:
            written = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(ltp_samples)
                .where(ltp_samples.c.price == Decimal("73124.5"))
            )
    finally:
        await engine.dispose()
    print(
        f"\nFIGURE postgres-outage two instances: 503 STORE_UNAVAILABLE on both, prices served "
        f"on both, buffered row written after the outage: {written}"
    )
    assert written == 1
