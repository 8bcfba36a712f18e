"""Models of the cross-venue aggregate (``GET /api/v1/ltp/aggregate``, ``/api/v1/pairs``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tokenpulse.api.schemas.envelope import Success
from tokenpulse.api.schemas.errors import FlatError, flat_example

AGGREGATE_EXAMPLE: dict[str, Any] = {
    "pair": "BTC/USD",
    "price": 69763.79,
    "volume_24h": 10000.0,
    "weighting": "volume",
    "method": "vwap",
    "flags": [],
    "venues_used": 2,
    "venues": [
        {
            "venue": "kraken",
            "symbol": "BTC/USD",
            "price": 69767.6,
            "volume_24h": 4000.0,
            "age_ms": 310,
            "stale": False,
            "source": "kraken_ws",
            "used": True,
            "weight": 0.4,
            "excluded": None,
        },
        {
            "venue": "coinbase",
            "symbol": "BTC-USD",
            "price": 69761.25,
            "volume_24h": 6000.0,
            "age_ms": 120,
            "stale": False,
            "source": "coinbase_ws",
            "used": True,
            "weight": 0.6,
            "excluded": None,
        },
        {
            "venue": "binance",
            "symbol": None,
            "price": None,
            "volume_24h": None,
            "age_ms": None,
            "stale": False,
            "source": None,
            "used": False,
            "weight": None,
            "excluded": "missing",
        },
    ],
}


class AggregateVenue(BaseModel):
    """How one venue entered the aggregate."""

    venue: str
    symbol: str | None = Field(description="The pair's name on the venue; null: not listed")
    price: float | None
    volume_24h: float | None = Field(description="24 h volume in the base asset")
    age_ms: int | None
    stale: bool
    source: str | None = Field(description="The feed that delivered it (coinbase_ws, …_rest)")
    used: bool
    weight: float | None = Field(description="Share of the aggregate (0..1) when used")
    excluded: Literal["missing", "stale", "outlier"] | None = Field(
        description="Why the venue was left out: no value, older than STALE_AFTER, or beyond "
        "3 median absolute deviations (and VENUE_DISAGREE_BPS) from the median of ≥ 3 venues"
    )


class Aggregate(BaseModel):
    """The volume-weighted price of the fresh venues, with its work shown."""

    model_config = ConfigDict(json_schema_extra={"example": AGGREGATE_EXAMPLE})

    pair: str
    price: float | None = Field(description="null when no venue can be used")
    volume_24h: float | None
    weighting: Literal["volume", "equal"] = Field(
        description="equal when a used venue reports no volume"
    )
    method: Literal["vwap"] = "vwap"
    flags: list[str] = Field(
        description="sources_disagree: two venues differ by more than VENUE_DISAGREE_BPS"
    )
    venues_used: int
    venues: list[AggregateVenue]


class AggregateResponse(Success):
    """The aggregate of each requested pair."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "status": "success",
                "timestamp": "2026-02-14T10:21:07.123Z",
                "data": [AGGREGATE_EXAMPLE],
            }
        }
    )

    data: list[Aggregate]


AGGREGATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The aggregate of every requested pair (price null: none usable)"},
    400: {
        "description": "A requested pair is not valid or not supported",
        "model": FlatError,
        "content": {
            "application/json": {
                "example": flat_example("UNSUPPORTED_PAIR", "pair DOGE/MOON is not supported")
            }
        },
    },
}
