"""Models of the token endpoints: Token, Pagination, Trend, Velocity, HistoryPoint."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tokenpulse.api.schemas.envelope import Success
from tokenpulse.api.schemas.ltp import MarketNumber

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


class Quality(BaseModel):
    """Quality flags are data (SPEC §4.5), with the market cap velocity was computed from."""

    flags: list[str] = Field(description="market_cap_derived, low_market_cap, stale, …")
    market_cap_used: MarketNumber | None = None
    market_cap_derived: bool = False


class Token(BaseModel):
    """A token snapshot (SPEC §4.3); ``detail=basic`` sends only the required fields."""

    model_config = ConfigDict(json_schema_extra={"example": TOKEN_EXAMPLE})

    id: str = Field(description="Our stable lower-case slug, whichever provider serves it")
    symbol: str
    name: str
    cmc_id: int | None = None
    coingecko_id: str | None = None
    rank: int | None
    price_usd: MarketNumber | None
    market_cap_usd: MarketNumber | None
    volume_24h_usd: MarketNumber | None
    circulating_supply: MarketNumber | None = None
    total_supply: MarketNumber | None = None
    max_supply: MarketNumber | None = None
    percent_change_1h: MarketNumber | None = None
    percent_change_24h: MarketNumber | None = None
    percent_change_7d: MarketNumber | None = None
    velocity: float | None = Field(description="volume_24h_usd / market_cap_usd, or null")
    source: str
    as_of: str | None = Field(description="The provider's last_updated")
    received_at: str | None = None
    age_ms: int
    stale: bool
    quality: Quality | None = None


class Pagination(BaseModel):
    """Where this page is in the whole list."""

    total: int
    limit: int
    start: int = Field(description="1-based position of the first item")
    next: str | None = Field(description="The cursor of the next page, or null on the last")


class TokenList(Success):
    """A page of tokens."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "status": "success",
                "timestamp": "2026-02-14T10:21:07.123Z",
                "data": [TOKEN_EXAMPLE],
                "pagination": {"total": 100, "limit": 1, "start": 1, "next": "czoy"},
                "meta": {"source": "coingecko", "processing_time_ms": 0.41, "cache": "hit"},
            }
        }
    )

    data: list[Token]
    pagination: Pagination


class Trend(BaseModel):
    """Velocity now vs the stored value nearest to now − window (SPEC §4.4)."""

    change_pct: float | None
    direction: Literal["increasing", "decreasing", "stable"] | None
    mean: float | None
    reference_velocity: float | None = None
    reference_at: str | None = None
    reason: str | None = Field(None, description="Why the values are null: insufficient_history")


class CompactSeries(BaseModel):
    """``history=…``: rows of ``fields`` values."""

    granularity: str
    fields: list[str] = Field(examples=[["t", "price", "velocity"]])
    points: list[list[Any]]


class TokenDetail(Token):
    """One token with its trends (full detail) and, with ``history=…``, a compact series."""

    trends: dict[str, Trend] | None = None
    history: CompactSeries | None = None


class TokenResponse(Success):
    """One token."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "status": "success",
                "timestamp": "2026-02-14T10:21:07.123Z",
                "data": {
                    **TOKEN_EXAMPLE,
                    "trends": {
                        "1h": {"change_pct": 2.1, "direction": "increasing", "mean": 0.0468},
                        "7d": {
                            "change_pct": None,
                            "direction": None,
                            "mean": None,
                            "reason": "insufficient_history",
                        },
                    },
                },
                "meta": {"source": "coingecko", "processing_time_ms": 0.41, "cache": "miss"},
            }
        }
    )

    data: TokenDetail


class VelocityWindow(BaseModel):
    """The velocity series over ``window``: ``[time, velocity]`` points."""

    window: str
    granularity: str
    points: list[list[Any]]


class Velocity(BaseModel):
    """Velocity, its formula and inputs, flags, trends and a series."""

    id: str
    symbol: str
    velocity: float | None
    formula: str = "volume_24h_usd / market_cap_usd"
    inputs: dict[str, MarketNumber | None]
    flags: list[str]
    source: str
    as_of: str | None
    age_ms: int
    stale: bool
    trends: dict[str, Trend]
    window: VelocityWindow


_TREND_EXAMPLE: dict[str, Any] = {
    "change_pct": 2.1,
    "direction": "increasing",
    "mean": 0.0468,
    "reference_velocity": 0.0464,
    "reference_at": "2026-02-14T09:21:00.000Z",
    "reason": None,
}


class VelocityResponse(Success):
    """A token's velocity."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "status": "success",
                "timestamp": "2026-02-14T10:21:07.123Z",
                "data": {
                    "id": "bitcoin",
                    "symbol": "BTC",
                    "velocity": 0.04742,
                    "formula": "volume_24h_usd / market_cap_usd",
                    "inputs": {
                        "volume_24h_usd": 30452416578,
                        "market_cap_usd": 642121487424,
                        "market_cap_used": 642121487424,
                        "price_usd": 34226.35,
                        "circulating_supply": 18746750,
                    },
                    "flags": [],
                    "source": "coingecko",
                    "as_of": "2026-02-14T10:20:22.123Z",
                    "age_ms": 1204,
                    "stale": False,
                    "trends": {"1h": _TREND_EXAMPLE},
                    "window": {
                        "window": "24h",
                        "granularity": "1m",
                        "points": [["2026-02-14T10:20:00.000Z", 0.04742]],
                    },
                },
                "meta": {"source": "coingecko", "processing_time_ms": 3.2, "cache": "miss"},
            }
        }
    )

    data: Velocity


class HistoryPoint(BaseModel):
    """One point: raw samples have price/market_cap/…; rollups open/high/low/close/…."""

    t: str
    price: MarketNumber | None = None
    open: MarketNumber | None = None
    high: MarketNumber | None = None
    low: MarketNumber | None = None
    close: MarketNumber | None = None
    market_cap: MarketNumber | None = None
    volume_24h: MarketNumber | None = None
    circulating_supply: MarketNumber | None = None
    velocity: float | None = None
    samples: int | None = None
    source: str | None = None
    origin: str | None = Field(None, description="live or backfill")


class Gap(BaseModel):
    """A stretch of the range with no data."""

    from_: str = Field(alias="from")
    to: str


class History(BaseModel):
    """A token's history in a range, at a granularity, with the gaps left in it."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    from_: str = Field(alias="from")
    to: str
    granularity: str
    points: list[HistoryPoint]
    count: int
    gaps: list[Gap]


class HistoryResponse(Success):
    """A token's history."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "status": "success",
                "timestamp": "2026-02-14T10:21:07.123Z",
                "data": {
                    "id": "bitcoin",
                    "from": "2026-02-14T09:00:00.000Z",
                    "to": "2026-02-14T10:00:00.000Z",
                    "granularity": "1h",
                    "points": [
                        {
                            "t": "2026-02-14T09:00:00.000Z",
                            "open": 68100.5,
                            "high": 68990.1,
                            "low": 68011.0,
                            "close": 68923.4,
                            "market_cap": 1356000000000,
                            "volume_24h": 30452416578,
                            "velocity": 0.02245,
                            "samples": 60,
                        }
                    ],
                    "count": 1,
                    "gaps": [],
                },
                "meta": {"source": "coingecko", "processing_time_ms": 2.1, "cache": "miss"},
            }
        }
    )

    data: History
