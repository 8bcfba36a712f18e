"""Typed results of the tokenpulse API: frozen dataclasses, ``raw`` keeps the whole JSON.

Market values are :class:`~decimal.Decimal` (exact when the client asks for
``numbers="string"``, else the decimal of the JSON number as sent); times are timezone-aware
:class:`~datetime.datetime` in UTC; a missing value is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any


def to_decimal(value: Any) -> Decimal | None:
    """A JSON number or decimal string as a Decimal; ``None`` for null or anything else."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def to_datetime(value: Any) -> datetime | None:
    """An ISO 8601 time (``…Z``) as an aware datetime; ``None`` for null."""
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | Decimal) and not isinstance(value, bool) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Price:
    """One last traded price with its freshness (``GET /api/v1/ltp``)."""

    pair: str
    amount: Decimal
    source: str | None
    timestamp: datetime | None
    as_of: datetime | None
    received_at: datetime | None
    bid: Decimal | None
    ask: Decimal | None
    volume_24h: Decimal | None
    vwap: Decimal | None
    age_ms: int | None
    stale: bool | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Price:
        """Build from one ``ltp`` entry."""
        amount = to_decimal(data.get("amount"))
        if amount is None:
            raise ValueError(f"an ltp entry without an amount: {data!r}")
        return cls(
            pair=str(data["pair"]),
            amount=amount,
            source=_str(data.get("source")),
            timestamp=to_datetime(data.get("timestamp")),
            as_of=to_datetime(data.get("as_of")),
            received_at=to_datetime(data.get("received_at")),
            bid=to_decimal(data.get("bid")),
            ask=to_decimal(data.get("ask")),
            volume_24h=to_decimal(data.get("volume_24h")),
            vwap=to_decimal(data.get("vwap")),
            age_ms=_int(data.get("age_ms")),
            stale=_bool(data.get("stale")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class PairError:
    """Why one requested pair has no price (206 answers)."""

    pair: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class LtpResult:
    """Prices in request order, and the pairs that failed."""

    prices: list[Price]
    errors: list[PairError]

    def __getitem__(self, pair: str) -> Price:
        for price in self.prices:
            if price.pair == pair:
                return price
        raise KeyError(pair)


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """``POST /api/v1/ltp/refresh``: the pairs fetched from the provider."""

    message: str
    pairs: list[str]
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class PairInfo:
    """A supported pair, its provider names and who serves it (``GET /api/v1/pairs``)."""

    pair: str
    base: str
    quote: str
    serving_source: str | None
    providers: Mapping[str, Any]
    aggregate: Mapping[str, Any] | None
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Health:
    """``GET /health``."""

    status: str
    timestamp: datetime | None
    version: str | None
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Readiness:
    """``GET /ready``: ``ready`` is False (status ``unhealthy``) when a dependency fails."""

    status: str
    ready: bool
    timestamp: datetime | None
    services: Mapping[str, Any]
    errors: list[Any]
    raw: Mapping[str, Any] = field(repr=False)


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
            symbol=_str(data.get("symbol")),
            name=_str(data.get("name")),
            rank=_int(data.get("rank")),
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
            source=_str(data.get("source")),
            as_of=to_datetime(data.get("as_of")),
            received_at=to_datetime(data.get("received_at")),
            age_ms=_int(data.get("age_ms")),
            stale=_bool(data.get("stale")),
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
            direction=_str(data.get("direction")),
            mean=to_decimal(data.get("mean")),
            reference_velocity=to_decimal(data.get("reference_velocity")),
            reference_at=to_datetime(data.get("reference_at")),
            reason=_str(data.get("reason")),
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
            symbol=_str(data.get("symbol")),
            velocity=to_decimal(data.get("velocity")),
            formula=_str(data.get("formula")),
            inputs={k: to_decimal(v) for k, v in (data.get("inputs") or {}).items()},
            flags=tuple(str(f) for f in data.get("flags") or ()),
            source=_str(data.get("source")),
            as_of=to_datetime(data.get("as_of")),
            age_ms=_int(data.get("age_ms")),
            stale=_bool(data.get("stale")),
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
            samples=_int(data.get("samples")),
            source=_str(data.get("source")),
            origin=_str(data.get("origin")),
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


@dataclass(frozen=True, slots=True)
class Update:
    """One stream update: the merged full ``state`` of a key after this message.

    ``kind`` is ``"pair"`` or ``"token"``; ``type`` is ``"snapshot"`` (after (re)subscribing)
    or ``"delta"``; ``changes`` holds the fields this message changed (everything for a
    snapshot); ``ts`` is the server's send time in ms since the epoch.
    """

    kind: str
    id: str
    type: str
    seq: int
    ts: int | None
    changes: Mapping[str, Any]
    state: Mapping[str, Any]


__all__ = [
    "Health",
    "History",
    "HistoryPoint",
    "LtpResult",
    "PairError",
    "PairInfo",
    "Price",
    "Readiness",
    "RefreshResult",
    "Token",
    "TokenPage",
    "Trend",
    "Update",
    "Velocity",
    "to_datetime",
    "to_decimal",
]
