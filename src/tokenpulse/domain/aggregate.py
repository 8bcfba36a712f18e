"""The cross-venue price of a pair, showing its work (SPEC §4.2).

:func:`aggregate_price` takes each venue's latest reading of a pair (price, 24 h volume, age)
and returns the volume-weighted average price of the venues it used, with every venue's
weight and, for each venue left out, why:

* ``missing``: the venue has no value for the pair (never sent one, or does not list it);
* ``stale``: its value is older than ``STALE_AFTER``;
* ``outlier``: with at least 3 fresh venues, its price is more than 3 median absolute
  deviations from the median *and* further from the median than the disagreement tolerance
  (``VENUE_DISAGREE_BPS``). The second condition keeps three venues that agree to a few
  basis points from excluding one for a sub-tick difference (with three points the MAD can
  be tiny).

With exactly 2 fresh venues there is no majority to tell which one is wrong: both are kept
and, when they differ by more than ``VENUE_DISAGREE_BPS``, the result is flagged
``sources_disagree``. Weights are the venues' 24 h base-asset volumes (the same unit on every
venue); when a used venue has no volume, every used venue weighs the same
(``weighting: "equal"``). Pure: no I/O, Decimal arithmetic, the result rounded to 12
significant digits as every computed value is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from statistics import median

from tokenpulse.domain.numbers import round_computed
from tokenpulse.domain.pairs import Pair

__all__ = [
    "MAD_LIMIT",
    "SOURCES_DISAGREE",
    "Aggregate",
    "VenueContribution",
    "VenueQuote",
    "aggregate_price",
]

MAD_LIMIT = Decimal(3)
SOURCES_DISAGREE = "sources_disagree"
_BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class VenueQuote:
    """One venue's latest reading of a pair (``price`` None: the venue has none)."""

    venue: str
    price: Decimal | None = None
    volume: Decimal | None = None
    age_ms: int | None = None
    source: str | None = None  # the feed that delivered it (coinbase_ws, coinbase_rest)


@dataclass(frozen=True, slots=True)
class VenueContribution:
    """How one venue entered the aggregate."""

    quote: VenueQuote
    used: bool
    weight: Decimal | None = None  # share of the aggregate, 0..1, when used
    reason: str | None = None  # missing, stale, outlier when not used


@dataclass(frozen=True, slots=True)
class Aggregate:
    """The aggregate of a pair: ``price`` None when no venue could be used."""

    pair: Pair
    price: Decimal | None
    volume: Decimal | None  # the summed 24 h volume of the used venues (None if unknown)
    weighting: str  # "volume" or "equal"
    venues: tuple[VenueContribution, ...]
    flags: tuple[str, ...] = ()

    @property
    def used(self) -> tuple[VenueContribution, ...]:
        return tuple(v for v in self.venues if v.used)


def aggregate_price(
    pair: Pair,
    quotes: Sequence[VenueQuote],
    *,
    stale_after_ms: int,
    disagree_bps: Decimal,
) -> Aggregate:
    """The volume-weighted price of the fresh, non-outlier venues in ``quotes``."""
    excluded: dict[str, str] = {}
    fresh: list[VenueQuote] = []
    for quote in quotes:
        if quote.price is None or quote.price <= 0:
            excluded[quote.venue] = "missing"
        elif quote.age_ms is None or quote.age_ms > stale_after_ms:
            excluded[quote.venue] = "stale"
        else:
            fresh.append(quote)
    flags: list[str] = []
    if len(fresh) >= 3:
        for venue in _outliers(fresh, disagree_bps):
            excluded[venue] = "outlier"
    elif len(fresh) == 2:
        a, b = (q.price for q in fresh if q.price is not None)
        if abs(a - b) * _BPS / ((a + b) / 2) > disagree_bps:
            flags.append(SOURCES_DISAGREE)
    used = [q for q in fresh if q.venue not in excluded]
    weights, weighting = _weights(used)
    price = _weighted_price(used, weights)
    volumes = [q.volume for q in used if q.volume is not None]
    volume = sum(volumes, Decimal(0)) if used and len(volumes) == len(used) else None
    by_venue = {q.venue: w for q, w in zip(used, weights, strict=True)}
    contributions = tuple(
        VenueContribution(
            quote=q,
            used=q.venue in by_venue,
            weight=round_computed(by_venue[q.venue]) if q.venue in by_venue else None,
            reason=excluded.get(q.venue),
        )
        for q in quotes
    )
    return Aggregate(pair, price, volume, weighting, contributions, tuple(flags))


def _weighted_price(used: Sequence[VenueQuote], weights: Sequence[Decimal]) -> Decimal | None:
    if not used:
        return None
    total = Decimal(0)
    for quote, weight in zip(used, weights, strict=True):
        total += weight * (quote.price or Decimal(0))
    return round_computed(total)


def _outliers(fresh: Sequence[VenueQuote], disagree_bps: Decimal) -> list[str]:
    prices = [q.price for q in fresh if q.price is not None]
    middle = median(prices)
    mad = median([abs(p - middle) for p in prices])
    tolerance = middle * disagree_bps / _BPS
    return [
        q.venue
        for q in fresh
        if q.price is not None
        and abs(q.price - middle) > MAD_LIMIT * mad
        and abs(q.price - middle) > tolerance
    ]


def _weights(used: Sequence[VenueQuote]) -> tuple[list[Decimal], str]:
    volumes = [q.volume for q in used]
    if used and all(v is not None and v > 0 for v in volumes):
        total = sum((v for v in volumes if v is not None), Decimal(0))
        return [v / total for v in volumes if v is not None], "volume"
    count = Decimal(len(used)) if used else Decimal(1)
    return [Decimal(1) / count for _ in used], "equal"
