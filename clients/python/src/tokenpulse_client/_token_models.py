"""Typed token results: metrics, trends, velocity and history (see ``_models`` for the
conventions: ``Decimal`` values, UTC datetimes, ``raw`` keeps the whole JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tokenpulse_client._models import to_bool, to_datetime, to_decimal, to_int, to_str


@dataclass(frozen=True, slots=True)
class Token:
    """A token snapshot (``GET /api/v1/tokens[/{id}]``); every other field is in ``raw``."""

    id: str
    symbol: str | None
    name: str | None
    rank: int | None
    price_usd: Decimal | None
    market_cap_usd: Decimal | None
    volume_24h_usd: Decimal | None
    circulating_supply: Decimal | None
    total_supply: Decimal | None
    max_supply: Decimal | None
    percent_change_1h: Decimal | None
    percent_change_24h: Decimal | None
    percent_change_7d: Decimal | None
    velocity: Decimal | None
    source: str | None
    as_of: datetime | None
    received_at: datetime | None
    age_ms: int | None
    stale: bool | None
    flags: tuple[str, ...]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Token:
        """Build from one token object (basic or full detail)."""
        velocity = data.get("velocity")
        if isinstance(velocity, Mapping):  # {"value": …, …} in the detailed form
            velocity = velocity.get("value")
        quality = data.get("quality")
        flags = quality.get("flags") if isinstance(quality, Mapping) else data.get("flags")
        return cls(
            id=str(data["id"]),
            symbol=to_str(data.get("symbol")),
            name=to_str(data.get("name")),
            rank=to_int(data.get("rank")),
            price_usd=to_decimal(data.get("price_usd")),
            market_cap_usd=to_decimal(data.get("market_cap_usd")),
            volume_24h_usd=to_decimal(data.get("volume_24h_usd")),
            circulating_supply=to_decimal(data.get("circulating_supply")),
            total_supply=to_decimal(data.get("total_supply")),
            max_supply=to_decimal(data.get("max_supply")),
            percent_change_1h=to_decimal(data.get("percent_change_1h")),
            percent_change_24h=to_decimal(data.get("percent_change_24h")),
            percent_change_7d=to_decimal(data.get("percent_change_7d")),
            velocity=to_decimal(velocity),
            source=to_str(data.get("source")),
            as_of=to_datetime(data.get("as_of")),
            received_at=to_datetime(data.get("received_at")),
            age_ms=to_int(data.get("age_ms")),
            stale=to_bool(data.get("stale")),
            flags=tuple(str(f) for f in flags or ()),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class TokenPage:
    """One page of ``GET /api/v1/tokens`` and the cursor of the next (``None`` at the end)."""

    tokens: list[Token]
    total: int | None
    limit: int | None
    start: int | None
    next: str | None
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Trend:
    """Velocity now against the value ``window`` ago (``None`` fields: see ``reason``)."""

    window: str
    change_pct: Decimal | None
    direction: str | None
    mean: Decimal | None
    reference_velocity: Decimal | None
    reference_at: datetime | None
    reason: str | None

    @classmethod
    def from_json(cls, window: str, data: Mapping[str, Any]) -> Trend:
        """Build from one entry of ``trends``."""
        return cls(
            window=window,
            change_pct=to_decimal(data.get("change_pct")),
            direction=to_str(data.get("direction")),
            mean=to_decimal(data.get("mean")),
            reference_velocity=to_decimal(data.get("reference_velocity")),
            reference_at=to_datetime(data.get("reference_at")),
            reason=to_str(data.get("reason")),
        )


@dataclass(frozen=True, slots=True)
class Velocity:
    """``GET /api/v1/tokens/{id}/velocity``: the value, its inputs, trends and recent series."""

    id: str
    symbol: str | None
    velocity: Decimal | None
    formula: str | None
    inputs: Mapping[str, Decimal | None]
    flags: tuple[str, ...]
    source: str | None
    as_of: datetime | None
    age_ms: int | None
    stale: bool | None
    trends: Mapping[str, Trend]
    window: list[tuple[datetime, Decimal | None]]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Velocity:
        """Build from the ``data`` object."""
        window = data.get("window") or {}
        points = window.get("points") if isinstance(window, Mapping) else None
        series: list[tuple[datetime, Decimal | None]] = []
        for t, value in points or []:
            when = to_datetime(t)
            if when is not None:
                series.append((when, to_decimal(value)))
        return cls(
            id=str(data["id"]),
            symbol=to_str(data.get("symbol")),
            velocity=to_decimal(data.get("velocity")),
            formula=to_str(data.get("formula")),
            inputs={k: to_decimal(v) for k, v in (data.get("inputs") or {}).items()},
            flags=tuple(str(f) for f in data.get("flags") or ()),
            source=to_str(data.get("source")),
            as_of=to_datetime(data.get("as_of")),
            age_ms=to_int(data.get("age_ms")),
            stale=to_bool(data.get("stale")),
            trends={w: Trend.from_json(w, t or {}) for w, t in (data.get("trends") or {}).items()},
            window=series,
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One bucket of a token's history, or one raw sample (then ``close`` is its price)."""

    t: datetime
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    market_cap: Decimal | None
    volume_24h: Decimal | None
    velocity: Decimal | None
    samples: int | None
    source: str | None
    origin: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HistoryPoint:
        """Build from one entry of ``points``."""
        when = to_datetime(data.get("t"))
        if when is None:
            raise ValueError(f"a history point without a time: {data!r}")
        close = data.get("close", data.get("price"))
        return cls(
            t=when,
            open=to_decimal(data.get("open")),
            high=to_decimal(data.get("high")),
            low=to_decimal(data.get("low")),
            close=to_decimal(close),
            market_cap=to_decimal(data.get("market_cap")),
            volume_24h=to_decimal(data.get("volume_24h")),
            velocity=to_decimal(data.get("velocity")),
            samples=to_int(data.get("samples")),
            source=to_str(data.get("source")),
            origin=to_str(data.get("origin")),
        )


@dataclass(frozen=True, slots=True)
class History:
    """``GET /api/v1/tokens/{id}/history``: points in time order and the gaps left."""

    id: str
    start: datetime | None
    end: datetime | None
    granularity: str
    points: list[HistoryPoint]
    gaps: list[tuple[datetime, datetime]]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> History:
        """Build from the ``data`` object."""
        gaps = []
        for gap in data.get("gaps") or []:
            begin, finish = to_datetime(gap.get("from")), to_datetime(gap.get("to"))
            if begin is not None and finish is not None:
                gaps.append((begin, finish))
        return cls(
            id=str(data["id"]),
            start=to_datetime(data.get("from")),
            end=to_datetime(data.get("to")),
            granularity=str(data.get("granularity")),
            points=[HistoryPoint.from_json(p) for p in data.get("points") or []],
            gaps=gaps,
            raw=data,
        )


__all__ = ["History", "HistoryPoint", "Token", "TokenPage", "Trend", "Velocity"]
