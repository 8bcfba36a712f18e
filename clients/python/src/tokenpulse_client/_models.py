"""Typed results of the tokenpulse API (plain dataclasses; ``raw`` keeps the whole JSON)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Number = Decimal | int | str


class TokenpulseAPIError(Exception):
    """The service answered with an error: ``status``, ``code`` (e.g. ``UNSUPPORTED_PAIR``)."""

    def __init__(self, status: int, code: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body


class StreamError(Exception):
    """A stream cannot go on: the service refused the subscription or the credentials."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _opt_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    return Decimal(str(value))


@dataclass(frozen=True, slots=True)
class Price:
    """One last traded price with its freshness (``GET /api/v1/ltp``)."""

    pair: str
    amount: Decimal
    source: str | None
    timestamp: str | None
    received_at: str | None
    age_ms: int | None
    stale: bool | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Price:
        """Build from one ``ltp`` entry."""
        return cls(
            pair=str(data["pair"]),
            amount=Decimal(str(data["amount"])),
            source=data.get("source"),
            timestamp=data.get("timestamp"),
            received_at=data.get("received_at"),
            age_ms=data.get("age_ms"),
            stale=data.get("stale"),
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
class PairInfo:
    """A supported pair and its provider names (``GET /api/v1/pairs``)."""

    pair: str
    base: str
    quote: str
    serving_source: str | None
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Health:
    """``GET /health``."""

    status: str
    timestamp: str | None
    version: str | None
    raw: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Token:
    """A token snapshot (``GET /api/v1/tokens[/{id}]``); every other field is in ``raw``."""

    id: str
    symbol: str | None
    name: str | None
    price_usd: Decimal | None
    market_cap_usd: Decimal | None
    volume_24h_usd: Decimal | None
    velocity: Decimal | None
    source: str | None
    stale: bool | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Token:
        """Build from one token object."""
        velocity = data.get("velocity")
        if isinstance(velocity, Mapping):  # {"value": …, …} in the detailed form
            velocity = velocity.get("value")
        return cls(
            id=str(data["id"]),
            symbol=data.get("symbol"),
            name=data.get("name"),
            price_usd=_opt_decimal(data.get("price_usd")),
            market_cap_usd=_opt_decimal(data.get("market_cap_usd")),
            volume_24h_usd=_opt_decimal(data.get("volume_24h_usd")),
            velocity=_opt_decimal(velocity),
            source=data.get("source"),
            stale=data.get("stale"),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class TokenPage:
    """One page of ``GET /api/v1/tokens`` and how to get the next."""

    tokens: list[Token]
    total: int | None
    next: Any
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
    "StreamError",
    "Token",
    "TokenPage",
    "TokenpulseAPIError",
    "Update",
]
