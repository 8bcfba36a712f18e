"""Server-Sent Events end to end: fake Kraken -> hub -> the app on a port -> httpx streaming
(and a raw socket for the client that stops reading)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from functools import partial
from typing import Any

import httpx
import pytest

from tests.e2e._streams import StreamingApp, publish_token_json, streaming_app
from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.helpers import wait_for
from tests.server import app_settings
from tokenpulse.settings import Settings
from tokenpulse_client import AsyncTokenpulseClient, Update

DEADLINE = 10.0
API_KEY = "sse-test-key-" + "y" * 20


@pytest.fixture
def kraken(kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest) -> Callable[..., Settings]:
    def settings(**overrides: Any) -> Settings:
        return app_settings(
            kraken_ws_url=kraken_ws.url,
            kraken_rest_url=kraken_rest.base_url,
            kraken_fallback_timeout="30s",
            rate_limit_enabled=False,
            **overrides,
        )

    return settings


def resolver(text: str) -> str | None:
    return {"bitcoin": "bitcoin", "btc": "bitcoin", "ethereum": "ethereum"}.get(text.lower())


class EventReader:
    """Reads an SSE response into events ``{event, id, data}`` and comment lines."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.events: list[dict[str, Any]] = []
        self.comments: list[str] = []
        self.retry: str | None = None
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        current: dict[str, Any] = {}
        with contextlib.suppress(httpx.HTTPError):
            async for line in self.response.aiter_lines():
                if line == "":
                    if "data" in current:
                        current["data"] = json.loads(current["data"])
                        self.events.append(current)
                    current = {}
                elif line.startswith(":"):
                    self.comments.append(line)
                else:
                    name, _, value = line.partition(": ")
                    if name == "retry":
                        self.retry = value
                    else:
                        current[name] = value

    def data(self, ident: str | None = None) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events if ident is None or e["data"]["id"] == ident]

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def sse(
    app: StreamingApp, path: str, headers: dict[str, str] | None = None
) -> AsyncIterator[EventReader]:
    async with (
        httpx.AsyncClient(timeout=DEADLINE) as http,
        http.stream("GET", app.base_url + path, headers=headers) as response,
    ):
        assert response.status_code == 200, (await response.aread())[:300]
        reader = EventReader(response)
        try:
            yield reader
        finally:
            await reader.close()


def stream_tasks() -> list[str]:
    """Tasks of an HTTP request or an SSE stream still running in this process."""
    names = [t.get_coro().__qualname__ for t in asyncio.all_tasks()]  # type: ignore[union-attr]
    return [n for n in names if "run_asgi" in n or "EventStream" in n or "watch_disconnect" in n]


def at_rest(app: StreamingApp) -> bool:
    stats = app.streams.hub.stats()
    return stats.connections["sse"] == 0 and (stats.pending, stats.timers) == (0, 0)


async def test_ltp_events_carry_the_seq_as_id_then_deltas_and_keepalives(
    kraken_ws: FakeKrakenWs, kraken: Callable[..., Settings]
) -> None:
    async with streaming_app(kraken(), sse_heartbeat=0.2) as app:
        await wait_for(app.container.prices.views, DEADLINE)
        async with sse(app, "/api/v1/ltp/live?pair=btc-usd&min_interval_ms=50") as reader:
            headers = reader.response.headers
            assert headers["content-type"].startswith("text/event-stream")
            assert headers["cache-control"] == "no-cache"
            assert headers["x-accel-buffering"] == "no"
            assert reader.response.headers.get("x-request-id")
            await wait_for(lambda: reader.events, DEADLINE, message="the snapshot")
            assert reader.retry == "2000"
            first = reader.events[0]
            assert first["event"] == "ltp_update"
            assert first["data"]["type"] == "snapshot"
            assert first["id"] == str(first["data"]["seq"])
            assert first["data"]["data"]["pair"] == "BTC/USD"
            for n, price in enumerate(("70100.5", "70200.75"), start=2):
                await kraken_ws.send_ticker("BTC/USD", last=Decimal(price))
                await wait_for(lambda n=n: len(reader.events) >= n, DEADLINE)
            deltas = reader.data()[1:]
            assert [d["changes"]["amount"] for d in deltas] == [70100.5, 70200.75]
            assert [e["id"] for e in reader.events] == [str(d["seq"]) for d in reader.data()]
            assert [d["base_seq"] for d in deltas] == [d["seq"] for d in reader.data()[:-1]]
            await wait_for(lambda: ": keepalive" in reader.comments, DEADLINE, message="keepalive")
            assert app.streams.hub.stats().connections["sse"] == 1
        await wait_for(lambda: at_rest(app), DEADLINE, message="the stream to be forgotten")


async def test_last_event_id_gets_a_fresh_snapshot(
    kraken_ws: FakeKrakenWs, kraken: Callable[..., Settings]
) -> None:
    async with streaming_app(kraken()) as app:
        await wait_for(app.container.prices.views, DEADLINE)
        async with sse(app, "/api/v1/ltp/live?pair=BTC/USD&min_interval_ms=50") as reader:
            await wait_for(lambda: reader.events, DEADLINE)
            await kraken_ws.send_ticker("BTC/USD", last=Decimal("70300.5"))
            await wait_for(lambda: len(reader.events) == 2, DEADLINE)
            last_id = reader.events[-1]["id"]
        await kraken_ws.send_ticker("BTC/USD", last=Decimal("70400.5"))  # missed while away
        await wait_for(lambda: app.streams.hub.stream("pair:BTC/USD").seq > int(last_id), DEADLINE)  # type: ignore[union-attr]
        resumed = {"Last-Event-ID": last_id}
        async with sse(app, "/api/v1/ltp/live?pair=BTC/USD", headers=resumed) as reader:
            await wait_for(lambda: reader.events, DEADLINE)
            (snapshot,) = reader.data()
            assert snapshot["type"] == "snapshot"
            assert snapshot["seq"] == int(last_id) + 1
            assert snapshot["data"]["amount"] == 70400.5


async def test_token_streams_for_some_one_and_all_tokens(kraken: Callable[..., Settings]) -> None:
    async with streaming_app(kraken(), token_resolver=resolver) as app:
        publish = partial(publish_token_json, app.container.bus)
        await publish("bitcoin", {"symbol": "BTC", "price_usd": 65000.5})
        async with (
            sse(app, "/api/v1/tokens/live?ids=btc,ethereum&min_interval_ms=50") as some,
            sse(app, "/api/v1/tokens/BTC/live") as one,
            sse(app, "/api/v1/tokens/live") as every,
        ):
            for reader in (some, one, every):
                await wait_for(lambda reader=reader: reader.events, DEADLINE)
            await publish("ethereum", {"symbol": "ETH", "price_usd": 3000.25})
            await publish("bitcoin", {"symbol": "BTC", "price_usd": 65001.5})
            await wait_for(lambda: len(some.events) == 3, DEADLINE)
            await wait_for(lambda: len(every.events) == 3, DEADLINE)
            await wait_for(lambda: len(one.events) == 2, DEADLINE)
            assert {e["event"] for e in some.events} == {"token_update"}
            assert [(d["id"], d["type"]) for d in one.data()] == [
                ("bitcoin", "snapshot"), ("bitcoin", "delta"),
            ]  # fmt: skip
            assert one.data()[1]["changes"] == {"price_usd": 65001.5}
            assert sorted((d["id"], d["type"]) for d in every.data()) == [
                ("bitcoin", "delta"), ("bitcoin", "snapshot"), ("ethereum", "snapshot"),
            ]  # fmt: skip
        await wait_for(lambda: at_rest(app), DEADLINE)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/tokens/nosuchcoin/live", 404, "TOKEN_NOT_FOUND"),
        ("/api/v1/tokens/live?ids=bitcoin,nope", 404, "TOKEN_NOT_FOUND"),
        ("/api/v1/ltp/live?pair=DOGE/MOON", 400, "UNSUPPORTED_PAIR"),
        ("/api/v1/ltp/live?pair=BTC/USD&min_interval_ms=5", 400, "INVALID_PARAMETER"),
        ("/api/v1/ltp/live?pair=BTC/USD&min_interval_ms=soon", 400, "INVALID_PARAMETER"),
    ],
)
async def test_bad_requests_are_answered_before_streaming(
    kraken: Callable[..., Settings], path: str, status: int, code: str
) -> None:
    async with (
        streaming_app(kraken(), token_resolver=resolver) as app,
        httpx.AsyncClient(timeout=DEADLINE) as http,
    ):
        response = await http.get(app.base_url + path)
        assert response.status_code == status
        body = response.json()
        found = body["error"] if isinstance(body["error"], str) else body["error"]["code"]
        assert found == code
        assert app.streams.hub.stats().connections["sse"] == 0


async def test_auth_by_header_or_query_parameter(kraken: Callable[..., Settings]) -> None:
    settings = kraken(auth_enabled=True, auth_api_key=API_KEY)
    async with (
        streaming_app(settings) as app,
        httpx.AsyncClient(timeout=DEADLINE) as http,
    ):
        missing = await http.get(app.base_url + "/api/v1/ltp/live?pair=BTC/USD")
        assert missing.status_code == 401
        assert missing.json()["error"] == "UNAUTHORIZED"
        async with sse(app, f"/api/v1/ltp/live?pair=BTC/USD&api_key={API_KEY}") as reader:
            await wait_for(lambda: reader.events, DEADLINE)
        async with sse(app, "/api/v1/tokens/live", headers={"X-API-Key": API_KEY}):
            await wait_for(lambda: app.streams.hub.stats().connections["sse"] == 1, DEADLINE)


async def test_a_client_that_stops_reading_is_cut_off_and_leaves_nothing(
    kraken: Callable[..., Settings],
) -> None:
    async with streaming_app(kraken(), send_timeout=0.3, token_resolver=resolver) as app:
        hub = app.streams.hub
        port = int(app.base_url.rsplit(":", 1)[1])
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as raw:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a tiny window
            raw.setblocking(False)
            loop = asyncio.get_running_loop()
            await loop.sock_connect(raw, ("127.0.0.1", port))
            request = (
                b"GET /api/v1/tokens/bitcoin/live?min_interval_ms=50 HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            await loop.sock_sendall(raw, request)
            await wait_for(lambda: hub.stats().connections["sse"] == 1, DEADLINE)
            blob, n = "x" * 500_000, 0

            def cut_off() -> bool:  # publish big updates until the server gives up on us
                nonlocal n
                n += 1
                data = {"id": "bitcoin", "price_usd": n, "blob": f"{blob}{n}"}  # ~500 kB deltas
                hub.publish_token("bitcoin", data)
                return hub.stats().connections["sse"] == 0

            await wait_for(cut_off, DEADLINE, message="the non-reading client to be cut off")
        metrics = app.container.metrics.registry
        assert (
            metrics.get_sample_value(
                "tokenpulse_stream_slow_client_disconnects_total", {"transport": "sse"}
            )
            == 1
        )
        assert at_rest(app)
        await wait_for(lambda: not stream_tasks(), DEADLINE, message="no request task left")


async def test_the_python_client_streams_over_sse(
    kraken_ws: FakeKrakenWs, kraken: Callable[..., Settings]
) -> None:
    async with (
        streaming_app(kraken()) as app,
        AsyncTokenpulseClient(app.base_url) as tp,
    ):
        await wait_for(app.container.prices.views, DEADLINE)
        updates: list[Update] = []

        async def consume() -> None:
            async for update in tp.stream(pairs=["ETH/USD"], transport="sse", min_interval_ms=50):
                updates.append(update)

        consumer = asyncio.create_task(consume())
        try:
            await wait_for(lambda: updates, DEADLINE)
            await kraken_ws.send_ticker("ETH/USD", last=Decimal("2999.75"))
            await wait_for(lambda: updates[-1].state.get("amount") == 2999.75, DEADLINE)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
        assert [u.type for u in updates][:2] == ["snapshot", "delta"]
        assert updates[-1].state["pair"] == "ETH/USD"
        await wait_for(lambda: at_rest(app), DEADLINE)
        prices = await tp.ltp(["eth-usd", "DOGE/MOON"])
        assert prices["ETH/USD"].amount == Decimal("2999.75")
        assert [e.code for e in prices.errors] == ["UNSUPPORTED_PAIR"]


async def test_a_pair_that_stops_trading_is_sent_stale_true_when_it_crosses_stale_after(
    kraken_ws: FakeKrakenWs, kraken: Callable[..., Settings]
) -> None:
    async with streaming_app(kraken(stale_after="300ms")) as app:
        await wait_for(app.container.prices.views, DEADLINE)
        async with sse(app, "/api/v1/ltp/live?pair=BTC/USD&min_interval_ms=50") as reader:
            await wait_for(lambda: reader.events, DEADLINE, message="the snapshot")
            snapshot = reader.data()[0]["data"]
            assert isinstance(snapshot["age_ms"], int)
            assert snapshot["stale"] is (snapshot["age_ms"] > 300)
            await kraken_ws.send_ticker("BTC/USD", last=Decimal("70100.5"))

            def changes() -> list[dict[str, Any]]:
                return [d["changes"] for d in reader.data()[1:]]

            await wait_for(lambda: any("amount" in c for c in changes()), DEADLINE)
            fresh = next(c for c in changes() if "amount" in c)
            assert fresh["stale"] is False
            assert 0 <= fresh["age_ms"] <= 300
            # The exchange goes silent (its heartbeats kept the value current): the hub's timer
            # sends the change when the value crosses 300 ms.
            await kraken_ws.stop()

            def went_stale() -> list[dict[str, Any]]:
                return [c for c in changes() if c["stale"] and "amount" not in c]

            await wait_for(went_stale, DEADLINE, message="the stale delta")
            assert set(went_stale()[0]) == {"stale", "age_ms"}
            assert went_stale()[0]["age_ms"] > 300
            # Every message's stale agrees with its own age (both at its ts).
            for body in [snapshot, *changes()]:
                assert body["stale"] is (body["age_ms"] > 300)
