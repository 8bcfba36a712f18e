"""FastAPI routes of operations: health, readiness, metrics, pairs and sources."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from tokenpulse import __version__
from tokenpulse.api.deps import ApiServices, ServicesDep
from tokenpulse.api.schemas import HealthResponse, PairList, ReadyResponse, SourceList
from tokenpulse.domain.errors import StoreError
from tokenpulse.domain.time import isoformat_z, utcnow

READY_CHECK_TIMEOUT = 2.0


def _envelope(data: Any, started: float, **meta: Any) -> Response:
    body = {
        "status": "success",
        "timestamp": isoformat_z(utcnow()),
        "data": data,
        "meta": {"processing_time_ms": round((time.perf_counter() - started) * 1000, 3), **meta},
    }
    return Response(orjson.dumps(body), media_type="application/json")


router = APIRouter()


def health_body(container: ApiServices) -> bytes:
    """The liveness answer (also served by the edge middleware without routing)."""
    now = utcnow()
    return orjson.dumps(
        {
            "status": "healthy",
            "timestamp": isoformat_z(now),
            "version": __version__,
            "uptime_seconds": round((now - container.started_at).total_seconds(), 3),
            "services": {"service": "running"},
        }
    )


@router.get("/health", tags=["ops"], operation_id="getHealth", response_model=HealthResponse)
async def health(container: ServicesDep) -> Response:
    """Liveness: the process is up."""
    return Response(health_body(container), media_type="application/json")


@router.get(
    "/ready",
    tags=["ops"],
    operation_id="getReady",
    response_model=ReadyResponse,
    responses={
        503: {
            "model": ReadyResponse,
            "description": "A dependency is failing: `errors` says which and why",
            "content": {
                "application/json": {
                    "example": {
                        "status": "unhealthy",
                        "timestamp": "2026-02-14T10:21:07.123Z",
                        "services": {"cache": "unhealthy", "database": "ready"},
                        "errors": ["cache (redis): connection refused"],
                    }
                }
            },
        }
    },
)
async def ready(container: ServicesDep) -> Response:
    """Readiness: the cache and the bus (its heartbeat) answer, and a pair has a price."""
    errors: list[str] = []
    services: dict[str, Any] = {"service": "ready"}  # as the Go service's /ready
    try:
        await asyncio.wait_for(container.cache.ping(), READY_CHECK_TIMEOUT)
        services["cache"] = "ready"
    except (StoreError, TimeoutError) as exc:
        services["cache"] = "unhealthy"
        errors.append(f"cache ({container.cache.backend}): {exc or 'timed out'}")
    if container.history is None:
        services["database"] = "disabled"
    elif container.state.history_error is not None:
        services["database"] = "unhealthy"
        errors.append(f"database: {container.state.history_error}")
    else:
        try:
            await asyncio.wait_for(container.history.ping(), READY_CHECK_TIMEOUT)
            services["database"] = "ready"
        except (StoreError, TimeoutError) as exc:
            services["database"] = "unhealthy"
            errors.append(f"database ({container.history.dialect}): {exc or 'timed out'}")
    bus = container.bus
    services["bus"] = {
        "state": "ready" if bus.healthy else "unhealthy",
        "heartbeat_age_seconds": round(bus.heartbeat_age(), 3),
    }
    if not bus.healthy:
        errors.append(
            f"bus: own heartbeat not heard for {bus.heartbeat_age():.1f} s "
            "(fan-out between instances is down; local streams go on)"
        )
    views = container.prices.views()
    missing = [str(p) for p in container.prices.pairs if p not in views]
    if container.supervisor is not None:
        report = container.supervisor.report()
        services["sources"] = {s["name"]: s["state"] for s in report["sources"]}
        services["pairs"] = report["pairs"]
    else:
        services["sources"] = {}
    if not views:
        errors.append("prices: no price for any pair yet")
    services["prices"] = {"available": len(views), "missing": missing}
    services["tokens"] = {"available": len(container.tokens)}
    if container.market is not None:
        services["market"] = {
            k: v
            for k, v in container.market.state().items()
            if k in {"tokens", "active_source", "reason", "status"}
        }
    status = "ready" if not errors else "unhealthy"
    body = {
        "status": status,
        "timestamp": isoformat_z(utcnow()),
        "services": services,
        "errors": errors,
    }
    return Response(
        ReadyResponse.model_validate(body).model_dump_json().encode(),
        status_code=200 if not errors else 503,
        media_type="application/json",
    )


@router.get(
    "/metrics",
    tags=["ops"],
    operation_id="getMetrics",
    response_class=Response,
    responses={
        200: {
            "description": "Every metric, named tokenpulse_*",
            "content": {
                "text/plain": {
                    "schema": {"type": "string"},
                    "example": 'tokenpulse_http_requests_total{method="GET",route="/api/v1/ltp",'
                    'status="200"} 42.0\n',
                }
            },
        }
    },
)
async def metrics(container: ServicesDep) -> Response:
    """Prometheus text format."""
    try:
        count = await asyncio.wait_for(container.cache.count(), READY_CHECK_TIMEOUT)
        container.metrics.cache_keys.labels(container.cache.backend).set(count)
    except (StoreError, TimeoutError):
        pass  # the cache error metric already counts this; the scrape must still work
    return Response(container.metrics.render(), media_type=container.metrics.content_type)


@router.get("/api/v1/pairs", tags=["ltp"], operation_id="listPairs", response_model=PairList)
async def list_pairs(container: ServicesDep) -> Response:
    """Supported pairs with their provider names and serving source."""
    started = time.perf_counter()
    assignments = container.supervisor.assignments if container.supervisor else {}
    book = container.supervisor.book if container.supervisor else None
    now = container.prices.clock()
    data = []
    for pair in container.prices.pairs:
        info = container.registry.info(pair)
        assigned = assignments.get(pair)
        providers: dict[str, dict[str, str | None]] = {
            "kraken": {
                "rest": info.rest_key,
                "altname": info.altname,
                "ws_v1": info.wsname,
                "ws_v2": info.ws_v2_symbol,
            }
        }
        venues = [v for v in book.venues if book.serves(v, pair)] if book else []
        for venue in venues:
            if venue != "kraken" and book is not None:
                providers[venue] = {"symbol": book.symbols[venue][pair]}
        data.append(
            {
                "pair": str(pair),
                "base": pair.base,
                "quote": pair.quote,
                "providers": providers,
                "serving_source": assigned.source if assigned else None,
                "venues": venues,
                "aggregate": book.describe(pair, now) if book and book.aggregating else None,
            }
        )
    return _envelope(data, started, source="config", count=len(data))


@router.get("/api/v1/sources", tags=["ops"], operation_id="listSources", response_model=SourceList)
async def list_sources(container: ServicesDep) -> Response:
    """Each source's state, role, last message age and errors; who serves each pair and why."""
    started = time.perf_counter()
    if container.supervisor is None:
        data: dict[str, Any] = {"sources": [], "pairs": {}, "role": container.settings.role}
    else:
        data = {**container.supervisor.report(), "role": container.settings.role}
    data["market"] = container.market.state() if container.market is not None else None
    data["unknown_tracked_tokens"] = list(container.unknown_tracked_tokens)
    data["ingest_lock"] = container.state.ingest_lock()
    data["ingesting_without_lock"] = data["ingest_lock"] == "ingesting without the lock"
    return _envelope(data, started)
