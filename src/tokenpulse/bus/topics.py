"""Stream keys and the bus side of streaming: what producers publish and on which topic.

Two kinds of stream key: ``pair:BTC/USD`` (last traded price, event ``ltp_update``; the
cross-venue aggregate is ``pair:BTC/USD@aggregate``, published on topic ``ltp_aggregate``) and
``token:<id>`` (token metrics, event ``token_update``). Producers publish on the
:class:`~tokenpulse.bus.base.EventBus` — topic ``ltp`` with the ticker's JSON, topic
``tokens`` with the token's JSON including its ``id``, both the bytes :mod:`tokenpulse.wire`
built when the value was accepted (``view.body``: no age, which depends on the time of
reading) — and every instance's :class:`~tokenpulse.api.streams.hub.StreamHub` subscribes to
both, so with the Redis bus a client on any instance sees every update.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from tokenpulse.bus.base import EventBus
from tokenpulse.wire.ltp import LtpView
from tokenpulse.wire.tokens import TokenView

LTP_TOPIC = "ltp"
AGGREGATE_TOPIC = "ltp_aggregate"  # the cross-venue aggregate, stream key pair:BTC/USD@aggregate
AGGREGATE_SUFFIX = "@aggregate"
TOKENS_TOPIC = "tokens"
#: The ingest leader saved its latest values after a store or bus outage (payload ``{}``): the
#: bus lost events meanwhile, so followers reload the saved values (SPEC §10).
LATEST_SAVED_TOPIC = "latest_saved"

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

LtpPublisher = Callable[[LtpView], Awaitable[None]]
#: Called with the values accepted together (one batch of ingestion).
LtpBatchPublisher = Callable[[Sequence[LtpView]], Awaitable[None]]
TokenPublisher = Callable[[TokenView], Awaitable[None]]


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


def make_ltp_publisher(bus: EventBus) -> LtpBatchPublisher:
    """A :meth:`PriceService.add_publisher` callback: every accepted ticker's bytes onto ``ltp``
    (one batch at a time: the bus yields to the loop once per batch)."""

    async def publish_tickers(views: Sequence[LtpView]) -> None:
        await bus.publish_many(LTP_TOPIC, [view.body for view in views])

    return publish_tickers


def make_aggregate_publisher(bus: EventBus) -> LtpPublisher:
    """Every new cross-venue aggregate's bytes onto ``ltp_aggregate`` (its ``pair`` is plain)."""

    async def publish_aggregate(view: LtpView) -> None:
        await bus.publish(AGGREGATE_TOPIC, view.body)

    return publish_aggregate


def make_token_publisher(bus: EventBus) -> TokenPublisher:
    """A :meth:`TokenService.add_publisher` callback: every served snapshot's bytes onto
    ``tokens`` (its JSON carries its ``id``).

    Publish on the bus rather than with ``StreamHub.publish_token`` so that every instance
    behind a Redis bus sees the update.
    """

    async def publish_token(view: TokenView) -> None:
        await bus.publish(TOKENS_TOPIC, view.body)

    return publish_token


__all__ = [
    "AGGREGATE_SUFFIX",
    "AGGREGATE_TOPIC",
    "BULK_EVENT",
    "KINDS",
    "LATEST_SAVED_TOPIC",
    "LTP_EVENT",
    "LTP_TOPIC",
    "PAIR_PREFIX",
    "TOKENS_TOPIC",
    "TOKEN_EVENT",
    "TOKEN_PREFIX",
    "LtpPublisher",
    "TokenPublisher",
    "make_aggregate_publisher",
    "make_ltp_publisher",
    "make_token_publisher",
    "pair_key",
    "split_key",
    "token_key",
]
