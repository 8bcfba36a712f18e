"""Redis goes away (SPEC §10, §13): streams keep delivering on the instance that ingests,
followers flag their keys stale and resync when it returns, and no history row is lost.

Every scenario prints its figure (``-s`` shows them; the README's "Failure behaviour" table
records them).
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import httpx

from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.faults._clients import amounts, instance_settings, metric, sio, sse
from tests.faults._history import ltp_rows, missing_seconds
from tests.faults.proxy import TcpProxy
from tests.helpers import wait_for
from tests.server import running_app

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


OUTAGE_SECONDS = 30.0
TICK_EVERY = 0.2
PAIRS = ("BTC/USD", "ETH/USD")


async def test_a_30_second_redis_outage_loses_no_history_row_and_no_stream_message(
    kraken_ws: FakeKrakenWs,
    kraken_rest: FakeKrakenRest,
    redis_proxy: TcpProxy,
    proxied_redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    """Redis stalls for 30 s (the worst case: every command waits for its timeout) while
    prices keep arriving; a local SSE and a local Socket.IO client get every tick, and
    afterwards every pair has a row for every second of the outage."""
    settings = instance_settings(kraken_ws, kraken_rest, proxied_redis_url, redis_prefix, tmp_path)
    async with running_app(settings) as app:
        await wait_for(lambda: app.container.state.ingesting, DEADLINE, message="leading")
        path = "/api/v1/ltp/live?pair=BTC/USD&min_interval_ms=50"
        async with sse(app.base_url, path) as stream, sio(app.base_url) as (client, sio_got):
            ack = await client.call("subscribe_pair", {"pair": "BTC/USD", "min_interval_ms": 50})
            assert ack["ok"] is True
            await wait_for(lambda: stream.events and sio_got, DEADLINE, message="snapshots")
            redis_proxy.stall()
            start = time.time()
            sent: list[int] = []
            while time.time() - start < OUTAGE_SECONDS:
                n = len(sent) + 1
                for i, pair in enumerate(PAIRS):
                    await kraken_ws.send_ticker(pair, last=Decimal(70000 + 1000 * i + n))
                sent.append(70000 + n)
                await asyncio.sleep(TICK_EVERY)  # the feed's pace, not a wait for a condition
            end = time.time()

            await wait_for(
                lambda: sent[-1] in amounts(stream.messages()) and sent[-1] in amounts(sio_got),
                DEADLINE,
                message="the last tick on both streams",
            )
            # Per client and key only the newest state waits to be sent (SPEC §7.3): a
            # reader slower than the feed may skip a value, never fall behind.
            on_sse = len(set(sent) & set(amounts(stream.messages())))
            on_sio = len(set(sent) & set(amounts(sio_got)))
            assert min(on_sse, on_sio) >= 0.9 * len(sent)
            redis_proxy.restore()
            assert app.container.state.ingesting  # no step-down, no hole

    first, last = int(start) + 1, int(end) - 1
    rows = await ltp_rows(settings.database_url, first, last, PAIRS)
    lost = missing_seconds(rows, first, last)
    per_second = {pair: len(seconds) for pair, seconds in rows.items()}
    print(
        f"\nFIGURE redis-outage history: {OUTAGE_SECONDS:.0f} s stalled Redis, "
        f"rows per pair {per_second} of {last - first + 1} seconds, "
        f"lost { ({p: len(s) for p, s in lost.items()}) }; local stream messages during the "
        f"outage sse={on_sse} socketio={on_sio} of {len(sent)} ticks"
    )
    assert all(not missing for missing in lost.values()), lost


TWO_INSTANCE_OUTAGE = 5.0


async def test_two_instances_through_a_redis_outage(
    kraken_ws: FakeKrakenWs,
    kraken_rest: FakeKrakenRest,
    http: httpx.AsyncClient,
    redis_proxy: TcpProxy,
    proxied_redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    """A ``ROLE=all`` leader and a ``ROLE=api`` follower both lose Redis: the leader's own
    streams go on and it writes every second; the follower flags its keys stale, then
    resyncs (counted); ``/ltp/cached`` answers from memory, marked, on both."""
    leader_settings = instance_settings(
        kraken_ws, kraken_rest, proxied_redis_url, redis_prefix, tmp_path, role="all"
    )
    follower_settings = instance_settings(
        kraken_ws, kraken_rest, proxied_redis_url, redis_prefix, tmp_path, role="api"
    )
    path = "/api/v1/ltp/live?pair=BTC/USD&min_interval_ms=50"
    async with running_app(leader_settings) as leader, running_app(follower_settings) as api:
        await wait_for(lambda: leader.container.state.ingesting, DEADLINE, message="leading")
        async with sse(leader.base_url, path) as on_leader, sse(api.base_url, path) as on_api:
            await kraken_ws.send_ticker("BTC/USD", last=Decimal("72000"))
            await wait_for(
                lambda: (
                    72000 in amounts(on_leader.messages()) and 72000 in amounts(on_api.messages())
                ),
                DEADLINE,
                message="the first value on both instances",
            )

            async def both_ready() -> bool:
                answers = [await http.get(f"{i.base_url}/ready") for i in (leader, api)]
                return all(a.status_code == 200 for a in answers)

            await wait_for(both_ready, DEADLINE, message="the bus healthy on both instances")
            redis_proxy.cut()

            def flagged_stale() -> bool:
                return any(
                    m.get("type") == "delta" and m["changes"].get("stale") is True
                    for m in on_api.messages()
                )

            stale_after = await wait_for(flagged_stale, DEADLINE, message="stale on the follower")

            counted: list[float] = []

            async def follower_bus_down() -> bool:
                text = (await http.get(f"{api.base_url}/metrics")).text
                counted.append(metric(text, "tokenpulse_stream_resyncs_total"))
                return metric(text, "tokenpulse_bus_healthy") == 0

            # On a loaded machine a late heartbeat can flap the bus before the cut, and its
            # resync is counted then: count from the moment the follower knows it is cut off.
            await wait_for(follower_bus_down, DEADLINE, message="the follower's bus reported down")
            resyncs_before = counted[-1]
            before = len(on_leader.events)
            start = time.time()
            sent: list[int] = []
            while time.time() - start < TWO_INSTANCE_OUTAGE:
                n = len(sent) + 1
                for i, pair in enumerate(PAIRS):
                    await kraken_ws.send_ticker(pair, last=Decimal(72000 + 1000 * i + n))
                sent.append(72000 + n)
                await asyncio.sleep(TICK_EVERY)  # the feed's pace, not a wait for a condition
            end = time.time()
            await wait_for(
                lambda: sent[-1] in amounts(on_leader.messages()),
                DEADLINE,
                message="the leader's stream delivers through the outage",
            )
            delivered = len(set(sent) & set(amounts(on_leader.messages()[before:])))
            for instance in (leader, api):
                cached = await http.get(f"{instance.base_url}/api/v1/ltp/cached")
                assert cached.status_code == 200
                assert cached.json()["source"] == "memory"
            assert (
                metric(
                    (await http.get(f"{api.base_url}/metrics")).text,
                    "tokenpulse_stream_resyncs_total",
                )
                == resyncs_before  # no resync while the bus is down
            )
            seen = len(on_api.events)
            redis_proxy.restore()

            def resynced() -> list[float]:
                return amounts([m for m in on_api.messages()[seen:] if m.get("type") == "snapshot"])

            await wait_for(resynced, DEADLINE, message="the follower's resync snapshot")
            # The follower reloads the leader's saved values before its resync snapshot; when
            # its bus came back before the leader's saves caught up, the leader's announcement
            # makes it reload again, so the value of the outage follows as a delta.
            await wait_for(
                lambda: sent[-1] in amounts(on_api.messages()[seen:]),
                DEADLINE,
                message="the leader's value of the outage on the follower",
            )
            metrics = (await http.get(f"{api.base_url}/metrics")).text
            assert metric(metrics, "tokenpulse_stream_resyncs_total") == resyncs_before + 1
            assert leader.container.state.ingesting  # never stepped down

    first, last = int(start) + 1, int(end) - 1
    rows = await ltp_rows(leader_settings.database_url, first, last, PAIRS)
    lost = missing_seconds(rows, first, last)
    print(
        f"\nFIGURE redis-outage two instances: follower stale after {stale_after:.2f} s, "
        f"leader stream delivered {delivered} of {len(sent)} ticks during the outage, "
        f"follower resynced once, /ltp/cached from memory on both, rows lost "
        f"{ ({p: len(s) for p, s in lost.items()}) } of {last - first + 1} seconds"
    )
    assert all(not missing for missing in lost.values()), lost
    assert delivered >= 0.9 * len(sent)


async def test_a_value_the_bus_lost_reaches_a_follower_once_the_leaders_saves_catch_up(
    kraken_ws: FakeKrakenWs,
    kraken_rest: FakeKrakenRest,
    http: httpx.AsyncClient,
    redis_proxy: TcpProxy,
    proxied_redis_url: str,
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    """Only the leader loses Redis, and the one update it accepts meanwhile is dropped from
    its bus. The follower's bus never went down, so it has no resync to catch it: the
    leader's announcement, once its saves caught up, makes it reload — the value reaches the
    follower's stream although that key never changes again."""
    leader_settings = instance_settings(
        kraken_ws, kraken_rest, proxied_redis_url, redis_prefix, tmp_path, role="all"
    )
    follower_settings = instance_settings(
        kraken_ws, kraken_rest, redis_url, redis_prefix, tmp_path, role="api"
    )
    path = "/api/v1/ltp/live?pair=BTC/USD&min_interval_ms=50"
    dropped = 'tokenpulse_bus_publish_failures_total{topic="ltp"}'
    async with running_app(leader_settings) as leader, running_app(follower_settings) as api:
        await wait_for(lambda: leader.container.state.ingesting, DEADLINE, message="leading")
        async with sse(api.base_url, path) as on_api:
            await kraken_ws.send_ticker("BTC/USD", last=Decimal("72000"))
            await wait_for(
                lambda: 72000 in amounts(on_api.messages()), DEADLINE, message="first value"
            )
            redis_proxy.cut()
            await wait_for(lambda: not leader.container.bus.healthy, DEADLINE, message="bus down")
            before = metric((await http.get(f"{leader.base_url}/metrics")).text, dropped)
            await kraken_ws.send_ticker("BTC/USD", last=Decimal("73000"))

            async def lost_by_the_bus() -> bool:
                text = (await http.get(f"{leader.base_url}/metrics")).text
                return metric(text, dropped) > before

            await wait_for(lost_by_the_bus, DEADLINE, message="the update dropped by the bus")
            assert 73000 not in amounts(on_api.messages())
            redis_proxy.restore()
            took = await wait_for(
                lambda: 73000 in amounts(on_api.messages()),
                DEADLINE,
                message="the lost value on the follower's stream",
            )
            follower_metrics = (await http.get(f"{api.base_url}/metrics")).text
            assert metric(follower_metrics, "tokenpulse_bus_healthy") == 1
            assert metric(follower_metrics, "tokenpulse_stream_resyncs_total") == 0
            cached = await http.get(f"{api.base_url}/api/v1/ltp?pair=BTC/USD")
            assert cached.json()["ltp"][0]["amount"] == 73000
    print(f"\nFIGURE redis-outage lost bus update: on the follower {took:.2f} s after the return")
