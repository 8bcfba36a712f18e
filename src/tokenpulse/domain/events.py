"""Domain events: what sources emit and what the bus carries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.tokens import TokenSnapshot


@dataclass(frozen=True, slots=True)
class TickerUpdated:
    """A source read a new ticker for a pair."""

    ticker: Ticker


@dataclass(frozen=True, slots=True)
class SourceHeartbeat:
    """A source heard from its provider without new data (a heartbeat, a status frame).

    It confirms that the values this source serves are still current.
    """

    source: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TokenUpdated:
    """A new snapshot of a token was accepted."""

    snapshot: TokenSnapshot


DomainEvent = TickerUpdated | SourceHeartbeat | TokenUpdated
