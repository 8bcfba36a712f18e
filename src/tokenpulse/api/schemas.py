"""Response models: they document the API in OpenAPI (with examples); the hot paths write
the same shapes as ready-made bytes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LtpEntry(BaseModel):
    """One last traded price."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "pair": "BTC/USD",
                "amount": 68923.4,
                "timestamp": "2026-02-14T10:21:07.123Z",
                "source": "kraken_ws",
                "as_of": "2026-02-14T10:21:07.123Z",
                "received_at": "2026-02-14T10:21:07.151Z",
                "bid": 68923.3,
                "ask": 68923.4,
                "volume_24h": 1234.56789,
                "vwap": 68511.2,
                "age_ms": 412,
                "stale": False,
            }
        }
    )

    pair: str = Field(description="Canonical pair, BASE/QUOTE")
    amount: float | str = Field(
        description="Last trade price, digit for digit as the exchange sent it "
        "(a string when a float64 could not hold every digit)"
    )
    timestamp: str = Field(description="Exchange time of the reading, or our receive time")
    source: str
    as_of: str | None = None
    received_at: str
    bid: float | str | None = None
    ask: float | str | None = None
    volume_24h: float | str | None = None
    vwap: float | str | None = None
    age_ms: int = Field(description="Milliseconds since the value was last known current")
    stale: bool = Field(description="True when age_ms exceeds STALE_AFTER")


class PairError(BaseModel):
    pair: str
    error: str
    code: str = Field(
        description="UNSUPPORTED_PAIR, INVALID_PARAMETER, PRICE_FETCH_ERROR or STALE_DATA"
    )
    message: str


class LtpResponse(BaseModel):
    """200 (every pair answered) or 206 (with ``errors`` for the others)."""

    ltp: list[LtpEntry]
    errors: list[PairError] | None = None


class FlatError(BaseModel):
    """The Go service's error shape, kept by the LTP endpoints."""

    error: str
    message: str
    details: dict[str, Any] | None = None


class RefreshResponse(BaseModel):
    message: str = "Prices refreshed successfully"
    pairs: list[str]


class HealthResponse(BaseModel):
    status: str = "healthy"
    timestamp: str
    version: str
    uptime_seconds: float
    services: dict[str, str]


class ReadyResponse(BaseModel):
    status: str = Field(description="ready or unhealthy")
    timestamp: str
    services: dict[str, Any]
    errors: list[str] = []


class Envelope(BaseModel):
    """The base response of the non-LTP endpoints."""

    status: str = "success"
    timestamp: str
    data: Any
    meta: dict[str, Any] = {}


LTP_EXAMPLES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Every requested pair has a price",
        "content": {
            "application/json": {
                "example": {
                    "ltp": [
                        {
                            "pair": "BTC/USD",
                            "amount": 68923.4,
                            "timestamp": "2026-02-14T10:21:07.123Z",
                            "source": "kraken_ws",
                            "age_ms": 412,
                            "stale": False,
                        }
                    ]
                }
            }
        },
    },
    206: {
        "description": "Some pairs failed or are unsupported",
        "model": LtpResponse,
        "content": {
            "application/json": {
                "example": {
                    "ltp": [{"pair": "BTC/USD", "amount": 68923.4, "age_ms": 412, "stale": False}],
                    "errors": [
                        {
                            "pair": "DOGE/MOON",
                            "error": "UNSUPPORTED_PAIR",
                            "code": "UNSUPPORTED_PAIR",
                            "message": "pair DOGE/MOON is not supported",
                        }
                    ],
                }
            }
        },
    },
    400: {
        "description": "No requested pair is valid",
        "model": FlatError,
        "content": {
            "application/json": {
                "example": {
                    "error": "UNSUPPORTED_PAIR",
                    "message": "no supported pair requested; supported pairs: BTC/USD, ETH/USD",
                }
            }
        },
    },
    401: {"description": "Missing or invalid API key (when auth is on)", "model": FlatError},
    429: {"description": "Rate limit exceeded; see Retry-After", "model": FlatError},
    503: {
        "description": "No valid pair has a price (ALL_PRICES_FAILED), or none is younger "
        "than max_age_ms (STALE_DATA, with Retry-After)",
        "content": {
            "application/json": {
                "example": {
                    "error": "ALL_PRICES_FAILED",
                    "message": "no price is available for any requested pair",
                    "ltp": [],
                }
            }
        },
    },
}
