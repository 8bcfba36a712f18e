"""Redis goes away (SPEC §10, §13): streams keep delivering on the instance that ingests,
followers flag their keys stale and resync when it returns, and no history row is lost.

Every scenario prints its figure (``-s`` shows them; the README's "Failure behaviour" table
records them).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.faults._clients import amounts, instance_settings, metric, sio, sse
from tests.faults.proxy import TcpProxy
from tests.helpers import wait_for
from tests.server import running_app
from tokenpulse.store.history.models import ltp_samples

DEADLINE = 15.0
TICKS = 10


async def test_a_single_instance_keeps_streaming_while_redis_is_down(
    kraken_ws: FakeKrakenWs,
    kraken_rest: FakeKrakenRest,
    http: httpx.AsyncClient,
    redis_proxy: TcpProxy,
    proxied_redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    settings = instance_settings(kraken_ws, kraken_rest, proxied_redis_url, redis_prefix, tmp_path)
    async with running_app(settings) as app:
        await wait_for(lambda: app.container.state.ingesting, DEADLINE, message="leading")
        path = "/api/v1/ltp/live?pair=BTC/USD&min_interval_ms=50"
        async with sse(app.base_url, path) as stream, sio(app.base_url) as (client, sio_got):
            ack = await client.call("subscribe_pair", {"pair": "BTC/USD", "min_interval_ms": 50})
            assert ack["ok"] is True
            await wait_for(lambda: stream.events and sio_got, DEADLINE, message="snapshots")

            redis_proxy.cut()
            await wait_for(lambda: not app.container.bus.healthy, DEADLINE, message="bus down")
            before_sse, before_sio = len(stream.events), len(sio_got)
            for n in range(TICKS):
                price = 71000 + n
                await kraken_ws.send_ticker("BTC/USD", last=Decimal(price))
                await wait_for(
                    lambda p=price: (
                        p in amounts(stream.messages()) and p in amounts(sio_got)  # type: ignore[misc]
                    ),
                    DEADLINE,
                    message=f"tick {price} on both streams during the outage",
                )
            during_sse = len(stream.events) - before_sse
            during_sio = len(sio_got) - before_sio
            print(
                f"\nFIGURE redis-outage single instance: messages delivered during the outage "
                f"sse={during_sse} socketio={during_sio} (of {TICKS} ticks)"
            )
            assert during_sse >= TICKS
            assert during_sio >= TICKS
            ready = await http.get(f"{app.base_url}/ready")
            assert ready.status_code == 503
            assert ready.json()["services"]["bus"]["state"] == "unhealthy"

            redis_proxy.restore()
            await wait_for(lambda: app.container.bus.healthy, DEADLINE, message="bus back")
            ready = await http.get(f"{app.base_url}/ready")
            assert ready.json()["services"]["bus"]["state"] == "ready"


async def test_a_follower_flags_its_keys_stale_while_the_bus_is_down_then_resyncs(
    kraken_ws: FakeKrakenWs,
    kraken_rest: FakeKrakenRest,
    http: httpx.AsyncClient,
    redis_url: str,
    redis_proxy: TcpProxy,
    proxied_redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    leader_settings = instance_settings(
        kraken_ws, kraken_rest, redis_url, redis_prefix, tmp_path, role="ingest"
    )
    follower_settings = instance_settings(
        kraken_ws, kraken_rest, proxied_redis_url, redis_prefix, tmp_path, role="api"
    )
    async with running_app(leader_settings) as leader, running_app(follower_settings) as api:
        path = "/api/v1/ltp/live?pair=BTC/USD&min_interval_ms=50"
        async with sse(api.base_url, path) as stream:
            await kraken_ws.send_ticker("BTC/USD", last=Decimal("72000"))
            await wait_for(
                lambda: 72000 in amounts(stream.messages()), DEADLINE, message="first value"
            )
            redis_proxy.cut()  # the follower loses the bus; the leader does not

            def flagged_stale() -> bool:
                return any(
                    m.get("type") == "delta" and m["changes"].get("stale") is True
                    for m in stream.messages()
                )

            took = await wait_for(flagged_stale, DEADLINE, message="a stale signal per key")
            print(f"\nFIGURE redis-outage follower: stale signal after {took:.2f} s")
            await kraken_ws.send_ticker("BTC/USD", last=Decimal("72001"))
            await wait_for(
                lambda: (
                    leader.container.prices.view(leader.container.registry.resolve("BTC/USD"))
                    is not None
                ),
                DEADLINE,
            )
            seen = len(stream.events)
            redis_proxy.restore()

            def resynced() -> list[float]:
                snapshots = [m for m in stream.messages()[seen:] if m.get("type") == "snapshot"]
                return amounts(snapshots)

            await wait_for(resynced, DEADLINE, message="a fresh snapshot after the outage")
            # The follower loaded what it missed (the leader's latest values) before resyncing.
            assert resynced()[-1] == 72001
            metrics = (await http.get(f"{api.base_url}/metrics")).text
            assert metric(metrics, "tokenpulse_stream_resyncs_total") == 1
            assert metric(metrics, "tokenpulse_stream_stale_signals_total") == 1
            await kraken_ws.send_ticker("BTC/USD", last=Decimal("72002"))
            await wait_for(
                lambda: 72002 in amounts(stream.messages()), DEADLINE, message="updates again"
            )
            assert not stream.response.is_closed  # the stream stayed open throughout


OUTAGE_SECONDS = 6.0
TICK_EVERY = 0.2


async def test_a_redis_outage_loses_no_history_row(
    kraken_ws: FakeKrakenWs,
    kraken_rest: FakeKrakenRest,
    redis_proxy: TcpProxy,
    proxied_redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    """Redis stalls (the worst case: every command waits for its timeout) while prices keep
    arriving; afterwards every pair has a row for every second of the outage."""
    settings = instance_settings(kraken_ws, kraken_rest, proxied_redis_url, redis_prefix, tmp_path)
    pairs = ["BTC/USD", "ETH/USD"]
    async with running_app(settings) as app:
        await wait_for(lambda: app.container.state.ingesting, DEADLINE, message="leading")
        redis_proxy.stall()
        start = time.time()
        n = 0
        while time.time() - start < OUTAGE_SECONDS:
            n += 1
            for i, pair in enumerate(pairs):
                await kraken_ws.send_ticker(pair, last=Decimal(70000 + 1000 * i + n))
            await asyncio.sleep(TICK_EVERY)  # the feed's pace, not a wait for a condition
        end = time.time()
        redis_proxy.restore()
        assert app.container.state.ingesting  # no step-down, no hole

    engine = create_async_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(ltp_samples.c.pair, ltp_samples.c.ts).where(
                        ltp_samples.c.ts >= datetime.fromtimestamp(int(start) + 1, UTC),
                        ltp_samples.c.ts < datetime.fromtimestamp(int(end), UTC),
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    seconds: dict[str, set[int]] = defaultdict(set)
    for pair, ts in rows:
        seconds[pair].add(int(ts.timestamp()))
    expected = set(range(int(start) + 1, int(end)))
    lost = {pair: sorted(expected - seconds[pair]) for pair in pairs}
    print(
        f"\nFIGURE redis-outage history: {OUTAGE_SECONDS:.0f} s stalled Redis, "
        f"rows lost per pair { ({p: len(s) for p, s in lost.items()}) } "
        f"of {len(expected)} seconds"
    )
    assert all(not missing for missing in lost.values()), lost
