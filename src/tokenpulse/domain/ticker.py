"""The last-traded-price ticker (its JSON is :mod:`tokenpulse.wire.ltp`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tokenpulse.domain.pairs import Pair


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
