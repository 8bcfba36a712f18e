"""The last-traded-price ticker (its JSON is :mod:`tokenpulse.wire.ltp`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)
_ONE_MICROSECOND = timedelta(microseconds=1)


def sample_second(ticker: Ticker) -> int:
    """The whole unix second a reading is filed under in history: the exchange's time, else
    the receive time (SPEC §5.2: one LTP sample per pair per second, the last one wins).

    Exact integer arithmetic (floor), no float rounding at a second's edge.
    """
    return ((ticker.as_of or ticker.received_at) - _EPOCH) // _ONE_SECOND


def sample_micros(ticker: Ticker) -> int:
    """The reading's own time in whole microseconds since the epoch (the time
    :func:`sample_second` floors): which of two readings of one second is the later."""
    return ((ticker.as_of or ticker.received_at) - _EPOCH) // _ONE_MICROSECOND
