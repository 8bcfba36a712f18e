"""Fake Coinbase Exchange: the WebSocket feed (``ticker``/``heartbeat``) and REST ticker.

:class:`FakeCoinbaseWs` does what ``wss://ws-feed.exchange.coinbase.com`` does for a
``subscribe`` to the ``ticker`` and ``heartbeat`` channels: a ``subscriptions`` ack naming
the products, then one ``ticker`` per product (the last trade so far), and a heartbeat per
product every ``heartbeat_interval`` seconds when asked. A product it has no value for makes
it answer ``{"type":"error","message":"Failed to subscribe","reason":"… is not a valid
product"}`` and subscribe nothing, as Coinbase does.

Frames are built from the recorded ticker frames in
``tests/fixtures/coinbase/ws_exchange_ticker_cryptofeed_2021-04-17.txt``: the default value
table is the last recorded ticker of each of its 10 products, and :meth:`send_ticker`
re-labels a recorded frame (product, price, bid, ask, volume, time, sequence) for any
product. :class:`FakeCoinbaseRest` answers ``GET /products/{id}/ticker`` in the shape of the
recorded REST capture, from the same value table.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.fakes._loopback import LoopbackFake, Request, Send, respond, to_json
from tests.fakes._venue_ws import VenueClient, VenueWsFake

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "coinbase"
RECORDED_WS = FIXTURES / "ws_exchange_ticker_cryptofeed_2021-04-17.txt"


def recorded_frames() -> list[dict[str, Any]]:
    """Every received frame of the recording, in order (decoded, numbers as strings)."""
    frames = []
    for line in RECORDED_WS.read_text(encoding="utf-8").splitlines():
        head, sep, body = line.partition(": ")
        if sep and " " not in head:  # "<unix_ts>: <json>" is a received frame
            frames.append(json.loads(body))
    return frames


def recorded_tickers() -> dict[str, dict[str, Any]]:
    """Product id -> its last recorded ``ticker`` frame."""
    return {f["product_id"]: f for f in recorded_frames() if f.get("type") == "ticker"}


TEMPLATE = next(iter(recorded_tickers().values()))


def coinbase_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeCoinbaseWs(VenueWsFake):
    """The Coinbase Exchange feed on ``ws://127.0.0.1:<port>/``."""

    def __init__(
        self,
        values: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        heartbeat_interval: float | None = None,
    ) -> None:
        super().__init__()
        source = recorded_tickers() if values is None else values
        self.values: dict[str, dict[str, Any]] = {k: dict(v) for k, v in source.items()}
        self.heartbeat_interval = heartbeat_interval
        self._sequence = itertools.count(int(TEMPLATE["sequence"]) + 1)

    def frame(self, product: str, **fields: Any) -> dict[str, Any]:
        """A ticker frame for ``product``: a recorded frame with ``fields`` replaced."""
        base = {**TEMPLATE, **self.values.get(product, {}), "product_id": product}
        for key, value in fields.items():
            if value is not None:
                base[key] = str(value)
        base["sequence"] = next(self._sequence)
        base.setdefault("time", coinbase_time(datetime.now(UTC)))
        return base

    async def send_ticker(
        self,
        product: str,
        *,
        price: object,
        best_bid: object = None,
        best_ask: object = None,
        volume_24h: object = None,
    ) -> int:
        """A trade on ``product``: update the table, send a ticker to its subscribers."""
        frame = self.frame(
            product,
            price=price,
            best_bid=best_bid,
            best_ask=best_ask,
            volume_24h=volume_24h,
            time=coinbase_time(datetime.now(UTC)),
        )
        self.values[product] = frame
        targets = [c for c in self.clients if product in c.subscribed]
        return await self.broadcast(json.dumps(frame), targets)

    async def on_request(self, client: VenueClient, request: dict[str, Any]) -> None:
        if request.get("type") != "subscribe":
            return
        products = [p for p in request.get("product_ids") or [] if isinstance(p, str)]
        unknown = [p for p in products if p not in self.values]
        if unknown:
            error = {
                "type": "error",
                "message": "Failed to subscribe",
                "reason": f"{unknown[0]} is not a valid product",
            }
            await self.send(client, json.dumps(error))
            return
        client.subscribed.update(products)
        channels = request.get("channels") or []
        ack = {
            "type": "subscriptions",
            "channels": [
                {"name": name, "product_ids": sorted(client.subscribed)}
                for name in channels
                if isinstance(name, str)
            ],
        }
        await self.send(client, json.dumps(ack))
        if "ticker" in channels:
            for product in products:
                await self.send(client, json.dumps(self.frame(product)))
        if "heartbeat" in channels and self.heartbeat_interval is not None and not client.tasks:
            client.tasks.append(asyncio.create_task(self._heartbeats(client)))

    async def _heartbeats(self, client: VenueClient) -> None:
        assert self.heartbeat_interval is not None
        while True:
            await asyncio.sleep(self.heartbeat_interval)  # the fake's own pacing
            for product in sorted(client.subscribed):
                beat = {
                    "type": "heartbeat",
                    "sequence": next(self._sequence),
                    "last_trade_id": 0,
                    "product_id": product,
                    "time": coinbase_time(datetime.now(UTC)),
                }
                await self.send(client, json.dumps(beat))


class FakeCoinbaseRest(LoopbackFake):
    """``GET /products/{id}/ticker`` from a value table (shared with the WS fake if given)."""

    name = "fake-coinbase-rest"

    def __init__(self, values: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.values = recorded_tickers() if values is None else values

    async def handle(self, request: Request, send: Send) -> None:
        parts = request.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "products" or parts[2] != "ticker":
            await respond(send, 404, to_json({"message": "NotFound"}))
            return
        value = self.values.get(parts[1])
        if value is None:
            await respond(send, 404, to_json({"message": "NotFound"}))
            return
        body = {
            "ask": value.get("best_ask"),
            "bid": value.get("best_bid"),
            "volume": value.get("volume_24h"),
            "trade_id": value.get("trade_id", 1),
            "price": value["price"],
            "size": value.get("last_size", "0"),
            "time": value.get("time"),
        }
        await respond(send, 200, to_json(body))
