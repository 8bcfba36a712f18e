"""FastAPI routes of the LTP endpoints: documented here; ``GET /api/v1/ltp`` itself is served by
the edge middleware's fast path with the same builder."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from tokenpulse.api.ltp.answers import LtpAnswer, LtpEndpoints
from tokenpulse.api.schemas import AggregateResponse, LtpResponse, RefreshResponse
from tokenpulse.api.schemas.aggregate import AGGREGATE_RESPONSES
from tokenpulse.api.schemas.ltp import CACHED_RESPONSES, LTP_RESPONSES, REFRESH_RESPONSES
from tokenpulse.api.schemas.queries import NumbersQuery


def ltp_endpoints(request: Request) -> LtpEndpoints:
    """The LTP answers of this app (built by the app factory)."""
    ltp: LtpEndpoints = request.app.state.ltp
    return ltp


LtpDep = Annotated[LtpEndpoints, Depends(ltp_endpoints)]
PairsQuery = Annotated[
    str | None,
    Query(
        description="Comma-separated pairs (any spelling: BTC/USD, btc-usd, XBTUSD, XXBTZUSD). "
        "Empty or absent: every supported pair.",
        examples=["BTC/USD,ETH/USD"],
    ),
]
MaxAgeQuery = Annotated[
    int | None,
    Query(ge=0, description="Answer 503 STALE_DATA instead of a value older than this"),
]
SourceQuery = Annotated[
    str | None,
    Query(
        description="One venue's own value (`kraken`, `coinbase`, `binance`: enabled ones) or "
        "the cross-venue `aggregate`; absent: the value LTP_PRIMARY serves (with failover)",
        examples=["aggregate"],
    ),
]


def _answer(answer: LtpAnswer) -> Response:
    headers = {k.decode(): v.decode() for k, v in answer.headers}
    return Response(
        answer.body, status_code=answer.status, media_type="application/json", headers=headers
    )


router = APIRouter()


@router.get(
    "/api/v1/ltp",
    tags=["ltp"],
    summary="Last traded prices",
    operation_id="getLtp",
    response_model=LtpResponse,
    responses=LTP_RESPONSES,
)
async def get_ltp(
    request: Request,
    ltp: LtpDep,
    pair: PairsQuery = None,
    pairs: PairsQuery = None,
    max_age_ms: MaxAgeQuery = None,
    numbers: NumbersQuery = None,
    source: SourceQuery = None,
) -> Response:
    """Prices in request order; 206 with `errors` when some pairs fail (SPEC §6)."""
    return _answer(ltp.ltp(request.scope.get("query_string", b"")))


@router.get(
    "/api/v1/ltp/aggregate",
    tags=["ltp"],
    summary="The cross-venue price, with each venue's weight",
    operation_id="getAggregate",
    response_model=AggregateResponse,
    responses=AGGREGATE_RESPONSES,
)
async def get_aggregate(
    request: Request, ltp: LtpDep, pair: PairsQuery = None, pairs: PairsQuery = None
) -> Response:
    """Volume-weighted price of the fresh venues; stale, missing and outlier venues are
    listed with the reason they were left out (SPEC §4.2)."""
    return _answer(ltp.aggregate(request.scope.get("query_string", b"")))


@router.get(
    "/api/v1/ltp/cached",
    tags=["ltp"],
    summary="Everything in the cache",
    operation_id="getCachedLtp",
    response_model=LtpResponse,
    responses=CACHED_RESPONSES,
)
async def get_cached(request: Request, ltp: LtpDep, numbers: NumbersQuery = None) -> Response:
    """Every cached price, same shape as `/api/v1/ltp`."""
    return _answer(await ltp.cached(query_string=request.scope.get("query_string", b"")))


@router.post(
    "/api/v1/ltp/refresh",
    tags=["ltp"],
    summary="Force a REST fetch from Kraken",
    operation_id="refreshLtp",
    response_model=RefreshResponse,
    responses=REFRESH_RESPONSES,
)
async def refresh(
    request: Request, ltp: LtpDep, pairs: PairsQuery = None, pair: PairsQuery = None
) -> Response:
    """Bounded by KRAKEN_TIMEOUT; shares the REST limiter with the fallback poller."""
    return _answer(await ltp.refresh(request.scope.get("query_string", b"")))
