"""Stream keys and the bus side of streaming: what producers publish and on which topic.

Two kinds of stream key: ``pair:BTC/USD`` (last traded price, event ``ltp_update``) and
``token:<id>`` (token metrics, event ``token_update``). Producers publish on the
:class:`~tokenpulse.bus.base.EventBus` — topic ``ltp`` with the ticker's JSON, topic
``tokens`` with the token's JSON including its ``id`` — and every instance's
:class:`~tokenpulse.api.streams.hub.StreamHub` subscribes to both, so with the Redis bus a
client on any instance sees every update.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from tokenpulse.bus.base import EventBus
from tokenpulse.domain.ticker import Ticker

LTP_TOPIC = "ltp"
TOKENS_TOPIC = "tokens"

PAIR_PREFIX = "pair:"
TOKEN_PREFIX = "token:"  # noqa: S105 (a stream key prefix, not a secret)
LTP_EVENT = "ltp_update"
TOKEN_EVENT = "token_update"  # noqa: S105 (an event name)
BULK_EVENT = "bulk_update"

#: Stream key prefix -> (Socket.IO/SSE event name, the field whose moves drive the adaptive rate)
KINDS: Mapping[str, tuple[str, str]] = {
    PAIR_PREFIX: (LTP_EVENT, "amount"),
    TOKEN_PREFIX: (TOKEN_EVENT, "price_usd"),
}

TokenPublisher = Callable[[str, Mapping[str, Any]], Awaitable[None]]


def pair_key(pair: str) -> str:
    """The stream key of a canonical pair (``BTC/USD`` -> ``pair:BTC/USD``)."""
    return PAIR_PREFIX + pair


def token_key(token_id: str) -> str:
    """The stream key of a token id (``bitcoin`` -> ``token:bitcoin``)."""
    return TOKEN_PREFIX + token_id


def split_key(key: str) -> tuple[str, str]:
    """``pair:BTC/USD`` -> (``pair:``, ``BTC/USD``); raises ValueError for an unknown kind."""
    prefix, sep, ident = key.partition(":")
    if not sep or prefix + ":" not in KINDS or not ident:
        raise ValueError(f"not a stream key: {key!r}")
    return prefix + ":", ident


def make_ltp_publisher(bus: EventBus) -> Callable[[Ticker], Awaitable[None]]:
    """A :meth:`PriceService.add_publisher` callback: every accepted ticker onto ``ltp``."""

    async def publish_ticker(ticker: Ticker) -> None:
        await bus.publish(LTP_TOPIC, orjson.dumps(ticker.to_json()))

    return publish_ticker


def make_token_publisher(bus: EventBus) -> TokenPublisher:
    """For the token service: ``await publish(token_id, snapshot_json)`` onto ``tokens``.

    ``data`` is the token's JSON object (``snapshot_to_json``); its ``id`` is set to
    ``token_id``. Use this rather than ``StreamHub.publish_token`` so that every instance
    behind a Redis bus sees the update.
    """

    async def publish_token(token_id: str, data: Mapping[str, Any]) -> None:
        await bus.publish(TOKENS_TOPIC, orjson.dumps({**data, "id": token_id}))

    return publish_token


__all__ = [
    "BULK_EVENT",
    "KINDS",
    "LTP_EVENT",
    "LTP_TOPIC",
    "PAIR_PREFIX",
    "TOKENS_TOPIC",
    "TOKEN_EVENT",
    "TOKEN_PREFIX",
    "TokenPublisher",
    "make_ltp_publisher",
    "make_token_publisher",
    "pair_key",
    "split_key",
    "token_key",
]
