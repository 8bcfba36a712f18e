"""Settings of the exchange venues and the cross-venue aggregate (SPEC §2, §3.3, §4.2).

``LTP_PRIMARY`` names the venue ``GET /api/v1/ltp`` serves (``kraken``, ``coinbase``,
``binance``) or ``aggregate``; ``LTP_FALLBACK`` what serves a pair while the primary venue
has no fresh value (``aggregate``, another venue, or ``none``). ``QUOTE_EQUIVALENTS``
(``USDT=USD``) lets a market quoted in USDT serve a USD pair on a venue without USD markets;
by default USDT is not USD.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from tokenpulse.domain.pairs import parse_quote_equivalents

VENUES = ("kraken", "coinbase", "binance")
LtpPrimary = Literal["kraken", "coinbase", "binance", "aggregate"]
LtpFallback = Literal["aggregate", "kraken", "coinbase", "binance", "none"]


def check_quote_equivalents(values: list[str]) -> list[str]:
    """Each item is ``ALIAS=QUOTE``; normalised to upper case."""
    mapping = parse_quote_equivalents(values)
    return [f"{alias}={quote}" for alias, quote in mapping.items()]


def check_venue_choice(sources: Sequence[str], primary: str, fallback: str) -> list[str]:
    """Problems with LTP_PRIMARY/LTP_FALLBACK given the enabled SOURCES (one line each)."""
    venues = [name for name in sources if name in VENUES]
    if not venues:
        return []  # no exchange venue (replay, or market data only): nothing to choose
    problems: list[str] = []
    enabled = ", ".join(venues)
    if primary != "aggregate" and primary not in venues:
        problems.append(
            f"LTP_PRIMARY: {primary!r} is not enabled in SOURCES (enabled venues: {enabled}): "
            f"set LTP_PRIMARY to one of them or to aggregate"
        )
    if fallback not in ("aggregate", "none") and fallback not in venues:
        problems.append(
            f"LTP_FALLBACK: {fallback!r} is not enabled in SOURCES (enabled venues: {enabled}): "
            "use aggregate, none or an enabled venue"
        )
    if fallback == primary and fallback != "aggregate":
        problems.append(f"LTP_FALLBACK: {fallback!r} is the primary venue itself")
    return problems
