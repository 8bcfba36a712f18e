"""Binance spot combined-stream frames -> typed messages and tickers. Sans-I/O.

We connect to ``wss://stream.binance.com:9443/stream`` and subscribe ``<symbol>@ticker``
streams (the 24 h rolling-window ticker) with ``SUBSCRIBE`` requests. Wire shapes (Binance
spot WebSocket Streams docs; the ticker frame of ``tests/fixtures/binance`` is a capture)::

    -> {"method":"SUBSCRIBE","params":["btcusdt@ticker","ethusdt@ticker"],"id":1}
    <- {"result":null,"id":1}
    <- {"error":{"code":2,"msg":"Invalid request: unknown variable"},"id":1}
    <- {"stream":"ethusdt@ticker","data":{"e":"24hrTicker","E":1653812650349,"s":"ETHUSDT",
        "c":"1792.84000000","b":"1792.83000000","a":"1792.84000000",
        "v":"471703.53110000","q":"840180761.51358100","w":"1781.16275609", …}}

``c`` is the last price, ``b``/``a`` best bid/ask, ``v`` the base-asset volume (our
``volume_24h``: the same unit on every venue, which the aggregate weights by), ``w`` the
24 h weighted average price, ``E`` the event time in epoch milliseconds. Keep-alive is the
WebSocket-level ping/pong (the server pings, the client library answers); there is no
application heartbeat. Other streams (``@bookTicker``, ``@depth``, …) are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from tokenpulse.domain.events import TickerUpdated
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.sources._feed import (
    FeedAck,
    FeedFrame,
    amount,
    epoch_ms,
    fail,
    json_type,
    load_frame,
    number,
    required,
)

__all__ = ["PARSE_ERROR_KINDS", "parse_binance_ws", "stream_name", "subscribe_message"]

PARSE_ERROR_KINDS: Final = frozenset(
    {
        "invalid_json",
        "not_an_object",
        "unknown_message",  # neither a stream frame nor an answer to a request
        "unknown_event",  # a ticker stream whose data is not a 24hrTicker
        "missing_field",
        "bad_field",
        "bad_number",
        "unknown_symbol",
        "bad_timestamp",
    }
)

_TICKER_SUFFIX: Final = "@ticker"


def stream_name(symbol: str) -> str:
    """The ticker stream of a Binance symbol: ``BTCUSDT`` -> ``btcusdt@ticker``."""
    return symbol.lower() + _TICKER_SUFFIX


def subscribe_message(symbols: Sequence[str], req_id: int) -> str:
    """A ``SUBSCRIBE`` request for the ticker streams of ``symbols`` (``BTCUSDT``, …)."""
    return json.dumps(
        {"method": "SUBSCRIBE", "params": [stream_name(s) for s in symbols], "id": req_id},
        separators=(",", ":"),
    )


def parse_binance_ws(
    raw: str | bytes, *, source: str, received_at: datetime, symbols: Mapping[str, Pair]
) -> FeedFrame:
    """Parse one frame; ``symbols`` maps the upper-case Binance symbols we subscribed to pairs.

    Raises ParseError when the frame is malformed as a whole or is a ticker we cannot read.
    """
    frame = load_frame(raw)
    if not isinstance(frame, dict):
        fail("not_an_object", f"expected a JSON object, got {json_type(frame)}")
    if "stream" in frame:
        stream = frame["stream"]
        if not isinstance(stream, str):
            fail("bad_field", f"'stream' must be a string, got {json_type(stream)}")
        if not stream.endswith(_TICKER_SUFFIX) or stream.startswith("!"):
            return FeedFrame(ignored=True)  # bookTicker, depth, the all-market arrays
        data = required(frame, "data")
        ticker = _ticker(data, source=source, received_at=received_at, symbols=symbols)
        return FeedFrame((TickerUpdated(ticker),))
    if "id" in frame and ("result" in frame or "error" in frame):
        return FeedFrame((_answer(frame),))
    fail("unknown_message", "object is neither a stream frame nor an answer")


def _answer(frame: Mapping[str, Any]) -> FeedAck:
    req_id = frame.get("id")
    if not isinstance(req_id, int) or isinstance(req_id, bool):
        req_id = None
    error = frame.get("error")
    if error is None:
        return FeedAck(req_id, ())
    if isinstance(error, dict):
        text = f"{error.get('code')}: {str(error.get('msg'))[:200]}"
    else:
        text = str(error)[:200]
    return FeedAck(req_id, (), error=text)


def _ticker(
    data: object, *, source: str, received_at: datetime, symbols: Mapping[str, Pair]
) -> Ticker:
    if not isinstance(data, dict):
        fail("not_an_object", f"'data' is {json_type(data)}, expected an object")
    event = data.get("e")
    if event != "24hrTicker":
        fail("unknown_event", f"event {str(event)[:50]!r} is not a 24hrTicker")
    symbol = required(data, "s")
    if not isinstance(symbol, str):
        fail("bad_field", f"'s' must be a string, got {json_type(symbol)}")
    pair = symbols.get(symbol.upper())
    if pair is None:
        fail("unknown_symbol", f"symbol {symbol[:50]!r} was not subscribed")
    last = number("c", required(data, "c"))
    if last <= 0:
        fail("bad_number", f"last price c={last} is not positive")
    return Ticker(
        pair=pair,
        last=last,
        source=source,
        received_at=received_at,
        as_of=epoch_ms(data, "E"),
        bid=amount(data, "b"),
        ask=amount(data, "a"),
        volume_24h=amount(data, "v"),
        vwap=amount(data, "w"),
    )
