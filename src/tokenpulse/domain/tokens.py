"""Token metrics: what a provider says about a token, who the token is, and the snapshot we serve.

A provider parser yields :class:`TokenQuote` (the provider's own ids and numbers, exact
decimals); :mod:`tokenpulse.domain.identity` maps it to a :class:`TokenIdentity` (our stable
slug ``id``); :func:`tokenpulse.domain.velocity.build_snapshot` turns both into the
:class:`TokenSnapshot` every endpoint and stream serves, with velocity and quality flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

#: Quality flags (SPEC §4.4, §4.5). Flags are data, not log lines.
FLAG_MARKET_CAP_DERIVED = "market_cap_derived"
FLAG_MARKET_CAP_UNAVAILABLE = "market_cap_unavailable"
FLAG_VOLUME_UNAVAILABLE = "volume_unavailable"
FLAG_LOW_MARKET_CAP = "low_market_cap"
FLAG_VELOCITY_OUTLIER = "velocity_outlier"
FLAG_STALE = "stale"
FLAG_PRICE_OUTLIER = "price_outlier"
FLAG_VOLUME_SPIKE = "volume_spike"
FLAG_SOURCES_DISAGREE = "sources_disagree"


@dataclass(frozen=True, slots=True)
class TokenQuote:
    """One provider's reading of one token, as the provider sent it (no identity applied)."""

    source: str  # "coinmarketcap", "coingecko", "replay"
    symbol: str  # upper-case ticker symbol as sent (not unique!)
    name: str
    received_at: datetime
    cmc_id: int | None = None
    cmc_slug: str | None = None
    coingecko_id: str | None = None
    rank: int | None = None
    price_usd: Decimal | None = None
    market_cap_usd: Decimal | None = None
    volume_24h_usd: Decimal | None = None
    circulating_supply: Decimal | None = None
    total_supply: Decimal | None = None
    max_supply: Decimal | None = None
    percent_change_1h: Decimal | None = None
    percent_change_24h: Decimal | None = None
    percent_change_7d: Decimal | None = None
    as_of: datetime | None = None  # provider's last_updated


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """Who a token is, whichever provider serves it. ``id`` is our lower-case slug."""

    id: str
    symbol: str
    name: str
    cmc_id: int | None = None
    coingecko_id: str | None = None


@dataclass(frozen=True, slots=True)
class TokenSnapshot:
    """The served state of a token: identity, provider numbers, velocity and quality flags.

    ``market_cap_usd`` is what the provider sent; ``market_cap_used`` is what velocity used
    (the provider's, or price × circulating supply with ``market_cap_derived``).
    """

    identity: TokenIdentity
    quote: TokenQuote
    market_cap_used: Decimal | None
    velocity: Decimal | None
    flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def id(self) -> str:
        return self.identity.id

    @property
    def source(self) -> str:
        return self.quote.source


@dataclass(frozen=True, slots=True)
class Trend:
    """Velocity now versus the stored value nearest to ``now - window``."""

    window: str  # "1h", "4h", "12h", "7d"
    change_pct: Decimal
    direction: str  # "increasing", "decreasing", "stable"
    mean: Decimal | None
    reference_velocity: Decimal
    reference_at: datetime
