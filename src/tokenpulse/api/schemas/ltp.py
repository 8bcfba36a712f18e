"""Models of the LTP endpoints (the Go "BTC LTP Service" shapes, with freshness added)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tokenpulse.api.schemas.errors import FlatError, flat_example

#: A market value: a JSON number, or the provider's exact decimal string with ?numbers=string.
MarketNumber = float | str

LTP_ENTRY_EXAMPLE: dict[str, Any] = {
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


class LtpEntry(BaseModel):
    """One last traded price, with its freshness."""

    model_config = ConfigDict(json_schema_extra={"example": LTP_ENTRY_EXAMPLE})

    pair: str = Field(description="Canonical pair, BASE/QUOTE")
    amount: MarketNumber = Field(
        description="Last trade price: a number (the provider's exact decimal string with "
        "numbers=string)"
    )
    timestamp: str = Field(description="Exchange time of the reading, or our receive time")
    source: str = Field(description="The source that served it: kraken_ws, kraken_rest, replay")
    as_of: str | None = Field(None, description="The exchange's time, when it sends one")
    received_at: str | None = None
    bid: MarketNumber | None = None
    ask: MarketNumber | None = None
    volume_24h: MarketNumber | None = None
    vwap: MarketNumber | None = None
    age_ms: int = Field(description="Milliseconds since the value was last known current")
    stale: bool = Field(description="True when age_ms exceeds STALE_AFTER")


class PairError(BaseModel):
    """Why one requested pair has no price in this answer."""

    pair: str
    error: str
    code: str = Field(
        description="UNSUPPORTED_PAIR, INVALID_PARAMETER, PRICE_FETCH_ERROR or STALE_DATA"
    )
    message: str


class LtpResponse(BaseModel):
    """200 (every pair answered) or 206 (with ``errors`` for the others)."""

    model_config = ConfigDict(json_schema_extra={"example": {"ltp": [LTP_ENTRY_EXAMPLE]}})

    ltp: list[LtpEntry]
    errors: list[PairError] | None = Field(None, description="Only in a 206")
    source: str | None = Field(
        None,
        description="Only in `/api/v1/ltp/cached`: `memory` when the cache is unreachable "
        "and the answer comes from this instance's memory instead",
    )


class LtpFailure(FlatError):
    """503: no valid pair has a price (ALL_PRICES_FAILED), or none is young enough (STALE_DATA)."""

    ltp: list[LtpEntry] = Field(default_factory=list, description="Always empty")
    errors: list[PairError] | None = None


class RefreshResponse(BaseModel):
    """The pairs refreshed from Kraken REST."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {"message": "Prices refreshed successfully", "pairs": ["BTC/USD"]}
        }
    )

    message: str = "Prices refreshed successfully"
    pairs: list[str]


class RefreshFailure(FlatError):
    """502 PRICE_FETCH_ERROR: the pairs that could not be refreshed."""

    pairs: list[str] = Field(default_factory=list, description="The pairs that failed")
    refreshed: list[str] | None = Field(None, description="The pairs that were refreshed")
    errors: list[PairError] | None = None


_UNSUPPORTED = flat_example(
    "UNSUPPORTED_PAIR",
    "no supported pair requested; supported pairs: BTC/USD, ETH/USD",
    details={"parameter": "pair", "rejected": [{"pair": "DOGE/MOON", "code": "UNSUPPORTED_PAIR"}]},
)
_STALE = flat_example(
    "STALE_DATA",
    "no price is younger than max_age_ms=1000",
    ltp=[],
    errors=[
        {
            "pair": "BTC/USD",
            "error": "STALE_DATA",
            "code": "STALE_DATA",
            "message": "the price of BTC/USD is older than max_age_ms=1000",
        }
    ],
)

#: The documented answers of GET /api/v1/ltp (the edge's 401/429 are added document-wide).
LTP_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every requested pair has a price, in request order"},
    206: {
        "description": "Some pairs failed or are unsupported: `errors` names them",
        "model": LtpResponse,
        "content": {
            "application/json": {
                "example": {
                    "ltp": [LTP_ENTRY_EXAMPLE],
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
        "description": "No requested pair is valid (UNSUPPORTED_PAIR), or a malformed "
        "parameter (INVALID_PARAMETER)",
        "model": FlatError,
        "content": {"application/json": {"example": _UNSUPPORTED}},
    },
    503: {
        "description": "No valid pair has a price (ALL_PRICES_FAILED), or none is younger "
        "than max_age_ms (STALE_DATA, with Retry-After)",
        "model": LtpFailure,
        "content": {
            "application/json": {
                "examples": {
                    "ALL_PRICES_FAILED": {
                        "value": flat_example(
                            "ALL_PRICES_FAILED",
                            "no price is available for any requested pair",
                            ltp=[],
                        )
                    },
                    "STALE_DATA": {"value": _STALE},
                }
            }
        },
    },
}

CACHED_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Every price in the cache; when the cache is unreachable, every price "
        'this instance holds in memory, marked `"source": "memory"`'
    },
}

REFRESH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Every requested pair was refreshed"},
    400: {
        "description": "No requested pair is valid",
        "model": FlatError,
        "content": {"application/json": {"example": _UNSUPPORTED}},
    },
    502: {
        "description": "PRICE_FETCH_ERROR with the failing pairs",
        "model": RefreshFailure,
        "content": {
            "application/json": {
                "example": flat_example(
                    "PRICE_FETCH_ERROR",
                    "refreshing prices failed for BTC/USD",
                    pairs=["BTC/USD"],
                    refreshed=[],
                    errors=[
                        {
                            "pair": "BTC/USD",
                            "error": "PRICE_FETCH_ERROR",
                            "code": "PRICE_FETCH_ERROR",
                            "message": "kraken REST: timed out",
                        }
                    ],
                )
            }
        },
    },
}
