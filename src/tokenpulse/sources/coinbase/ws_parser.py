"""Coinbase Exchange WebSocket feed frames -> typed messages and tickers. Sans-I/O.

Wire shapes (docs.cdp.coinbase.com, Exchange WebSocket channels; the ticker frames of
``tests/fixtures/coinbase`` were recorded from ``wss://ws-feed.pro.coinbase.com``)::

    -> {"type":"subscribe","product_ids":["BTC-USD"],"channels":["ticker","heartbeat"]}
    <- {"type":"subscriptions","channels":[{"name":"ticker","product_ids":["BTC-USD"]}, …]}
    <- {"type":"ticker","sequence":333938798,"product_id":"BAND-GBP","price":"14.7775",
        "open_24h":…,"volume_24h":"94381.28000000","low_24h":…,"high_24h":…,"volume_30d":…,
        "best_bid":"14.7550","best_ask":"14.8060","side":"buy",
        "time":"2021-04-17T16:43:30.244075Z","trade_id":881613,"last_size":"0.04"}
    <- {"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD",
        "time":"2014-11-07T08:19:28.464459Z"}
    <- {"type":"error","message":"Failed to subscribe","reason":"BTC-XYZ is not a valid product"}

A ticker is sent on every trade (the first one after subscribing is the last trade so far),
``price`` is that trade's price. Other channels' messages (``l2update``, ``match``, …) are
ignored, not errors: one connection may carry channels we did not ask for.
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
    FeedAlive,
    FeedFrame,
    amount,
    fail,
    json_type,
    load_frame,
    number,
    required,
    rfc3339,
)

__all__ = ["PARSE_ERROR_KINDS", "parse_coinbase_ws", "subscribe_message"]

PARSE_ERROR_KINDS: Final = frozenset(
    {
        "invalid_json",
        "not_an_object",
        "unknown_message",  # no "type"
        "missing_field",
        "bad_field",
        "bad_number",
        "unknown_symbol",
        "bad_timestamp",
    }
)

#: Message types of channels we never subscribe but a shared connection may carry.
_IGNORED_TYPES: Final = frozenset(
    {
        "l2update",
        "snapshot",
        "match",
        "last_match",
        "received",
        "open",
        "done",
        "change",
        "activate",
        "status",
    }
)


def subscribe_message(product_ids: Sequence[str]) -> str:
    """The subscribe request for the ``ticker`` and ``heartbeat`` channels of ``product_ids``."""
    return json.dumps(
        {
            "type": "subscribe",
            "product_ids": list(product_ids),
            "channels": ["ticker", "heartbeat"],
        },
        separators=(",", ":"),
    )


def parse_coinbase_ws(
    raw: str | bytes, *, source: str, received_at: datetime, products: Mapping[str, Pair]
) -> FeedFrame:
    """Parse one frame; ``products`` maps the product ids we subscribed to their pairs.

    Raises ParseError when the frame is malformed as a whole or is a ticker we cannot read.
    """
    frame = load_frame(raw)
    if not isinstance(frame, dict):
        fail("not_an_object", f"expected a JSON object, got {json_type(frame)}")
    kind = frame.get("type")
    if kind is None:
        fail("unknown_message", "object has no 'type'")
    if not isinstance(kind, str):
        fail("bad_field", f"'type' must be a string, got {json_type(kind)}")
    if kind == "ticker":
        ticker = _ticker(frame, source=source, received_at=received_at, products=products)
        sequence = frame.get("sequence")
        if not isinstance(sequence, int) or isinstance(sequence, bool):
            sequence = None
        return FeedFrame((TickerUpdated(ticker),), sequence=sequence)
    if kind == "heartbeat":
        return FeedFrame((FeedAlive(),))
    if kind == "subscriptions":
        return FeedFrame((FeedAck(None, _ticker_products(frame)),))
    if kind == "error":
        message = frame.get("message")
        reason = frame.get("reason")
        text = " ".join(str(part)[:200] for part in (message, reason) if part) or "error"
        return FeedFrame((FeedAck(None, (), error=text),))
    if kind in _IGNORED_TYPES:
        return FeedFrame(ignored=True)
    fail("unknown_message", f"type {kind[:50]!r}")


def _ticker(
    frame: Mapping[str, Any], *, source: str, received_at: datetime, products: Mapping[str, Pair]
) -> Ticker:
    product = required(frame, "product_id")
    if not isinstance(product, str):
        fail("bad_field", f"'product_id' must be a string, got {json_type(product)}")
    pair = products.get(product)
    if pair is None:
        fail("unknown_symbol", f"product {product[:50]!r} was not subscribed")
    last = number("price", required(frame, "price"))
    if last <= 0:
        fail("bad_number", f"price {last} is not positive")
    return Ticker(
        pair=pair,
        last=last,
        source=source,
        received_at=received_at,
        as_of=rfc3339(frame, "time"),
        bid=amount(frame, "best_bid"),
        ask=amount(frame, "best_ask"),
        volume_24h=amount(frame, "volume_24h"),
    )


def _ticker_products(frame: Mapping[str, Any]) -> tuple[str, ...]:
    channels = required(frame, "channels")
    if not isinstance(channels, list):
        fail("bad_field", f"'channels' must be an array, got {json_type(channels)}")
    for channel in channels:
        if isinstance(channel, dict) and channel.get("name") == "ticker":
            ids = channel.get("product_ids")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                fail("bad_field", "ticker 'product_ids' must be an array of strings")
            return tuple(ids)
    return ()
