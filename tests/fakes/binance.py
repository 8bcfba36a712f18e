"""Fake Binance spot: combined ``<symbol>@ticker`` streams and REST ``ticker/24hr``.

:class:`FakeBinanceWs` serves ``ws://127.0.0.1:<port>/stream``: a ``SUBSCRIBE`` request is
answered ``{"result":null,"id":n}`` and each subscribed stream gets its current 24 h ticker
(Binance pushes one within a second); :meth:`send_ticker` pushes an update. Frames are the
recorded ``ethusdt@ticker`` frame of
``tests/fixtures/binance/ws_24hrticker_spot_2022-05-29.jsonl`` re-labelled (symbol, ``c``,
``b``, ``a``, ``v``, ``E``); the default value table is that frame (ETHUSDT) plus BTCUSDT with
the values of the recorded REST capture ``rest_ticker_24hr_binanceus_btcusdt_2024-03-13_ccxt``.
Keep-alive is the server's WebSocket ping (the websockets library sends it).

:class:`FakeBinanceRest` answers ``GET /api/v3/ticker/24hr?symbols=[…]`` in the recorded REST
shape from the same table.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from tests.fakes._loopback import LoopbackFake, Request, Send, respond, to_json
from tests.fakes._venue_ws import VenueClient, VenueWsFake

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "binance"
RECORDED_WS = FIXTURES / "ws_24hrticker_spot_2022-05-29.jsonl"
RECORDED_REST = FIXTURES / "rest_ticker_24hr_binanceus_btcusdt_2024-03-13_ccxt.json"

TEMPLATE: dict[str, Any] = json.loads(RECORDED_WS.read_text(encoding="utf-8").splitlines()[0])[
    "data"
]


def recorded_values() -> dict[str, dict[str, Any]]:
    """Symbol -> 24hrTicker data fields, from the recorded WS frame and REST answer."""
    rest = json.loads(RECORDED_REST.read_text(encoding="utf-8"))
    btc = {
        **TEMPLATE,
        "s": rest["symbol"],
        "c": rest["lastPrice"],
        "b": rest["bidPrice"],
        "a": rest["askPrice"],
        "v": rest["volume"],
        "q": rest["quoteVolume"],
        "w": rest["weightedAvgPrice"],
    }
    return {TEMPLATE["s"]: dict(TEMPLATE), "BTCUSDT": btc}


class FakeBinanceWs(VenueWsFake):
    """Binance combined streams on ``ws://127.0.0.1:<port>/stream``."""

    path = "/stream"

    def __init__(
        self,
        values: dict[str, dict[str, Any]] | None = None,
        *,
        update_interval: float | None = None,
    ) -> None:
        super().__init__()
        self.values = recorded_values() if values is None else values
        self.update_interval = update_interval  # Binance re-sends each ticker every second

    def frame(self, symbol: str) -> dict[str, Any]:
        data = {**TEMPLATE, **self.values.get(symbol, {}), "s": symbol}
        data["E"] = int(time.time() * 1000)
        return {"stream": symbol.lower() + "@ticker", "data": data}

    async def send_ticker(
        self,
        symbol: str,
        *,
        last: object,
        volume: object = None,
        bid: object = None,
        ask: object = None,
    ) -> int:
        """An update of ``symbol``'s 24 h ticker to its subscribers."""
        entry = self.values.setdefault(symbol, {**TEMPLATE, "s": symbol})
        for key, value in (("c", last), ("v", volume), ("b", bid), ("a", ask)):
            if value is not None:
                entry[key] = str(value)
        stream = symbol.lower() + "@ticker"
        targets = [c for c in self.clients if stream in c.subscribed]
        return await self.broadcast(json.dumps(self.frame(symbol)), targets)

    async def on_request(self, client: VenueClient, request: dict[str, Any]) -> None:
        req_id = request.get("id")
        if request.get("method") != "SUBSCRIBE" or not isinstance(request.get("params"), list):
            error = {"error": {"code": 2, "msg": "Invalid request"}, "id": req_id}
            await self.send(client, json.dumps(error))
            return
        streams = [s for s in request["params"] if isinstance(s, str)]
        client.subscribed.update(streams)
        await self.send(client, json.dumps({"result": None, "id": req_id}))
        for stream in streams:
            symbol = stream.split("@", 1)[0].upper()
            if symbol in self.values:
                await self.send(client, json.dumps(self.frame(symbol)))
        if self.update_interval is not None and not client.tasks:
            client.tasks.append(asyncio.create_task(self._updates(client, self.update_interval)))

    async def _updates(self, client: VenueClient, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)  # the fake's own pacing, as Binance's 1000 ms
            for stream in sorted(client.subscribed):
                symbol = stream.split("@", 1)[0].upper()
                if symbol in self.values:
                    await self.send(client, json.dumps(self.frame(symbol)))


class FakeBinanceRest(LoopbackFake):
    """``GET /api/v3/ticker/24hr`` from a value table (shared with the WS fake if given)."""

    name = "fake-binance-rest"

    def __init__(self, values: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.values = recorded_values() if values is None else values

    async def handle(self, request: Request, send: Send) -> None:
        if request.path != "/api/v3/ticker/24hr":
            await respond(send, 404, to_json({"code": -1, "msg": "Not found"}))
            return
        raw = request.params.get("symbols")
        symbols = json.loads(raw) if raw else [request.params.get("symbol", "")]
        unknown = [s for s in symbols if s not in self.values]
        if unknown:
            await respond(send, 400, to_json({"code": -1121, "msg": "Invalid symbol."}))
            return
        now = int(time.time() * 1000)
        body = [
            {
                "symbol": s,
                "lastPrice": self.values[s]["c"],
                "bidPrice": self.values[s].get("b"),
                "askPrice": self.values[s].get("a"),
                "volume": self.values[s].get("v"),
                "quoteVolume": self.values[s].get("q"),
                "weightedAvgPrice": self.values[s].get("w"),
                "closeTime": now,
            }
            for s in symbols
        ]
        await respond(send, 200, to_json(body))
