"""FastAPI routes of the token endpoints: documented here; ``GET /api/v1/tokens`` itself is
served by the edge middleware's fast path with the same builder."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from tokenpulse.api.deps import ApiServices, ServicesDep
from tokenpulse.api.schemas import HistoryResponse, TokenList, TokenResponse, VelocityResponse
from tokenpulse.api.schemas.errors import (
    documented_error,
    documented_errors,
    store_unavailable_error,
)
from tokenpulse.api.schemas.queries import NumbersQuery
from tokenpulse.api.tokens.answers import TokenEndpoints
from tokenpulse.api.tokens.queries import check_history_depth
from tokenpulse.domain.errors import TokenNotFound
from tokenpulse.domain.time import isoformat_z, utcnow

router = APIRouter(tags=["tokens"])

MaxAge = Annotated[
    int | None, Query(ge=0, description="503 STALE_DATA instead of data older than this")
]
TokenId = Annotated[
    str,
    Path(description="Our id (bitcoin), a CoinMarketCap id (1), a CoinGecko id, or a symbol"),
]


def get_tokens(request: Request) -> TokenEndpoints:
    """The token answers of this app (built by the app factory)."""
    token_api: TokenEndpoints | None = request.app.state.token_api
    if token_api is None:
        raise TokenNotFound("token metrics are not enabled on this instance")
    return token_api


TokensDep = Annotated[TokenEndpoints, Depends(get_tokens)]


def _envelope(data: Any, started: float, container: ApiServices, **meta: Any) -> Response:
    """The success envelope around ``data``, as a JSON response."""
    tokens = container.tokens
    body = {
        "status": "success",
        "timestamp": isoformat_z(utcnow()),
        "data": data,
        "meta": {
            "source": ",".join(tokens.sources_in_use()) if tokens else None,
            "processing_time_ms": round((time.perf_counter() - started) * 1000, 3),
            "cache": "miss",
            **meta,
        },
    }
    return Response(orjson.dumps(body), media_type="application/json")


#: The token endpoints answer 503 STALE_DATA only where the caller sent max_age_ms.
_ONE_TOKEN_ERRORS = documented_errors(400, 404, 409, 503)


@router.get(
    "/api/v1/tokens",
    summary="Tracked tokens with market data and velocity",
    operation_id="listTokens",
    response_model=TokenList,
    responses={200: {"description": "A page of tokens"}, **documented_errors(400, 503)},
)
async def list_tokens(
    request: Request,
    tokens: TokensDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    start: Annotated[int, Query(ge=1, description="1-based position")] = 1,
    cursor: Annotated[str | None, Query(description="pagination.next of a previous page")] = None,
    min_market_cap: float | None = None,
    max_market_cap: float | None = None,
    min_velocity: float | None = None,
    max_velocity: float | None = None,
    symbols: Annotated[str | None, Query(examples=["BTC,ETH"])] = None,
    sort: Literal[
        "market_cap", "volume_24h", "velocity", "price", "percent_change_24h", "rank"
    ] = "market_cap",
    order: Literal["asc", "desc"] | None = None,
    detail: Literal["basic", "full"] = "full",
    max_age_ms: MaxAge = None,
    numbers: NumbersQuery = None,
) -> Response:
    """Filter, sort and page the tracked tokens (SPEC §6)."""
    answer = tokens.list_tokens(request.scope.get("query_string", b""))
    return Response(answer.body, status_code=answer.status, media_type="application/json")


@router.get(
    "/api/v1/tokens/{token_id}",
    summary="One token: snapshot, velocity, trends, quality",
    operation_id="getToken",
    response_model=TokenResponse,
    responses={200: {"description": "The token"}, **_ONE_TOKEN_ERRORS},
)
async def get_token(
    container: ServicesDep,
    tokens: TokensDep,
    token_id: TokenId,
    history: Annotated[
        str | None, Query(description="Adds a compact series: 1h, 4h, 12h, 24h, 7d")
    ] = None,
    detail: Literal["basic", "full"] = "full",
    max_age_ms: MaxAge = None,
    numbers: NumbersQuery = None,
) -> Response:
    """Snapshot, velocity, trends over 1h/4h/12h/7d and quality flags (SPEC §4.3, §4.4)."""
    started = time.perf_counter()
    data = await tokens.detail(
        token_id, history=history, detail=detail, max_age_ms=max_age_ms, numbers=numbers
    )
    return _envelope(data, started, container)


@router.get(
    "/api/v1/tokens/{token_id}/velocity",
    summary="Velocity, its inputs and formula, trends and a series",
    operation_id="getTokenVelocity",
    response_model=VelocityResponse,
    responses={200: {"description": "The token's velocity"}, **_ONE_TOKEN_ERRORS},
)
async def get_velocity(
    container: ServicesDep,
    tokens: TokensDep,
    token_id: TokenId,
    window: Annotated[str, Query(description="Series window: 1h, 4h, 12h, 24h, 7d")] = "24h",
    max_age_ms: MaxAge = None,
    numbers: NumbersQuery = None,
) -> Response:
    """volume_24h_usd / market_cap_usd with its inputs, flags, trends and a series."""
    started = time.perf_counter()
    data = await tokens.velocity(token_id, window=window, max_age_ms=max_age_ms, numbers=numbers)
    return _envelope(data, started, container)


@router.get(
    "/api/v1/tokens/{token_id}/history",
    summary="History at a granularity, with the gaps left in the range",
    operation_id="getTokenHistory",
    response_model=HistoryResponse,
    responses={
        200: {"description": "The points in the range and the gaps left in it"},
        400: documented_error(
            400,
            description="A malformed parameter, or more than 10 000 points (the message "
            "names a coarser granularity)",
        ),
        **documented_errors(403, 404, 409),
        500: documented_error(500),
        503: store_unavailable_error(),
    },
)
async def get_history(
    request: Request,
    container: ServicesDep,
    tokens: TokensDep,
    token_id: TokenId,
    from_: Annotated[
        str | None, Query(alias="from", description="ISO 8601 or unix seconds")
    ] = None,
    to: Annotated[str | None, Query(description="ISO 8601 or unix seconds")] = None,
    granularity: Annotated[
        str | None, Query(description="raw, 1m, 5m, 15m, 1h, 4h or 1d; default from the range")
    ] = None,
    fields: Annotated[str | None, Query(examples=["close,velocity"])] = None,
    numbers: NumbersQuery = None,
) -> Response:
    """At most 10 000 points per answer; `gaps` names the stretches without data. A key
    reads as far back as its role (reader: 24 h) and tier allow (403 beyond)."""
    started = time.perf_counter()
    if container.access is not None:
        check_history_depth(container.access, request.scope["state"].get("principal"), from_, to)
    data = await tokens.series(
        token_id,
        start_text=from_,
        end_text=to,
        granularity=granularity,
        fields_text=fields,
        numbers=numbers,
    )
    return _envelope(data, started, container)
