"""A fake Kraken REST API on loopback: a real HTTP server speaking Kraken's wire format.

It answers ``GET /0/public/Ticker?pair=…`` from recorded real Ticker responses
(``tests/fixtures/kraken/rest/``), and can be told to misbehave the ways Kraken does: HTTP
errors with ``Retry-After``, Kraken's ``error`` array, slow answers. It is a tiny ASGI app
served by uvicorn in a background task::

    async with FakeKrakenRest() as fake:
        fake.fail_with(503, times=1)
        client = KrakenRestClient(base_url=fake.base_url, ...)

Like Kraken, it accepts a pair's REST key (``XXBTZUSD``) or its altname (``XBTUSD``) in
``?pair=`` and answers with the REST key; an unknown pair gives
``{"error":["EQuery:Unknown asset pair"],"result":{}}`` (with the known pairs' entries too
when some of the requested pairs are known, as in the recorded 16-pair response).

It also answers ``GET /0/public/OHLC?pair=…&interval=…&since=…`` in Kraken's OHLC format
(``{"error":[],"result":{"XXBTZUSD":[[time, open, high, low, close, vwap, volume, count],
…],"last":…}}``, at most 720 candles, those after ``since``). The candles are built from
recorded values: the hourly BTC/USD prices of CoinGecko's recorded ``market_chart``
(``tests/fixtures/coingecko/market_chart_bitcoin_usd_7d_hourly_2023-10-10.json``, 2023-10-03
19:00 → 2023-10-10 18:41 UTC). Each recorded price falls into the candle of the requested
width that contains it; open/high/low/close/vwap are the recorded prices (as their JSON
digits), so a 1-minute request gets one candle per recorded hour, as if nothing traded in
between. The recording has no per-candle volume: ``volume`` is ``"0"`` and ``count`` is the
number of recorded prices in the candle. :meth:`FakeKrakenRest.set_ohlc` replaces the data.

And ``GET /0/public/Trades?pair=…&since=…&count=…`` as Kraken answers it today
(``{"error":[],"result":{"XXBTZUSD":[[price, volume, time, "b"|"s", "m"|"l", misc,
trade_id], …],"last":"<nanoseconds>"}}``, oldest first, at most ``count`` (≤ 1000) trades
from ``since``, which is unix seconds or the nanosecond ``last`` of a previous page). The
trades are those the test recorded with :meth:`FakeKrakenRest.record_trade` (a market whose
trades also go out on the fake WebSocket feed), so the backfill sees the same market.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from tests.fakes._loopback import (
    Fault,
    Receive,
    Scope,
    Send,
    respond,
    retry_after,
    serve_on_loopback,
    stop_serving,
    to_json,
)
from tokenpulse.data import data_path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kraken" / "rest"
RECORDED_FILES = (
    "rest_ticker_16pairs_2026-02-14_a.json",
    "rest_ticker_xbtusdt_2024-03-13_ccxt.json",
)
UNKNOWN_PAIR = "EQuery:Unknown asset pair"
RECORDED_CHART = (
    Path(__file__).resolve().parent.parent
    / "fixtures"
    / "coingecko"
    / "market_chart_bitcoin_usd_7d_hourly_2023-10-10.json"
)
OHLC_MAX_CANDLES = 720


def load_recorded_tickers() -> dict[str, dict[str, Any]]:
    """REST key -> recorded Ticker entry, from the recorded responses (later files win)."""
    table: dict[str, dict[str, Any]] = {}
    for name in RECORDED_FILES:
        body = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
        table.update(body["result"])
    return table


def load_recorded_ohlc_prices() -> dict[str, list[tuple[int, str]]]:
    """REST key -> recorded (unix seconds, price digits), from CoinGecko's BTC chart."""
    body = json.loads(RECORDED_CHART.read_text(encoding="utf-8"))
    return {"XXBTZUSD": [(int(ms) // 1000, repr(price)) for ms, price in body["prices"]]}


def _altnames() -> dict[str, str]:
    """altname -> REST key, from Kraken's recorded AssetPairs list."""
    body = json.loads(data_path("kraken_assetpairs.json").read_text(encoding="utf-8"))
    return {
        info["altname"].upper(): key.upper()
        for key, info in body["result"].items()
        if isinstance(info, dict) and "altname" in info
    }


class FakeKrakenRest:
    """Kraken's public REST Ticker endpoint on ``127.0.0.1`` with controllable faults."""

    def __init__(self) -> None:
        self.tickers = load_recorded_tickers()
        self._aliases = _altnames()
        self.ohlc_prices = load_recorded_ohlc_prices()
        self.ohlc_requests: list[str] = []  # query strings of OHLC requests, in arrival order
        self.trades: dict[str, list[tuple[float, str, str]]] = {}  # key -> (time, price, vol)
        self.trades_requests: list[str] = []  # query strings of Trades requests
        self.requests: list[str] = []  # query strings of Ticker requests, in arrival order
        self.request_times: list[float] = []  # time.monotonic() at arrival
        self._failure: Fault | None = None
        self._kraken_error: Fault | None = None  # 200 with Kraken's error array as its body
        self._raw: Fault | None = None
        self._delay = 0.0
        self._stopping = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.base_url = ""

    # -- control ---------------------------------------------------------------------------

    def set_last(self, key: str, price: str) -> None:
        """Make the next answers report ``price`` (a decimal string) as ``c[0]`` of ``key``."""
        rest_key = self._rest_key(key)
        if rest_key not in self.tickers:
            raise KeyError(key)
        self.tickers[rest_key]["c"][0] = price

    def set_ohlc(self, key: str, prices: list[tuple[int, str]]) -> None:
        """Serve OHLC candles of ``key`` built from ``(unix seconds, price digits)`` pairs."""
        self.ohlc_prices[self._rest_key(key)] = sorted(prices)

    def record_trade(self, key: str, price: str, at: float, volume: str = "0.01000000") -> None:
        """A trade of ``key`` at unix time ``at`` (the Trades endpoint serves it from now)."""
        self.trades.setdefault(self._rest_key(key), []).append((at, price, volume))

    def fail_with(
        self, status: int, times: int | None = 1, retry_after: float | None = None
    ) -> None:
        """Answer the next ``times`` Ticker requests (None: all) with HTTP ``status``."""
        self._failure = Fault(status, times, retry_after)

    def kraken_error(self, errors: list[str], times: int | None = 1) -> None:
        """Answer the next ``times`` requests (None: all) with 200 and Kraken's error array."""
        self._kraken_error = Fault(200, times, body=to_json({"error": list(errors), "result": {}}))

    def raw_response(self, body: bytes, *, status: int = 200, times: int | None = 1) -> None:
        """Answer the next ``times`` requests (None: all) with ``body`` as it is (e.g. HTML)."""
        self._raw = Fault(status, times, body=body)

    def delay(self, seconds: float) -> None:
        """Wait ``seconds`` before every answer (0 to stop)."""
        self._delay = seconds

    def reset(self) -> None:
        """Back to healthy, fast answers (the request log is kept)."""
        self._failure = None
        self._kraken_error = None
        self._raw = None
        self._delay = 0.0

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> FakeKrakenRest:
        self._server, self._task, self.base_url = await serve_on_loopback(
            self, "fake Kraken REST server"
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stopping.set()
        await stop_serving(self._server, self._task)

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/0/public/OHLC":
            query = scope["query_string"].decode("latin-1")
            self.ohlc_requests.append(query)
            await respond(send, 200, to_json(self._ohlc_answer(query)))
            return
        if scope["method"] == "GET" and scope["path"] == "/0/public/Trades":
            query = scope["query_string"].decode("latin-1")
            self.trades_requests.append(query)
            await respond(send, 200, to_json(self._trades_answer(query)))
            return
        if scope["method"] != "GET" or scope["path"] != "/0/public/Ticker":
            await respond(send, 404, b'{"error":["EGeneral:Unknown method"]}')
            return
        query = scope["query_string"].decode("latin-1")
        self.requests.append(query)
        self.request_times.append(time.monotonic())
        if self._delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._delay)

        failure = self._failure
        if failure is not None and failure.take():
            body = f"HTTP {failure.status} from the fake".encode()
            await respond(
                send, failure.status, body, retry_after(failure), content_type=b"text/plain"
            )
            return
        raw = self._raw
        if raw is not None and raw.take():
            await respond(send, raw.status, raw.body or b"", content_type=b"text/html")
            return
        error = self._kraken_error
        if error is not None and error.take():
            await respond(send, 200, error.body or b"")
            return
        await respond(send, 200, to_json(self._answer(query)))

    def _answer(self, query: str) -> dict[str, Any]:
        values = parse_qs(query).get("pair")
        if not values:
            return {"error": [], "result": copy.deepcopy(self.tickers)}
        result: dict[str, Any] = {}
        unknown = False
        for name in _split(values[-1]):
            key = self._rest_key(name)
            if key in self.tickers:
                result[key] = copy.deepcopy(self.tickers[key])
            else:
                unknown = True
        return {"error": [UNKNOWN_PAIR] if unknown else [], "result": result}

    def _ohlc_answer(self, query: str) -> dict[str, Any]:
        values = parse_qs(query)
        names = list(_split(values.get("pair", [""])[-1]))
        if len(names) != 1:
            return {"error": ["EGeneral:Invalid arguments"], "result": {}}
        key = self._rest_key(names[0])
        if key not in self.tickers and key not in self.ohlc_prices:
            return {"error": [UNKNOWN_PAIR], "result": {}}
        width = int(values.get("interval", ["1"])[-1]) * 60
        since = int(values.get("since", ["0"])[-1])
        candles: dict[int, list[str]] = {}
        for stamp, price in self.ohlc_prices.get(key, []):
            candles.setdefault(stamp - stamp % width, []).append(price)
        rows = [
            [
                start,
                prices[0],
                max(prices, key=float),
                min(prices, key=float),
                prices[-1],
                prices[-1],
                "0",
                len(prices),
            ]
            for start, prices in sorted(candles.items())
            if start > since
        ][-OHLC_MAX_CANDLES:]
        last = rows[-1][0] if rows else since
        return {"error": [], "result": {key: rows, "last": last}}

    def _trades_answer(self, query: str) -> dict[str, Any]:
        values = parse_qs(query)
        names = list(_split(values.get("pair", [""])[-1]))
        if len(names) != 1:
            return {"error": ["EGeneral:Invalid arguments"], "result": {}}
        key = self._rest_key(names[0])
        if key not in self.tickers and key not in self.trades:
            return {"error": [UNKNOWN_PAIR], "result": {}}
        since = int(values.get("since", ["0"])[-1])
        count = int(values.get("count", ["1000"])[-1])
        if not 1 <= count <= 1000:
            return {"error": ["EGeneral:Invalid arguments:count"], "result": {}}
        if since > 10**12:  # a previous page's nanosecond cursor: what came after it
            after = [t for t in sorted(self.trades.get(key, [])) if t[0] * 1e9 > since]
        else:  # a unix timestamp: from that second on
            after = [t for t in sorted(self.trades.get(key, [])) if t[0] >= since]
        page = after[:count]
        rows = [
            [price, volume, at, "b", "m", "", 1_000_000 + index]
            for index, (at, price, volume) in enumerate(page)
        ]
        last = str(int(page[-1][0] * 1e9)) if page else str(since)
        return {"error": [], "result": {key: rows, "last": last}}

    def _rest_key(self, name: str) -> str:
        upper = name.strip().upper()
        return upper if upper in self.tickers else self._aliases.get(upper, upper)


def _split(value: str) -> Iterator[str]:
    return (part for part in value.split(",") if part.strip())
