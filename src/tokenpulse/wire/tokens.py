"""Token snapshots and velocity trends as JSON-ready dicts (SPEC §4.3, §4.4, §4.6).

Numbers go through :func:`~tokenpulse.domain.numbers.json_number`, so a provider value comes
out digit for digit (a JSON number when a float64 keeps every digit, else a string); times are
ISO 8601 UTC with ``Z``. Freshness (``age_ms``, ``stale``) is computed against the ``now`` the
caller passes, so a cached snapshot is always served with its current age. Nothing here can
produce NaN or Infinity: a non-finite number is written as ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tokenpulse.domain.errors import InvalidParameter
from tokenpulse.domain.numbers import json_number
from tokenpulse.domain.time import isoformat_z
from tokenpulse.domain.tokens import FLAG_MARKET_CAP_DERIVED, FLAG_STALE, TokenSnapshot, Trend
from tokenpulse.domain.trends import REASON_INSUFFICIENT_HISTORY, trend_reason

DETAIL_FULL = "full"
DETAIL_BASIC = "basic"
DETAILS: tuple[str, ...] = (DETAIL_BASIC, DETAIL_FULL)

#: The keys of a ``detail=basic`` snapshot, in output order.
BASIC_FIELDS: tuple[str, ...] = (
    "id",
    "symbol",
    "name",
    "rank",
    "price_usd",
    "market_cap_usd",
    "volume_24h_usd",
    "velocity",
    "source",
    "as_of",
    "age_ms",
    "stale",
)

_MILLISECOND = timedelta(milliseconds=1)
# Decimal exponents a float64 holds as a normal number (about 2.2e-308 to 1.8e308).
_FLOAT_MIN_EXPONENT = -307
_FLOAT_MAX_EXPONENT = 307


def number_to_json(value: Decimal | None) -> float | str | None:
    """A Decimal as JSON: digit-exact number (or string), ``None`` for missing or non-finite.

    A magnitude a float64 cannot hold (it would become Infinity or 0.0) is written as a
    string in scientific notation instead.
    """
    if value is None or not value.is_finite():
        return None
    if not value.is_zero() and not _FLOAT_MIN_EXPONENT <= value.adjusted() <= _FLOAT_MAX_EXPONENT:
        return str(value)
    return json_number(value)


def time_to_json(moment: datetime | None) -> str | None:
    """An aware datetime as ISO 8601 UTC with ``Z`` (``None`` stays ``None``)."""
    return isoformat_z(moment) if moment is not None else None


def age_ms(received_at: datetime, now: datetime) -> int:
    """Whole milliseconds since ``received_at`` (0 when the clocks disagree the other way)."""
    return max(0, (now - received_at) // _MILLISECOND)


def snapshot_to_json(
    snapshot: TokenSnapshot,
    *,
    now: datetime,
    stale_after: float,
    detail: str = DETAIL_FULL,
) -> dict[str, Any]:
    """The served form of a token snapshot (SPEC §4.3); ``detail="basic"`` is a subset.

    ``stale`` (and the ``stale`` quality flag) reflect ``now``, not the time the snapshot
    was built. Raises InvalidParameter for an unknown ``detail``.
    """
    if detail not in DETAILS:
        raise InvalidParameter(
            f"detail must be one of {', '.join(DETAILS)}, got {detail!r}", parameter="detail"
        )
    identity, quote = snapshot.identity, snapshot.quote
    elapsed = now - quote.received_at
    stale = elapsed.total_seconds() > stale_after
    if detail == DETAIL_BASIC:
        return {
            "id": identity.id,
            "symbol": identity.symbol,
            "name": identity.name,
            "rank": quote.rank,
            "price_usd": number_to_json(quote.price_usd),
            "market_cap_usd": number_to_json(quote.market_cap_usd),
            "volume_24h_usd": number_to_json(quote.volume_24h_usd),
            "velocity": number_to_json(snapshot.velocity),
            "source": quote.source,
            "as_of": time_to_json(quote.as_of),
            "age_ms": age_ms(quote.received_at, now),
            "stale": stale,
        }
    flags = set(snapshot.flags) - {FLAG_STALE}
    if stale:
        flags.add(FLAG_STALE)
    return {
        "id": identity.id,
        "symbol": identity.symbol,
        "name": identity.name,
        "cmc_id": identity.cmc_id,
        "coingecko_id": identity.coingecko_id,
        "rank": quote.rank,
        "price_usd": number_to_json(quote.price_usd),
        "market_cap_usd": number_to_json(quote.market_cap_usd),
        "volume_24h_usd": number_to_json(quote.volume_24h_usd),
        "circulating_supply": number_to_json(quote.circulating_supply),
        "total_supply": number_to_json(quote.total_supply),
        "max_supply": number_to_json(quote.max_supply),
        "percent_change_1h": number_to_json(quote.percent_change_1h),
        "percent_change_24h": number_to_json(quote.percent_change_24h),
        "percent_change_7d": number_to_json(quote.percent_change_7d),
        "velocity": number_to_json(snapshot.velocity),
        "source": quote.source,
        "as_of": time_to_json(quote.as_of),
        "received_at": time_to_json(quote.received_at),
        "age_ms": age_ms(quote.received_at, now),
        "stale": stale,
        "quality": {
            "flags": sorted(flags),
            "market_cap_used": number_to_json(snapshot.market_cap_used),
            "market_cap_derived": FLAG_MARKET_CAP_DERIVED in snapshot.flags,
        },
    }


def trend_to_json(trend: Trend | None, reason: str | None = None) -> dict[str, Any]:
    """One velocity trend; when ``trend`` is ``None`` every value is ``null`` and ``reason``
    (default ``insufficient_history``) says why. The keys are the same either way."""
    if trend is None:
        return {
            "change_pct": None,
            "direction": None,
            "mean": None,
            "reference_velocity": None,
            "reference_at": None,
            "reason": reason or REASON_INSUFFICIENT_HISTORY,
        }
    return {
        "change_pct": number_to_json(trend.change_pct),
        "direction": trend.direction,
        "mean": number_to_json(trend.mean),
        "reference_velocity": number_to_json(trend.reference_velocity),
        "reference_at": time_to_json(trend.reference_at),
        "reason": None,
    }


def trends_to_json(
    trends: Mapping[str, Trend | None], current: Decimal | None
) -> dict[str, dict[str, Any]]:
    """Every window of :func:`~tokenpulse.domain.velocity.compute_trends`, keyed by window,
    each with the reason it is missing (``current`` is the velocity the trends compare)."""
    return {
        window: trend_to_json(trend, trend_reason(current, trend))
        for window, trend in trends.items()
    }
