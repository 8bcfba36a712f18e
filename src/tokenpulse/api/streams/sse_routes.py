"""The SSE routes (SPEC §7.2): ``/api/v1/ltp/live``, ``/api/v1/tokens/live`` and
``/api/v1/tokens/{token_id}/live``, each answered by an
:class:`~tokenpulse.api.streams.sse.EventStream`."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from tokenpulse.api.schemas.queries import NumbersQuery
from tokenpulse.api.streams import requests as req
from tokenpulse.api.streams.access import StreamAccess
from tokenpulse.api.streams.hub import LimitExceeded, StreamHub
from tokenpulse.api.streams.sse import DEFAULT_HEARTBEAT, DEFAULT_SEND_TIMEOUT, EventStream
from tokenpulse.api.streams.sse_wire import SseDispatcher
from tokenpulse.bus.topics import TOKEN_PREFIX, pair_key, token_key
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.observability.metrics import Metrics
from tokenpulse.wire.numbers import parse_numbers

PAIRS_DOC = (
    "Comma-separated pairs (any spelling); PAIR@aggregate (BTC/USD@aggregate) for the "
    "cross-venue aggregate; every supported pair if absent"
)
IDS_DOC = "Comma-separated token ids; every token if absent"
INTERVAL_DOC = (
    "At most one message per key per this many milliseconds (within the server's bounds, "
    "50..60000 by default); absent: adaptive (faster while the price moves)"
)
IntervalQuery = Annotated[str | None, Query(description=INTERVAL_DOC)]
PairsQuery = Annotated[str | None, Query(description=PAIRS_DOC)]
IdsQuery = Annotated[str | None, Query(description=IDS_DOC)]


def sse_router(
    hub: StreamHub,
    *,
    registry: PairRegistry,
    supported_pairs: Collection[Pair],
    metrics: Metrics,
    token_resolver: req.TokenResolver = req.accept_any_token,
    heartbeat: float = DEFAULT_HEARTBEAT,
    send_timeout: float = DEFAULT_SEND_TIMEOUT,
    seed: Callable[[str], dict[str, Any] | None] | None = None,
    known_keys: Callable[[str], list[str]] | None = None,
    access: StreamAccess | None = None,
) -> APIRouter:
    """The SSE routes bound to ``hub``. Include it before any ``/api/v1/tokens/{token_id}``."""
    router = APIRouter(tags=["streams"])
    limits = hub.limits
    dispatcher = SseDispatcher()

    def seeded(keys: list[str]) -> list[str]:
        """Give the hub a first state for keys it has none of (served before it started)."""
        for key in keys:
            if seed is not None and hub.stream(key) is None and (data := seed(key)) is not None:
                hub.publish(key, data)
        return keys

    def stream(
        keys: list[str], prefix: str | None, interval: str | None, numbers: str | None
    ) -> EventStream:
        strings = parse_numbers(numbers)
        if hub.connection_count() >= limits.max_connections:
            raise LimitExceeded(f"this instance serves at most {limits.max_connections} streams")
        return EventStream(
            hub,
            metrics,
            keys=keys,
            prefix=prefix,
            interval_ms=req.parse_interval_text(interval, limits),
            heartbeat=heartbeat,
            send_timeout=send_timeout,
            strings=strings,
            access=access,
            dispatcher=dispatcher,
        )

    def split(text: str | None, name: str) -> list[str]:
        items = [item for item in (text or "").split(",") if item.strip()]
        return req.names({name: items}, "_", name, limit=limits.max_subscriptions, required=False)

    @router.get(
        "/api/v1/ltp/live",
        summary="Live last traded prices (Server-Sent Events)",
        response_class=EventStream,
        status_code=200,
    )
    async def ltp_live(
        pair: PairsQuery = None,
        min_interval_ms: IntervalQuery = None,
        numbers: NumbersQuery = None,
    ) -> EventStream:
        """``event: ltp_update`` per pair: a snapshot, then deltas."""
        texts = split(pair, "pair")
        pairs = (
            req.resolve_pairs(texts, registry, supported_pairs)
            if texts
            else [str(p) for p in supported_pairs]
        )
        return stream(seeded([pair_key(p) for p in pairs]), None, min_interval_ms, numbers)

    @router.get(
        "/api/v1/tokens/live",
        summary="Live token metrics (Server-Sent Events)",
        response_class=EventStream,
        status_code=200,
    )
    async def tokens_live(
        ids: IdsQuery = None,
        min_interval_ms: IntervalQuery = None,
        numbers: NumbersQuery = None,
    ) -> EventStream:
        """``event: token_update`` per token: a snapshot, then deltas."""
        texts = split(ids, "ids")
        if not texts:
            seeded(known_keys(TOKEN_PREFIX) if known_keys is not None else [])
            return stream([], TOKEN_PREFIX, min_interval_ms, numbers)
        keys = [token_key(t) for t in req.resolve_tokens(texts, token_resolver)]
        return stream(seeded(keys), None, min_interval_ms, numbers)

    @router.get(
        "/api/v1/tokens/{token_id}/live",
        summary="Live metrics of one token (Server-Sent Events)",
        response_class=EventStream,
        status_code=200,
    )
    async def token_live(
        token_id: Annotated[str, Path(description="Token id, CMC id, CoinGecko id or symbol")],
        min_interval_ms: IntervalQuery = None,
        numbers: NumbersQuery = None,
    ) -> EventStream:
        """``event: token_update`` for one token."""
        (resolved,) = req.resolve_tokens([token_id], token_resolver)
        return stream(seeded([token_key(resolved)]), None, min_interval_ms, numbers)

    return router


__all__ = ["sse_router"]
