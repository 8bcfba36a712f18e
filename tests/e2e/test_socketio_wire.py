"""Socket.IO delivery by pre-framed WebSocket writes (``api/streams/wire.py``), end to end:
the frames built once reach python-socketio's client, a WebSocket client that negotiated
permessage-deflate, and a long-polling client (which keeps Engine.IO's queue), all in order
and complete; a WebSocket client that stops reading is cut off after the send timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import socketio
from websockets.asyncio.client import connect as ws_connect

from tests.e2e._streams import streaming_app
from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.helpers import wait_for
from tests.server import app_settings
from tokenpulse.api.streams import StreamLimits
from tokenpulse.api.streams.wire import text_frame
from tokenpulse.settings import Settings

DEADLINE = 10.0
UPDATES = 200


@pytest.fixture
def kraken(kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest) -> Callable[..., Settings]:
    def settings(**overrides: Any) -> Settings:
        return app_settings(
            kraken_ws_url=kraken_ws.url,
            kraken_rest_url=kraken_rest.base_url,
            kraken_fallback_timeout="30s",
            **overrides,
        )

    return settings


def chained(messages: list[dict[str, Any]]) -> bool:
    """Every delta applies to the state the previous message left (nothing lost)."""
    return all(
        b["type"] == "snapshot" or b["base_seq"] == a["seq"]
        for a, b in itertools.pairwise(messages)
    )


def amounts(messages: list[dict[str, Any]]) -> list[Any]:
    """The amounts this test published (the fake Kraken's own prices are far above them)."""
    bodies = (m.get("changes", m.get("data", {})) for m in messages)
    return [body["amount"] for body in bodies if body.get("amount", UPDATES + 1) <= UPDATES]


def test_text_frames_have_the_three_length_forms_of_rfc_6455() -> None:
    assert text_frame(b"42") == b"\x81\x0242"
    assert text_frame(b"x" * 125)[:2] == b"\x81\x7d"
    assert text_frame(b"x" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert text_frame(b"x" * 65535)[:4] == b"\x81\x7e\xff\xff"
    big = text_frame(b"x" * 65536)
    assert big[:10] == b"\x81\x7f" + (65536).to_bytes(8, "big")
    assert len(big) == 10 + 65536


class RawEngineIO:
    """A Socket.IO client on a bare WebSocket (``websockets``, permessage-deflate offered)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.compressed = "permessage-deflate" in (
            ws.response.headers.get("Sec-WebSocket-Extensions") or ""
        )

    async def open(self, subscribe: dict[str, Any]) -> None:
        assert (await self.ws.recv()).startswith("0{")
        await self.ws.send("40")
        assert (await self.ws.recv()).startswith("40")
        await self.ws.send("421" + json.dumps(["subscribe_pair", subscribe]))

    async def read(self) -> None:
        async for frame in self.ws:
            if frame == "2":
                await self.ws.send("3")
            elif frame.startswith("42"):
                event, message = json.loads(frame[2:])
                if event == "ltp_update":
                    self.messages.append(message)


async def test_every_transport_gets_every_update_in_order_from_frames_built_once(
    kraken: Callable[..., Settings],
) -> None:
    limits = StreamLimits(min_interval_ms=0)
    async with (
        streaming_app(kraken(), limits=limits) as app,
        httpx.AsyncClient(timeout=5) as http,
        ws_connect(
            app.base_url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        ) as ws,
    ):
        hub, delivery = app.streams.hub, app.streams.gateway.delivery
        hub.publish_pair("BTC/USD", {"pair": "BTC/USD", "amount": 0})
        official = socketio.AsyncClient(reconnection=False)
        got: list[dict[str, Any]] = []
        official.on("ltp_update", got.append)
        await official.connect(app.base_url, transports=["websocket"], wait_timeout=5)
        raw = RawEngineIO(ws)
        await raw.open({"pair": "BTC/USD", "min_interval_ms": 0})
        reader = asyncio.create_task(raw.read())
        polled: list[dict[str, Any]] = []
        polling_url = app.base_url + "/socket.io/?EIO=4&transport=polling"
        try:
            ack = await official.call("subscribe_pair", {"pair": "BTC/USD", "min_interval_ms": 0})
            assert ack["ok"] is True
            opened = (await http.get(polling_url)).text
            polling_url += "&sid=" + json.loads(opened[1:])["sid"]
            await http.post(polling_url, content="40")
            await http.post(
                polling_url, content="421" + json.dumps(["subscribe_pair", {"pair": "BTC/USD"}])
            )

            async def poll() -> None:
                while True:
                    body = (await http.get(polling_url)).text
                    for packet in body.split("\x1e"):
                        if packet.startswith("42"):
                            polled.append(json.loads(packet[2:])[1])
                        elif packet == "2":
                            await http.post(polling_url, content="3")

            poller = asyncio.create_task(poll())
            await wait_for(lambda: got and raw.messages and polled, DEADLINE, message="snapshots")
            writes_before = delivery.raw_writes
            for n in range(1, UPDATES + 1):
                hub.publish_pair("BTC/USD", {"pair": "BTC/USD", "amount": n})
                await asyncio.sleep(0.002)
            await wait_for(lambda: amounts(got)[-1:] == [UPDATES], DEADLINE)
            await wait_for(lambda: amounts(raw.messages)[-1:] == [UPDATES], DEADLINE)
            await wait_for(lambda: amounts(polled)[-1:] == [UPDATES], DEADLINE)
            poller.cancel()
        finally:
            reader.cancel()
            await official.disconnect()
        for messages in (got, raw.messages, polled):
            assert chained(messages)  # a client that fell behind gets merged deltas, none lost
            seen = amounts(messages)
            assert seen == sorted(set(seen))  # in order, never twice
            assert seen[-1] == UPDATES
        assert raw.compressed  # uncompressed frames on a connection that negotiated deflate
        # The WebSocket clients were written to directly: one write per message and client,
        # except where Engine.IO had a packet of its own queued (a ping: its queue, in order).
        delivered = len(amounts(got)) + len(amounts(raw.messages)) - 2  # less the snapshots
        assert delivery.raw_writes - writes_before >= delivered // 2


async def test_a_websocket_client_that_stops_reading_is_cut_off_after_the_send_timeout(
    kraken: Callable[..., Settings],
) -> None:
    limits = StreamLimits(min_interval_ms=0)
    async with (
        streaming_app(kraken(), limits=limits, send_timeout=0.5) as app,
        ws_connect(
            app.base_url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
            max_queue=1,  # the client stops reading from its socket once one message waits
            max_size=None,
        ) as ws,
    ):
        hub, delivery = app.streams.hub, app.streams.gateway.delivery
        hub.publish_pair("BTC/USD", {"pair": "BTC/USD", "amount": 0})
        client = RawEngineIO(ws)
        await client.open({"pair": "BTC/USD", "min_interval_ms": 0})
        await wait_for(lambda: hub.stats().subscriptions["socketio"] == 1, DEADLINE)
        pad = "x" * 200_000  # large messages fill the socket buffers quickly
        n = 0

        def gone() -> bool:
            nonlocal n
            n += 1
            hub.publish_pair("BTC/USD", {"pair": "BTC/USD", "amount": n, "pad": f"{n}{pad}"})
            return hub.stats().connections["socketio"] == 0

        took = await wait_for(gone, DEADLINE * 2, message="the silent client to be cut off")
        assert took >= 0.5
        assert delivery.raw_writes > 0
        slow = app.container.metrics.registry.get_sample_value(
            "tokenpulse_stream_slow_client_disconnects_total", {"transport": "socketio"}
        )
        assert slow == 1  # cut off by the dispatcher, not by a ping timeout
        assert app.streams.gateway.stats()["draining"] == 0
        assert hub.stats().pending == 0
