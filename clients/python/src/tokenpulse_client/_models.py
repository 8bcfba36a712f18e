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


def to_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | Decimal) and not isinstance(value, bool) else None


def to_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def to_str(value: Any) -> str | None:
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
            source=to_str(data.get("source")),
            timestamp=to_datetime(data.get("timestamp")),
            as_of=to_datetime(data.get("as_of")),
            received_at=to_datetime(data.get("received_at")),
            bid=to_decimal(data.get("bid")),
            ask=to_decimal(data.get("ask")),
            volume_24h=to_decimal(data.get("volume_24h")),
            vwap=to_decimal(data.get("vwap")),
            age_ms=to_int(data.get("age_ms")),
            stale=to_bool(data.get("stale")),
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
    "LtpResult",
    "PairError",
    "PairInfo",
    "Price",
    "Readiness",
    "RefreshResult",
    "Update",
    "to_datetime",
    "to_decimal",
]
