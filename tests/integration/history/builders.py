"""Domain values for history tests: token snapshots and tickers with chosen numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.tokens import TokenIdentity, TokenQuote, TokenSnapshot

T0 = datetime(2023, 10, 10, 12, 0, tzinfo=UTC)
BTC_USD = Pair("BTC", "USD")
ETH_USD = Pair("ETH", "USD")


def snapshot(
    at: datetime,
    price: str | None,
    *,
    token_id: str = "bitcoin",  # noqa: S107 - a token id, not a credential
    market_cap: str | None = "533365938838.0774",
    volume: str | None = "14878768683.005728",
    supply: str | None = "19500000",
    velocity: str | None = "0.0279",
    source: str = "coingecko",
) -> TokenSnapshot:
    """A snapshot filed at ``at`` (its ``as_of``), received a moment later."""
    quote = TokenQuote(
        source=source,
        symbol="BTC",
        name="Bitcoin",
        received_at=at,
        price_usd=_dec(price),
        market_cap_usd=_dec(market_cap),
        volume_24h_usd=_dec(volume),
        circulating_supply=_dec(supply),
        as_of=at,
    )
    identity = TokenIdentity(id=token_id, symbol="BTC", name="Bitcoin", coingecko_id=token_id)
    return TokenSnapshot(
        identity=identity,
        quote=quote,
        market_cap_used=_dec(market_cap),
        velocity=_dec(velocity),
    )


def ticker(at: datetime, last: str, *, pair: Pair = BTC_USD, source: str = "kraken_ws") -> Ticker:
    """An LTP reading received at ``at`` (no exchange time, as Kraken's ticker)."""
    return Ticker(pair=pair, last=Decimal(last), source=source, received_at=at)


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)
