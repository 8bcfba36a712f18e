"""The JSON of a cross-venue aggregate: the price, and how each venue entered it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokenpulse.domain.aggregate import Aggregate
from tokenpulse.domain.pairs import Pair
from tokenpulse.wire.numbers import computed_number, market_number

__all__ = ["aggregate_to_json"]


def aggregate_to_json(
    aggregate: Aggregate, symbols: Mapping[str, Mapping[Pair, str]], *, stale_after: float
) -> dict[str, Any]:
    """``{"pair", "price", "volume_24h", "weighting", "flags", "venues": [...]}``.

    Each venue: its ``symbol`` on that venue (null when it does not list the pair), ``price``,
    ``volume_24h``, ``age_ms``, ``source`` (the feed), ``used``, ``weight`` (0..1 when used)
    and ``excluded`` (``missing``, ``stale`` or ``outlier`` when not).
    """
    venues = []
    for entry in aggregate.venues:
        quote = entry.quote
        venues.append(
            {
                "venue": quote.venue,
                "symbol": symbols.get(quote.venue, {}).get(aggregate.pair),
                "price": market_number(quote.price),
                "volume_24h": market_number(quote.volume),
                "age_ms": quote.age_ms,
                "stale": quote.age_ms is not None and quote.age_ms > stale_after * 1000,
                "source": quote.source,
                "used": entry.used,
                "weight": computed_number(entry.weight),
                "excluded": entry.reason,
            }
        )
    return {
        "pair": str(aggregate.pair),
        "price": market_number(aggregate.price),
        "volume_24h": market_number(aggregate.volume),
        "weighting": aggregate.weighting,
        "method": "vwap",
        "flags": list(aggregate.flags),
        "venues_used": sum(1 for v in aggregate.venues if v.used),
        "venues": venues,
    }
