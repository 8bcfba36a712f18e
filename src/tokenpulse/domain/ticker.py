"""The last-traded-price ticker and its freshness."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tokenpulse.domain.numbers import json_number
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.time import isoformat_z


@dataclass(frozen=True, slots=True)
class Ticker:
    """One accepted reading of a pair's market.

    ``last`` is the last trade price exactly as the provider sent it. ``as_of`` is the
    exchange's own time for the reading when it sends one; ``received_at`` is when we read it.
    """

    pair: Pair
    last: Decimal
    source: str
    received_at: datetime
    as_of: datetime | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    volume_24h: Decimal | None = None
    vwap: Decimal | None = None

    def age_ms(self, now: datetime) -> int:
        """Milliseconds since we received this reading (never negative)."""
        return max(0, int((now - self.received_at).total_seconds() * 1000))

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready fields that do not depend on the time of asking."""
        return {
            "pair": str(self.pair),
            "amount": json_number(self.last),
            "timestamp": isoformat_z(self.as_of or self.received_at),
            "source": self.source,
            "as_of": isoformat_z(self.as_of) if self.as_of else None,
            "received_at": isoformat_z(self.received_at),
            "bid": _opt(self.bid),
            "ask": _opt(self.ask),
            "volume_24h": _opt(self.volume_24h),
            "vwap": _opt(self.vwap),
        }


def _opt(value: Decimal | None) -> float | str | None:
    return None if value is None else json_number(value)
