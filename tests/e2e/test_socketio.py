"""Socket.IO streaming end to end: fake Kraken -> sources -> hub -> the app on a port ->
python-socketio's official client (and raw Engine.IO clients where a test needs to misbehave).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from functools import partial
from typing import Any

import httpx
import pytest
import socketio
from websockets.asyncio.client import connect as ws_connect

from tests.e2e._streams import StreamingApp, publish_token_json, streaming_app
from tests.fakes._loopback import free_port
from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.helpers import wait_for
from tests.server import app_settings
from tokenpulse.api.streams import StreamLimits
from tokenpulse.bus.redis import RedisBus
from tokenpulse.domain.errors import AmbiguousToken
from tokenpulse.settings import Settings
from tokenpulse.store.cache.redis import from_url
from tokenpulse_client import AsyncTokenpulseClient, TokenpulseClient, Update

DEADLINE = 10.0
#: Where the tasks that serve stream connections come from (for the leak check).
STREAM_LAYERS = ("/engineio/", "/socketio/", "/uvicorn/", "/tokenpulse/api/")
API_KEY = "test-key-" + "x" * 24


@pytest.fixture
def kraken(kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest) -> Callable[..., Settings]:
    """Settings for the app on the fake Kraken WebSocket and REST API (nothing leaves loopback)."""

    def settings(**overrides: Any) -> Settings:
        return app_settings(
            kraken_ws_url=kraken_ws.url,
            kraken_rest_url=kraken_rest.base_url,
            kraken_fallback_timeout="30s",
            **overrides,
        )

    return settings


class Inbox:
    """Every event a python-socketio client receives, by event name."""

    def __init__(self, client: socketio.AsyncClient) -> None:
        self.events: dict[str, list[Any]] = {}
        for name in ("ltp_update", "token_update", "bulk_update"):
            client.on(name, lambda data, name=name: self.events.setdefault(name, []).append(data))

    def of(self, name: str, ident: str | None = None) -> list[Any]:
        items = self.events.get(name, [])
        return [m for m in items if ident is None or m.get("id") == ident]


@contextlib.asynccontextmanager
async def sio_client(
    app: StreamingApp, auth: dict[str, Any] | None = None
) -> AsyncIterator[tuple[socketio.AsyncClient, Inbox]]:
    client = socketio.AsyncClient(reconnection=False)
    inbox = Inbox(client)
    await client.connect(app.base_url, auth=auth, transports=["websocket"], wait_timeout=5)
    try:
        yield client, inbox
    finally:
        await client.disconnect()


def token_resolver(text: str) -> str | None:
    """Known tokens for these tests; ``explode`` stands for a resolver with a bug."""
    value = text.strip().lower()
    if value == "explode":
        raise RuntimeError("resolver bug")
    if value == "hot":
        raise AmbiguousToken("HOT is ambiguous: holotoken, hydro-protocol")
    return {"bitcoin": "bitcoin", "btc": "bitcoin", "ethereum": "ethereum"}.get(value)


async def test_subscribe_pair_gets_a_snapshot_then_deltas_matching_the_trades(
    kraken_ws: FakeKrakenWs, kraken: Callable[..., Settings]
) -> None:
    async with streaming_app(kraken()) as app, sio_client(app) as (client, inbox):
        await wait_for(app.container.prices.views, DEADLINE, message="first prices")
        ack = await client.call("subscribe_pair", {"pair": "xbtusd", "min_interval_ms": 50})
        assert ack["ok"] is True
        assert ack["subscribed"] == ["BTC/USD"]
        assert isinstance(ack["resume"], str)
        await wait_for(lambda: inbox.of("ltp_update"), DEADLINE, message="the snapshot")
        (snapshot,) = inbox.of("ltp_update")
        assert snapshot["type"] == "snapshot"
        assert snapshot["id"] == "BTC/USD"
        assert isinstance(snapshot["ts"], int)
        assert snapshot["data"]["pair"] == "BTC/USD"
        assert snapshot["data"]["source"] == "kraken_ws"
        prices = ["70001.1", "70002.25", "69999.9"]
        for n, price in enumerate(prices, start=2):
            await kraken_ws.send_ticker("BTC/USD", last=Decimal(price))
            await wait_for(lambda n=n: len(inbox.of("ltp_update")) >= n, DEADLINE)
        messages = inbox.of("ltp_update")
        deltas = messages[1:]
        assert [d["type"] for d in deltas] == ["delta"] * 3
        assert [d["changes"]["amount"] for d in deltas] == [float(p) for p in prices]
        seqs = [m["seq"] for m in messages]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)
        assert [d["base_seq"] for d in deltas] == seqs[:-1]  # nothing merged, nothing lost
        assert all("pair" not in d["changes"] for d in deltas)  # only changed fields
        assert all(m["ts"] >= snapshot["ts"] for m in deltas)

        ack = await client.call("unsubscribe_pair", {"pairs": ["BTC/USD"]})
        assert ack == {
            "ok": True,
            "unsubscribed": ["BTC/USD"],
            "subscribed": [],
            "numbers": "number",
            "resume": ack["resume"],
        }
        # Nothing more for BTC: a trade on ETH (subscribed now) arrives, BTC's does not.
        await client.call("subscribe_pair", {"pair": "ETH/USD", "min_interval_ms": 50})
        await wait_for(lambda: inbox.of("ltp_update", "ETH/USD"), DEADLINE)
        await kraken_ws.send_ticker("BTC/USD", last=Decimal("1.5"))
        await kraken_ws.send_ticker("ETH/USD", last=Decimal("2500.5"))
        await wait_for(lambda: len(inbox.of("ltp_update", "ETH/USD")) >= 2, DEADLINE)
        assert len(inbox.of("ltp_update", "BTC/USD")) == 4
        stats = app.streams.hub.stats()
        assert stats.subscriptions["socketio"] == 1


@pytest.mark.parametrize(
    ("event", "payload", "code"),
    [
        ("subscribe_pair", None, "INVALID_PARAMETER"),
        ("subscribe_pair", "BTC/USD", "INVALID_PARAMETER"),
        ("subscribe_pair", {"pairs": "BTC/USD"}, "INVALID_PARAMETER"),
        ("subscribe_pair", {"pairs": []}, "INVALID_PARAMETER"),
        ("subscribe_pair", {"pair": 42}, "INVALID_PARAMETER"),
        ("subscribe_pair", {"pair": "BTC/USD", "pairs": ["ETH/USD"]}, "INVALID_PARAMETER"),
        ("subscribe_pair", {"pair": "not a pair!"}, "INVALID_PARAMETER"),
        ("subscribe_pair", {"pair": "DOGE/MOON"}, "UNSUPPORTED_PAIR"),
        ("subscribe_pair", {"pair": "ADA/USD"}, "UNSUPPORTED_PAIR"),  # Kraken lists it; not served
        ("subscribe_pair", {"pair": "BTC/USD", "min_interval_ms": 1}, "INVALID_PARAMETER"),
        ("subscribe_pair", {"pair": "BTC/USD", "min_interval_ms": "100"}, "INVALID_PARAMETER"),
        ("subscribe_pair", {"pairs": ["BTC/USD"] * 201}, "LIMIT_EXCEEDED"),
        ("subscribe_token", {"token_id": "nosuchcoin"}, "TOKEN_NOT_FOUND"),
        ("subscribe_token", {"token_ids": ["bitcoin", "nope"]}, "TOKEN_NOT_FOUND"),
        ("subscribe_token", {"token_id": "HOT"}, "AMBIGUOUS_TOKEN"),
        ("subscribe_token", {"token_id": "explode"}, "INTERNAL_ERROR"),
        ("subscribe_token", {}, "INVALID_PARAMETER"),
        ("subscribe_all", "everything", "INVALID_PARAMETER"),
        ("resume", {"resume": 5}, "INVALID_PARAMETER"),
    ],
)
async def test_bad_payloads_are_refused_with_a_code(
    kraken: Callable[..., Settings], event: str, payload: Any, code: str
) -> None:
    settings = kraken()
    async with streaming_app(settings, token_resolver=token_resolver) as app:
        async with sio_client(app) as (client, _):
            ack = await client.call(event, payload)
            assert ack["ok"] is False
            assert ack["error"]["code"] == code
            assert ack["error"]["message"]
            assert client.connected  # a bad request never costs the connection
            good = await client.call("subscribe_token", {"token_id": "BTC"})
            assert good["ok"] is True
            assert good["subscribed"] == ["bitcoin"]
        await wait_for(lambda: app.streams.hub.stats().subscriptions["socketio"] == 0, DEADLINE)


async def test_auth_refuses_missing_and_wrong_keys_with_unauthorized(
    kraken_ws: FakeKrakenWs, kraken: Callable[..., Settings]
) -> None:
    settings = kraken(auth_enabled=True, auth_api_key=API_KEY)
    async with streaming_app(settings) as app:
        for auth in (None, {}, {"api_key": "wrong"}, {"token": "not-a-session"}):
            client = socketio.AsyncClient(reconnection=False)
            refusals: list[Any] = []
            client.on("connect_error", refusals.append)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await client.connect(app.base_url, auth=auth, transports=["websocket"])
            (refusal,) = refusals
            assert refusal["code"] == "UNAUTHORIZED"
            assert refusal["data"] == {"code": "UNAUTHORIZED", "message": refusal["message"]}
            assert not client.connected
        async with sio_client(app, auth={"api_key": API_KEY}) as (client, _):
            assert (await client.call("subscribe_pair", {"pair": "BTC/USD"}))["ok"] is True
        failures = app.container.metrics.registry.get_sample_value(
            "tokenpulse_stream_rejected_total", {"transport": "socketio", "reason": "unauthorized"}
        )
        assert failures == 4
        await wait_for(lambda: app.streams.hub.stats().connections["socketio"] == 0, DEADLINE)


async def test_subscribe_all_gets_bulk_updates_at_most_every_bulk_interval(
    kraken_ws: FakeKrakenWs, kraken: Callable[..., Settings]
) -> None:
    async with streaming_app(kraken(), bulk_interval=0.2) as app:
        await wait_for(lambda: len(app.container.prices.views()) == 4, DEADLINE)
        async with sio_client(app) as (client, inbox):
            ack = await client.call("subscribe_all")
            assert ack["ok"] is True
            assert ack["bulk_interval_ms"] == 200
            await wait_for(lambda: inbox.of("bulk_update"), DEADLINE, message="first bulk")
            first = inbox.of("bulk_update")[0]
            assert first["type"] == "bulk"
            assert sorted(u["id"] for u in first["updates"]) == [
                "BTC/USD", "ETH/USD", "LTC/USD", "XRP/USD",
            ]  # fmt: skip
            assert {u["type"] for u in first["updates"]} == {"snapshot"}
            await kraken_ws.send_ticker("BTC/USD", last=Decimal("65000.5"))
            await kraken_ws.send_ticker("ETH/USD", last=Decimal("3000.25"))
            await publish_token_json(app.container.bus, "bitcoin", {"price_usd": 65000.5})

            def updated() -> dict[str, Any]:
                return {
                    (u["event"], u["id"]): u
                    for bulk in inbox.of("bulk_update")[1:]
                    for u in bulk["updates"]
                }

            await wait_for(lambda: len(updated()) >= 3, DEADLINE, message="bulk deltas")
            assert updated()[("ltp_update", "BTC/USD")]["changes"]["amount"] == 65000.5
            assert updated()[("token_update", "bitcoin")]["type"] == "snapshot"
            stamps = [b["ts"] for b in inbox.of("bulk_update")]
            assert all(b - a >= 150 for a, b in itertools.pairwise(stamps))
            assert not inbox.of("ltp_update")  # bulk only


async def test_a_pair_that_stops_trading_gets_a_stale_delta_and_every_message_its_age(
    kraken_ws: FakeKrakenWs, kraken: Callable[..., Settings]
) -> None:
    async with streaming_app(kraken(stale_after="300ms")) as app, sio_client(app) as (client, _):
        inbox = Inbox(client)
        await wait_for(app.container.prices.views, DEADLINE, message="first prices")
        ack = await client.call("subscribe_pair", {"pair": "ETH/USD", "min_interval_ms": 50})
        assert ack["ok"] is True
        await wait_for(lambda: inbox.of("ltp_update"), DEADLINE, message="the snapshot")
        await kraken_ws.send_ticker("ETH/USD", last=Decimal("3001.5"))
        await wait_for(lambda: len(inbox.of("ltp_update")) >= 2, DEADLINE, message="the trade")
        snapshot, trade = inbox.of("ltp_update")[:2]
        assert isinstance(snapshot["data"]["age_ms"], int)
        assert (trade["changes"]["amount"], trade["changes"]["stale"]) == (3001.5, False)
        assert 0 <= trade["changes"]["age_ms"] <= 300

        await kraken_ws.stop()  # silent: nothing confirms the value is still current

        def stale_deltas() -> list[dict[str, Any]]:
            return [m for m in inbox.of("ltp_update")[2:] if m["changes"].get("stale")]

        await wait_for(stale_deltas, DEADLINE, message="the stale delta")
        delta = stale_deltas()[0]  # the REST fallback refreshes it now and then: stale again
        assert delta["type"] == "delta"
        assert delta["base_seq"] == delta["seq"] - 1
        assert set(delta["changes"]) == {"stale", "age_ms"}
        assert delta["changes"]["age_ms"] > 300
        # Every message's stale agrees with its own age (both at its ts).
        for message in inbox.of("ltp_update"):
            body = message.get("data") or message["changes"]
            assert body["stale"] is (body["age_ms"] > 300)


async def test_token_updates_published_by_the_token_service(
    kraken: Callable[..., Settings],
) -> None:
    async with streaming_app(kraken(), token_resolver=token_resolver) as app:
        publish = partial(publish_token_json, app.container.bus)
        snapshot = {
            "symbol": "BTC",
            "price_usd": 65000.5,
            "market_cap_usd": 1.2e12,
            "velocity": 0.03,
        }
        await publish("bitcoin", snapshot)
        async with sio_client(app) as (client, inbox):
            ack = await client.call(
                "subscribe_token", {"token_ids": ["btc"], "min_interval_ms": 50}
            )
            assert ack["subscribed"] == ["bitcoin"]
            await wait_for(lambda: inbox.of("token_update"), DEADLINE)
            first = inbox.of("token_update")[0]
            assert (first["type"], first["id"], first["data"]) == (
                "snapshot", "bitcoin", {**snapshot, "id": "bitcoin"},
            )  # fmt: skip
            await publish("bitcoin", {**snapshot, "velocity": 0.04, "age_ms": 12})
            await wait_for(lambda: len(inbox.of("token_update")) == 2, DEADLINE)
            delta = inbox.of("token_update")[1]
            assert delta["changes"] == {"velocity": 0.04}
            assert delta["base_seq"] == first["seq"]
            assert delta["seq"] == first["seq"] + 1


async def test_resume_restores_subscriptions_with_fresh_snapshots(
    kraken: Callable[..., Settings],
) -> None:
    async with streaming_app(kraken()) as app:
        await wait_for(lambda: len(app.container.prices.views()) == 4, DEADLINE)
        async with sio_client(app) as (client, _):
            ack = await client.call("subscribe_pair", {"pairs": ["BTC/USD", "ETH/USD"]})
            resume = ack["resume"]
        await wait_for(lambda: app.streams.gateway.stats()["connections"] == 0, DEADLINE)
        async with sio_client(app, auth={"resume": resume}) as (client, inbox):
            await wait_for(lambda: len(inbox.of("ltp_update")) == 2, DEADLINE)
            assert {m["id"] for m in inbox.of("ltp_update")} == {"BTC/USD", "ETH/USD"}
            assert {m["type"] for m in inbox.of("ltp_update")} == {"snapshot"}
            ack = await client.call("subscribe_pair", {"pair": "LTC/USD"})
            assert ack["resume"] == resume  # the id stays the client's
        async with sio_client(app) as (client, inbox):
            ack = await client.call("resume", {"resume": resume})
            assert ack["ok"] is True
            assert sorted(ack["subscribed"]) == ["BTC/USD", "ETH/USD", "LTC/USD"]
            await wait_for(lambda: len(inbox.of("ltp_update")) == 3, DEADLINE)
            unknown = await client.call("resume", {"resume": "no-such-id"})
            assert unknown["ok"] is True
            assert unknown["subscribed"] == []


# ----------------------------------------------------------------------------- raw clients


async def recv_answering_pings(ws: Any) -> str:
    """The next message that is not an Engine.IO ping (each ping is answered with a pong).

    The server may ping at any moment: with ``ping_interval=1`` on a loaded machine, a ping
    can come before the answer to ``40``.
    """
    while (message := str(await ws.recv())) == "2":
        await ws.send("3")
    return message


async def raw_ws_cycle(base_url: str, mode: str) -> None:
    """One Engine.IO/Socket.IO session over a bare WebSocket, ended the way ``mode`` says."""
    url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = await ws_connect(url, open_timeout=5)
    try:
        assert str(await ws.recv()).startswith("0{")  # Engine.IO open
        await ws.send("40")
        assert (await recv_answering_pings(ws)).startswith("40{")  # Socket.IO connect
        if mode == "raises":
            await ws.send('421["subscribe_token",{"token_id":"explode"}]')
        else:
            await ws.send('421["subscribe_pair",{"pairs":["BTC/USD","ETH/USD"]}]')
        while not (reply := await recv_answering_pings(ws)).startswith("431"):
            pass
        assert ('"ok":false' in str(reply)) == (mode == "raises")
        if mode == "clean":
            await ws.send("41")  # Socket.IO disconnect, then a WebSocket close
        elif mode in {"vanish", "raises"}:
            ws.transport.abort()  # no close frame, no disconnect: the client just vanishes
            return
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 2)


class PollingClient:
    """A Socket.IO client on Engine.IO long-polling whose reading pace the test controls."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http = http
        self.url = base_url + "/socket.io/?EIO=4&transport=polling"
        self.messages: list[list[Any]] = []
        self.packets_per_poll: list[int] = []

    async def open(self) -> None:
        opened = (await self.http.get(self.url)).text
        assert opened.startswith("0")
        self.url += "&sid=" + json.loads(opened[1:])["sid"]
        await self.http.post(self.url, content="40")
        assert (await self.poll())[0].startswith("0{")  # Socket.IO CONNECT

    async def emit(self, ack_id: int, event: str, data: Any) -> None:
        await self.http.post(self.url, content=f"42{ack_id}" + json.dumps([event, data]))

    async def poll(self) -> list[str]:
        response = await self.http.get(self.url)
        response.raise_for_status()
        packets = [p[1:] for p in response.text.split("\x1e") if p.startswith("4")]
        events = [p for p in packets if p.startswith("2")]
        self.packets_per_poll.append(len(events))
        self.messages.extend(json.loads(p[1:]) for p in events)
        return packets


def deltas_chain(messages: list[dict[str, Any]]) -> bool:
    """Every delta applies to the state the previous message left (no message lost)."""
    return all(
        b["type"] == "snapshot" or b["base_seq"] == a["seq"]
        for a, b in itertools.pairwise(messages)
    )


def sample(app: StreamingApp, name: str, **labels: str) -> float:
    return app.container.metrics.registry.get_sample_value(name, labels) or 0.0


# ----------------------------------------------------------------------------- lifecycle


async def test_a_thousand_connections_come_and_go_without_leaving_anything(
    kraken: Callable[..., Settings],
) -> None:
    settings = kraken()
    async with streaming_app(settings, token_resolver=token_resolver, ping_interval=1) as app:
        gateway, hub = app.streams.gateway, app.streams.hub

        def at_rest() -> bool:
            stats, gw = hub.stats(), gateway.stats()
            return (
                stats.connections == {"socketio": 0, "sse": 0}
                and stats.subscriptions == {"socketio": 0, "sse": 0}
                and (stats.pending, stats.timers, stats.index_entries) == (0, 0, 0)
                and (gw["connections"], gw["ready"], gw["draining"], gw["rooms"]) == (0, 0, 0, 0)
                and gw["engine_sockets"] == 0
            )

        def stream_task_names() -> Counter[str]:
            """Tasks of the connection-serving layers (others, like the Kraken source's, vary)."""
            names: Counter[str] = Counter()
            for task in asyncio.all_tasks():
                code = getattr(task.get_coro(), "cr_code", None)
                path = code.co_filename if code is not None else ""
                if any(part in path for part in STREAM_LAYERS):
                    names[task.get_coro().__qualname__] += 1  # type: ignore[union-attr]
            return names

        await wait_for(app.container.prices.views, DEADLINE)  # sources settled
        baseline = stream_task_names()  # before any connection

        def extra_tasks() -> set[str]:
            return set(stream_task_names() - baseline)

        modes = ["clean", "close", "vanish"]
        gate = asyncio.Semaphore(50)

        async def one(n: int) -> None:
            async with gate:
                if n % 10 == 0:  # the official client, disconnecting cleanly
                    async with sio_client(app) as (client, _):
                        await client.call("subscribe_all")
                elif n % 10 == 5:  # a handler raises, then the client vanishes
                    await raw_ws_cycle(app.base_url, "raises")
                else:
                    await raw_ws_cycle(app.base_url, modes[n % 3])

        await asyncio.gather(*(one(n) for n in range(1000)))
        await wait_for(at_rest, 15, message="every connection forgotten")
        # Only Engine.IO's own client monitor, started by the first connection, may remain
        # (ours, api/streams/_engineio.py; on Python 3.11 its wait_for on the stop event is a
        # task of its own).
        engineio_monitor = {"PromptEngineIoServer._service_task", "Event.wait"}
        try:
            await wait_for(lambda: extra_tasks() <= engineio_monitor, 15)
        except AssertionError:
            raise AssertionError(f"tasks left behind: {sorted(extra_tasks())}") from None
        for transport in ("socketio", "sse"):
            assert sample(app, "tokenpulse_stream_connections", transport=transport) == 0
            assert sample(app, "tokenpulse_stream_subscriptions", transport=transport) == 0
        assert sample(app, "tokenpulse_stream_rejected_total", transport="socketio",
                      reason="internal_error") == 100  # fmt: skip
        # What remains is the bounded resume cache (TTL 5 min), one entry per session.
        assert gateway.stats()["resume_entries"] <= 1001


async def test_a_slow_reader_gets_fewer_newer_messages_and_queues_stay_bounded(
    kraken: Callable[..., Settings],
) -> None:
    limits = StreamLimits(min_interval_ms=0)
    async with (
        streaming_app(kraken(), limits=limits, max_backlog=4) as app,
        httpx.AsyncClient(timeout=5) as http,
        sio_client(app) as (fast, inbox),
    ):
        hub, gateway = app.streams.hub, app.streams.gateway
        hub.publish_pair("BTC/USD", {"pair": "BTC/USD", "amount": 0})
        slow = PollingClient(http, app.base_url)
        await slow.open()
        await slow.emit(1, "subscribe_pair", {"pair": "BTC/USD", "min_interval_ms": 0})
        assert (await fast.call("subscribe_pair", {"pair": "BTC/USD", "min_interval_ms": 0}))["ok"]
        await wait_for(lambda: inbox.of("ltp_update"), DEADLINE)

        stop = asyncio.Event()

        async def read_slowly() -> None:
            while not stop.is_set():
                await slow.poll()
                await asyncio.sleep(0.2)  # the client's own pace: this is what makes it slow

        reader = asyncio.create_task(read_slowly())
        updates, most_pending = 300, 0
        for n in range(1, updates + 1):
            hub.publish_pair("BTC/USD", {"pair": "BTC/USD", "amount": n})
            most_pending = max(most_pending, hub.stats().pending)
            await asyncio.sleep(0.003)  # the producer's pace, ~300 updates/s

        def amounts(messages: list[dict[str, Any]]) -> list[Any]:
            return [
                m.get("changes", m.get("data", {})).get("amount")
                for m in messages
                if "amount" in m.get("changes", m.get("data", {}))
            ]

        await wait_for(lambda: amounts(inbox.of("ltp_update"))[-1:] == [updates], DEADLINE)
        slow_updates = lambda: [m[1] for m in slow.messages if m[0] == "ltp_update"]  # noqa: E731
        await wait_for(lambda: amounts(slow_updates())[-1:] == [updates], DEADLINE)
        stop.set()
        await reader

        fast_messages = inbox.of("ltp_update")
        assert amounts(fast_messages) == list(range(updates + 1))  # every single update
        assert deltas_chain(fast_messages)
        assert len(slow_updates()) < updates / 2  # fewer …
        assert deltas_chain(slow_updates())  # … merged, never lost …
        assert amounts(slow_updates())[-1] == updates  # … and the newest
        assert max(slow.packets_per_poll) <= 4 + 2  # Engine.IO backlog bound (+ ack/ping)
        assert gateway.max_backlog_seen <= 4 + 2
        assert most_pending <= 2  # one pending message per client and key, whatever the rate
        assert sample(app, "tokenpulse_stream_messages_conflated_total", transport="socketio") > 0


async def test_a_client_that_stops_reading_is_cut_off_after_the_send_timeout(
    kraken: Callable[..., Settings],
) -> None:
    limits = StreamLimits(min_interval_ms=0)
    async with (
        streaming_app(kraken(), limits=limits, max_backlog=2, send_timeout=0.5) as app,
        httpx.AsyncClient(timeout=5) as http,
    ):
        hub = app.streams.hub
        slow = PollingClient(http, app.base_url)
        await slow.open()
        await slow.emit(1, "subscribe_pair", {"pair": "BTC/USD", "min_interval_ms": 0})
        await wait_for(lambda: hub.stats().subscriptions["socketio"] == 1, DEADLINE)
        n = 0

        def gone() -> bool:
            nonlocal n
            n += 1
            hub.publish_pair("BTC/USD", {"pair": "BTC/USD", "amount": n})
            return hub.stats().connections["socketio"] == 0

        took = await wait_for(gone, DEADLINE, message="the silent client to be cut off")
        assert took >= 0.5
        assert (
            sample(app, "tokenpulse_stream_slow_client_disconnects_total", transport="socketio")
            == 1
        )
        assert app.streams.gateway.stats()["draining"] == 0
        assert hub.stats().pending == 0


async def test_the_python_client_resubscribes_after_a_server_restart(
    kraken_ws: FakeKrakenWs, kraken: Callable[..., Settings]
) -> None:
    settings, port = kraken(), free_port()
    updates: list[Update] = []
    async with AsyncTokenpulseClient(f"http://127.0.0.1:{port}") as tp:

        async def consume() -> None:
            stream = tp.stream(
                pairs=["btc-usd"], transport="socketio", backoff_initial=0.05, backoff_max=0.2
            )
            async for update in stream:
                updates.append(update)

        async with streaming_app(settings, port=port):
            consumer = asyncio.create_task(consume())
            await wait_for(lambda: updates, DEADLINE, message="the first snapshot")
            await kraken_ws.send_ticker("BTC/USD", last=Decimal("71000.5"))
            await wait_for(lambda: updates[-1].state.get("amount") == 71000.5, DEADLINE)
        before = len(updates)
        async with streaming_app(settings, port=port) as second:
            await wait_for(
                lambda: any(u.type == "snapshot" for u in updates[before:]),
                DEADLINE,
                message="a fresh snapshot after the restart",
            )
            await kraken_ws.send_ticker("BTC/USD", last=Decimal("72000.25"))
            await wait_for(lambda: updates[-1].state.get("amount") == 72000.25, DEADLINE)
            assert second.streams.hub.stats().subscriptions["socketio"] == 1
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
    first = updates[0]
    assert (first.kind, first.id, first.type) == ("pair", "BTC/USD", "snapshot")
    assert updates[1].type == "delta"
    assert updates[1].changes["amount"] == 71000.5
    assert updates[-1].state["pair"] == "BTC/USD"  # merged full state, not just the change


def test_the_client_imports_nothing_of_the_server() -> None:
    code = (
        "import sys, tokenpulse_client as c; "
        "assert c.__all__ and all(hasattr(c, n) for n in c.__all__); "
        "mods = [m for m in sys.modules if m == 'tokenpulse' or m.startswith('tokenpulse.')]; "
        "heavy = [m for m in ('fastapi', 'starlette', 'pydantic', 'redis', 'structlog', "
        "'prometheus_client', 'socketio', 'orjson', 'pandas') if m in sys.modules]; "
        "print(mods, heavy); assert not mods and not heavy"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def test_tokens_already_served_are_seeded_into_new_subscriptions(
    kraken: Callable[..., Settings],
) -> None:
    served = {"ethereum": {"id": "ethereum", "symbol": "ETH", "price_usd": 3000.25}}

    def token_seed(token_id: str | None) -> dict[str, dict[str, Any]]:
        return (
            dict(served) if token_id is None else {k: v for k, v in served.items() if k == token_id}
        )

    settings = kraken()
    async with streaming_app(settings, token_resolver=token_resolver, token_seed=token_seed) as app:
        async with sio_client(app) as (client, inbox):
            ack = await client.call("subscribe_token", {"token_id": "ethereum"})
            assert ack["ok"] is True
            await wait_for(lambda: inbox.of("token_update"), DEADLINE, message="seeded snapshot")
            (snapshot,) = inbox.of("token_update")
            assert (snapshot["type"], snapshot["data"]) == ("snapshot", served["ethereum"])
        async with sio_client(app) as (client, inbox):
            await client.call("subscribe_all")
            await wait_for(lambda: inbox.of("bulk_update"), DEADLINE)
            ids = {u["id"] for u in inbox.of("bulk_update")[0]["updates"]}
            assert "ethereum" in ids


async def test_the_blocking_client_streams_in_three_lines(
    kraken: Callable[..., Settings],
) -> None:
    async with streaming_app(kraken()) as app:
        await wait_for(app.container.prices.views, DEADLINE)

        def first_update() -> Update:  # what a script without asyncio writes
            for update in TokenpulseClient(app.base_url).stream(
                pairs=["ETH/USD"], transport="socketio"
            ):
                return update
            raise AssertionError("the stream ended")

        update = await asyncio.to_thread(first_update)
        assert (update.kind, update.id, update.type) == ("pair", "ETH/USD", "snapshot")
        assert update.state["pair"] == "ETH/USD"
        await wait_for(lambda: app.streams.hub.stats().connections["socketio"] == 0, DEADLINE)


async def test_a_flooding_client_is_limited_and_the_others_are_unaffected(
    kraken: Callable[..., Settings],
) -> None:
    async with (
        streaming_app(kraken()) as app,
        sio_client(app) as (flooder, _),
        sio_client(app) as (other, _),
    ):
        acks = await asyncio.gather(
            *(flooder.call("subscribe_pair", {"pair": "BTC/USD"}) for _ in range(120))
        )
        codes = [a["error"]["code"] for a in acks if not a["ok"]]
        assert 0 < len(codes) <= 120 - 50  # the burst allowance is served
        assert set(codes) == {"RATE_LIMIT_EXCEEDED"}
        ack = await other.call("subscribe_pair", {"pair": "ETH/USD"})
        assert ack["ok"] is True


async def test_with_the_redis_bus_a_client_on_any_instance_sees_every_update(
    kraken_ws: FakeKrakenWs, kraken: Callable[..., Settings], redis_url: str, redis_prefix: str
) -> None:
    clients = [from_url(redis_url), from_url(redis_url)]
    buses = [RedisBus(c, prefix=redis_prefix + "bus:", heartbeat_interval=0.1) for c in clients]
    shared = {"cache_backend": "redis", "redis_url": redis_url, "redis_key_prefix": redis_prefix}
    try:
        async with (
            streaming_app(kraken(**shared), bus=buses[0]) as ingesting,
            streaming_app(kraken(role="api", **shared), bus=buses[1]) as serving,
        ):
            assert serving.container.supervisor is None  # it ingests nothing itself
            await wait_for(lambda: all(b.healthy for b in buses), DEADLINE)
            async with sio_client(serving) as (client, inbox):
                ack = await client.call(
                    "subscribe_pair", {"pair": "BTC/USD", "min_interval_ms": 50}
                )
                assert ack["ok"] is True
                await wait_for(ingesting.container.prices.views, DEADLINE)
                await kraken_ws.send_ticker("BTC/USD", last=Decimal("73000.5"))
                await wait_for(lambda: inbox.of("ltp_update"), DEADLINE, message="via Redis")
                await kraken_ws.send_ticker("BTC/USD", last=Decimal("73001.5"))

                def last_amount() -> Any:
                    messages = inbox.of("ltp_update")
                    state: dict[str, Any] = {}
                    for m in messages:
                        state.update(m.get("data") or m.get("changes") or {})
                    return state.get("amount")

                await wait_for(lambda: last_amount() == 73001.5, DEADLINE)
                assert inbox.of("ltp_update")[0]["type"] == "snapshot"
    finally:
        for client in clients:
            await client.aclose()


async def test_tokens_of_the_token_service_stream_with_their_snapshot_first() -> None:
    settings = app_settings(sources="replay", log_level="warning")
    async with streaming_app(settings) as app, sio_client(app) as (client, inbox):
        await wait_for(app.container.tokens.views, DEADLINE, message="replayed token metrics")
        ack = await client.call("subscribe_token", {"token_ids": ["BTC", "ethereum"]})
        assert ack["subscribed"] == ["bitcoin", "ethereum"]  # a symbol resolves to the id
        await wait_for(lambda: len(inbox.of("token_update")) >= 2, DEADLINE)
        first = {m["id"]: m for m in inbox.of("token_update")[:2]}
        assert {m["type"] for m in first.values()} == {"snapshot"}
        assert first["bitcoin"]["data"]["symbol"] == "BTC"
        data = first["bitcoin"]["data"]  # its freshness at the message's ts (SPEC §4.6)
        assert isinstance(data["age_ms"], int)
        assert data["age_ms"] >= 0
        assert data["stale"] is (data["age_ms"] > 60_000)
        missing = await client.call("subscribe_token", {"token_id": "nosuchcoin"})
        assert missing["error"]["code"] == "TOKEN_NOT_FOUND"
