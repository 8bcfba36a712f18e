"""History values exchanged between the token services and the stores and sources behind them.

Plain data, no I/O: a backfilled :class:`TokenPoint` written to the history store.
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
