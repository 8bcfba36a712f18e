"""FastAPI routes of the token endpoints: documented here; ``GET /api/v1/tokens`` itself is
served by the edge middleware's fast path with the same builder."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from tokenpulse.api.deps import ApiServices, ServicesDep
from tokenpulse.api.schemas import Envelope
from tokenpulse.api.tokens.answers import TokenEndpoints
from tokenpulse.domain.errors import TokenNotFound
from tokenpulse.domain.time import isoformat_z, utcnow

router = APIRouter(tags=["tokens"])

TOKEN_EXAMPLE: dict[str, Any] = {
    "id": "bitcoin",
    "symbol": "BTC",
    "name": "Bitcoin",
    "cmc_id": 1,
    "coingecko_id": "bitcoin",
    "rank": 1,
    "price_usd": 34226.35,
    "market_cap_usd": 642121487424,
    "volume_24h_usd": 30452416578,
    "circulating_supply": 18746750,
    "total_supply": 21000000,
    "max_supply": 21000000,
    "percent_change_1h": -0.32,
    "percent_change_24h": 2.64,
    "percent_change_7d": -4.12,
    "velocity": 0.04742,
    "source": "coingecko",
    "as_of": "2021-06-24T03:30:22.123Z",
    "received_at": "2021-06-24T03:30:40.512Z",
    "age_ms": 1204,
    "stale": False,
    "quality": {"flags": [], "market_cap_used": 642121487424, "market_cap_derived": False},
}

MaxAge = Annotated[
    int | None, Query(ge=0, description="503 STALE_DATA instead of data older than this")
]
NumbersQuery = Annotated[
    str | None,
    Query(
        description="`string`: every market value as the provider's exact decimal string "
        "instead of a JSON number (default `number`)",
        examples=["string"],
    ),
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


def _envelope(data: Any, started: float, container: ApiServices, **meta: Any) -> dict[str, Any]:
    tokens = container.tokens
    return {
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


@router.get(
    "/api/v1/tokens",
    summary="Tracked tokens with market data and velocity",
    response_model=Envelope,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "status": "success",
                        "timestamp": "2026-02-14T10:21:07.123Z",
                        "data": [TOKEN_EXAMPLE],
                        "pagination": {"total": 100, "limit": 1, "start": 1, "next": "czoy"},
                        "meta": {"source": "coingecko", "processing_time_ms": 0.41, "cache": "hit"},
                    }
                }
            }
        },
        400: {"description": "A malformed parameter (named in error.details.parameter)"},
        503: {"description": "STALE_DATA: a token on the page is older than max_age_ms"},
    },
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
    response_model=Envelope,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "status": "success",
                        "data": {
                            **TOKEN_EXAMPLE,
                            "trends": {
                                "1h": {
                                    "change_pct": 2.1,
                                    "direction": "increasing",
                                    "mean": 0.0468,
                                },
                                "7d": None,
                            },
                        },
                    }
                }
            }
        },
        404: {"description": "TOKEN_NOT_FOUND"},
        409: {"description": "AMBIGUOUS_TOKEN: the symbol names several tokens"},
    },
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
) -> dict[str, Any]:
    started = time.perf_counter()
    data = await tokens.detail(
        token_id, history=history, detail=detail, max_age_ms=max_age_ms, numbers=numbers
    )
    return _envelope(data, started, container)


@router.get(
    "/api/v1/tokens/{token_id}/velocity",
    summary="Velocity, its inputs and formula, trends and a series",
    response_model=Envelope,
)
async def get_velocity(
    container: ServicesDep,
    tokens: TokensDep,
    token_id: TokenId,
    window: Annotated[str, Query(description="Series window: 1h, 4h, 12h, 24h, 7d")] = "24h",
    max_age_ms: MaxAge = None,
    numbers: NumbersQuery = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    data = await tokens.velocity(token_id, window=window, max_age_ms=max_age_ms, numbers=numbers)
    return _envelope(data, started, container)


@router.get(
    "/api/v1/tokens/{token_id}/history",
    summary="History at a granularity, with the gaps left in the range",
    response_model=Envelope,
    responses={
        400: {"description": "More than 10 000 points: the message names a coarser granularity"}
    },
)
async def get_history(
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
) -> dict[str, Any]:
    started = time.perf_counter()
    data = await tokens.series(
        token_id,
        start_text=from_,
        end_text=to,
        granularity=granularity,
        fields_text=fields,
        numbers=numbers,
    )
    return _envelope(data, started, container)
