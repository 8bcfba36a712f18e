"""Models of the operations endpoints: health, readiness, pairs, sources."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tokenpulse.api.schemas.aggregate import Aggregate
from tokenpulse.api.schemas.envelope import Success


class HealthResponse(BaseModel):
    """Liveness: the process is up."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "status": "healthy",
                "timestamp": "2026-02-14T10:21:07.123Z",
                "version": "0.1.0",
                "uptime_seconds": 3600.5,
                "services": {"service": "running"},
            }
        }
    )

    status: str = "healthy"
    timestamp: str
    version: str
    uptime_seconds: float
    services: dict[str, str]


class ReadyResponse(BaseModel):
    """Readiness: each dependency's state; 503 names the failing one in ``errors``."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "status": "ready",
                "timestamp": "2026-02-14T10:21:07.123Z",
                "services": {
                    "cache": "ready",
                    "database": "ready",
                    "sources": {"kraken_ws": "connected"},
                    "bus": {"state": "ready", "heartbeat_age_seconds": 0.4},
                    "prices": {"available": 4, "missing": []},
                },
                "errors": [],
            }
        }
    )

    status: str = Field(description="ready or unhealthy")
    timestamp: str
    services: dict[str, Any]
    errors: list[str] = []


class PairInfo(BaseModel):
    """A supported pair, its provider names and the source serving it."""

    pair: str
    base: str
    quote: str
    providers: dict[str, dict[str, str | None]]
    serving_source: str | None
    venues: list[str] = Field(
        default_factory=list, description="The enabled venues that list this pair"
    )
    aggregate: Aggregate | None = Field(
        None, description="The cross-venue price and each venue's part (null: no venue runs here)"
    )


class PairList(Success):
    """The supported pairs."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "status": "success",
                "timestamp": "2026-02-14T10:21:07.123Z",
                "data": [
                    {
                        "pair": "BTC/USD",
                        "base": "BTC",
                        "quote": "USD",
                        "providers": {
                            "kraken": {
                                "rest": "XXBTZUSD",
                                "altname": "XBTUSD",
                                "ws_v1": "XBT/USD",
                                "ws_v2": "BTC/USD",
                            }
                        },
                        "serving_source": "kraken_ws",
                        "aggregate": None,
                    }
                ],
                "meta": {"source": "config", "count": 1, "processing_time_ms": 0.04},
            }
        }
    )

    data: list[PairInfo]


class SourceReport(BaseModel):
    """Each source's state and who serves each pair (and the token market source)."""

    sources: list[dict[str, Any]]
    pairs: dict[str, Any]
    role: str
    ltp: dict[str, Any] | None = Field(
        None,
        description="LTP_PRIMARY and LTP_FALLBACK as running (primary, fallback), and the "
        "pairs the aggregate serves now (aggregate_serving)",
    )
    market: dict[str, Any] | None = None
    ingest_lock: str = Field(
        "not used",
        description="held, not held, ingesting without the lock (Redis unreachable: another "
        "instance may ingest too), or not used (no election)",
    )
    ingesting_without_lock: bool = False


class SourceList(Success):
    """The sources' states."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "status": "success",
                "timestamp": "2026-02-14T10:21:07.123Z",
                "data": {
                    "sources": [
                        {"name": "kraken_ws", "state": "connected", "role": "primary"},
                    ],
                    "pairs": {"BTC/USD": {"source": "kraken_ws", "reason": "primary"}},
                    "role": "all",
                    "market": None,
                },
                "meta": {"processing_time_ms": 0.1},
            }
        }
    )

    data: SourceReport
