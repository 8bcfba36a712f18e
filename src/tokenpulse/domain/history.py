"""History values exchanged between the token services and the stores and sources behind them.

Plain data, no I/O: a backfilled :class:`TokenPoint` written to the history store, and a
recorded daily :class:`HistoryRow` (the replay's bundled CoinGecko exports) that seeds it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import NamedTuple


class TokenPoint(NamedTuple):
    """One backfilled token reading (a plain 5-tuple works too)."""

    t: datetime
    price: Decimal | None
    market_cap: Decimal | None
    volume_24h: Decimal | None
    velocity: Decimal | None


class HistoryRow(NamedTuple):
    """One recorded day of a coin: snapshot time, price, market cap and 24 h volume (USD)."""

    at: datetime
    price: Decimal
    market_cap: Decimal | None  # an empty cell in the export (e.g. 2017-04-02)
    volume: Decimal | None
