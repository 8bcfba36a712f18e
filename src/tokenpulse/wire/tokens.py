"""Token snapshots and velocity trends as JSON, both ways, and the view that owns the bytes
(SPEC §4.3, §4.4, §4.6).

Market values (:data:`TOKEN_MARKET_FIELDS`) are JSON numbers by default and the provider's
exact decimal strings on request (``numbers=string``); velocity and the trends are numbers
rounded to the computed digits, always (:mod:`tokenpulse.wire.numbers`). Times are ISO 8601
UTC with ``Z``. Nothing here can produce NaN or Infinity: such a number is written as ``null``.

An accepted snapshot is serialised once, into a :class:`TokenView` holding both forms
(:class:`TokenJson`): everything but its freshness (``age_ms``, ``stale`` and the ``stale``
quality flag), which a request splices in for its own instant (:meth:`TokenView.render`).
:attr:`TokenView.body` is the value as the bus carries it, in the exact-string form so a
replica keeps every digit; :func:`snapshot_from_json` reads either form back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from tokenpulse.domain.errors import InvalidParameter
from tokenpulse.domain.freshness import age_ms, is_stale
from tokenpulse.domain.time import isoformat_z, parse_iso
from tokenpulse.domain.tokens import (
    FLAG_MARKET_CAP_DERIVED,
    FLAG_STALE,
    TokenIdentity,
    TokenQuote,
    TokenSnapshot,
    Trend,
)
from tokenpulse.domain.trends import REASON_INSUFFICIENT_HISTORY, trend_reason
from tokenpulse.wire.numbers import computed_number, market_value, number_from_json

DETAIL_FULL = "full"
DETAIL_BASIC = "basic"
DETAILS: tuple[str, ...] = (DETAIL_BASIC, DETAIL_FULL)

#: The market values of a snapshot (``quality.market_cap_used`` too): the provider's decimals.
TOKEN_MARKET_FIELDS: frozenset[str] = frozenset(
    {
        "price_usd",
        "market_cap_usd",
        "volume_24h_usd",
        "circulating_supply",
        "total_supply",
        "max_supply",
        "percent_change_1h",
        "percent_change_24h",
        "percent_change_7d",
    }
)
#: The market values inside a snapshot's ``quality`` object.
QUALITY_MARKET_FIELDS: frozenset[str] = frozenset({"market_cap_used"})

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


def time_to_json(moment: datetime | None) -> str | None:
    """An aware datetime as ISO 8601 UTC with ``Z`` (``None`` stays ``None``)."""
    return isoformat_z(moment) if moment is not None else None


def snapshot_to_json(
    snapshot: TokenSnapshot,
    *,
    now: datetime,
    stale_after: float,
    detail: str = DETAIL_FULL,
    strings: bool = False,
) -> dict[str, Any]:
    """The served form of a token snapshot at ``now`` (SPEC §4.3); ``detail="basic"`` is a
    subset; ``strings``: market values as exact decimal strings.

    ``age_ms``, ``stale`` (and the ``stale`` quality flag) reflect ``now``, not the time the
    snapshot was built. Raises InvalidParameter for an unknown ``detail``.
    """
    if detail not in DETAILS:
        raise InvalidParameter(
            f"detail must be one of {', '.join(DETAILS)}, got {detail!r}", parameter="detail"
        )
    age = age_ms(snapshot.quote.received_at.timestamp(), now.timestamp())
    stale = is_stale(age, stale_after)
    fields = _fields(snapshot, detail, strings)
    fields["age_ms"] = age
    fields["stale"] = stale
    if detail == DETAIL_FULL:
        fields["quality"] = _quality(snapshot, stale, strings)
    return fields


def _fields(snapshot: TokenSnapshot, detail: str, strings: bool) -> dict[str, Any]:
    """Every served field of ``snapshot`` that does not depend on the time of asking."""
    identity, quote = snapshot.identity, snapshot.quote

    def market(value: Decimal | None) -> float | str | None:
        return market_value(value, strings)

    if detail == DETAIL_BASIC:
        return {
            "id": identity.id,
            "symbol": identity.symbol,
            "name": identity.name,
            "rank": quote.rank,
            "price_usd": market(quote.price_usd),
            "market_cap_usd": market(quote.market_cap_usd),
            "volume_24h_usd": market(quote.volume_24h_usd),
            "velocity": computed_number(snapshot.velocity),
            "source": quote.source,
            "as_of": time_to_json(quote.as_of),
        }
    return {
        "id": identity.id,
        "symbol": identity.symbol,
        "name": identity.name,
        "cmc_id": identity.cmc_id,
        "coingecko_id": identity.coingecko_id,
        "rank": quote.rank,
        "price_usd": market(quote.price_usd),
        "market_cap_usd": market(quote.market_cap_usd),
        "volume_24h_usd": market(quote.volume_24h_usd),
        "circulating_supply": market(quote.circulating_supply),
        "total_supply": market(quote.total_supply),
        "max_supply": market(quote.max_supply),
        "percent_change_1h": market(quote.percent_change_1h),
        "percent_change_24h": market(quote.percent_change_24h),
        "percent_change_7d": market(quote.percent_change_7d),
        "velocity": computed_number(snapshot.velocity),
        "source": quote.source,
        "as_of": time_to_json(quote.as_of),
        "received_at": time_to_json(quote.received_at),
    }


def _quality(snapshot: TokenSnapshot, stale: bool, strings: bool) -> dict[str, Any]:
    flags = set(snapshot.flags) - {FLAG_STALE}
    if stale:
        flags.add(FLAG_STALE)
    return {
        "flags": sorted(flags),
        "market_cap_used": market_value(snapshot.market_cap_used, strings),
        "market_cap_derived": FLAG_MARKET_CAP_DERIVED in snapshot.flags,
    }


def snapshot_from_json(data: Mapping[str, Any]) -> TokenSnapshot:
    """The inverse of ``snapshot_to_json(detail="full")`` and of :attr:`TokenView.body`.

    Raises ValueError, KeyError or TypeError for something that is not a snapshot's JSON.
    """
    identity = TokenIdentity(
        id=str(data["id"]),
        symbol=str(data["symbol"]),
        name=str(data["name"]),
        cmc_id=data.get("cmc_id"),
        coingecko_id=data.get("coingecko_id"),
    )
    as_of = data.get("as_of")
    quote = TokenQuote(
        source=str(data["source"]),
        symbol=identity.symbol,
        name=identity.name,
        received_at=parse_iso(str(data["received_at"])),
        cmc_id=identity.cmc_id,
        coingecko_id=identity.coingecko_id,
        rank=data.get("rank"),
        price_usd=number_from_json(data.get("price_usd")),
        market_cap_usd=number_from_json(data.get("market_cap_usd")),
        volume_24h_usd=number_from_json(data.get("volume_24h_usd")),
        circulating_supply=number_from_json(data.get("circulating_supply")),
        total_supply=number_from_json(data.get("total_supply")),
        max_supply=number_from_json(data.get("max_supply")),
        percent_change_1h=number_from_json(data.get("percent_change_1h")),
        percent_change_24h=number_from_json(data.get("percent_change_24h")),
        percent_change_7d=number_from_json(data.get("percent_change_7d")),
        as_of=parse_iso(as_of) if isinstance(as_of, str) else None,
    )
    quality = data.get("quality") or {}
    return TokenSnapshot(
        identity=identity,
        quote=quote,
        market_cap_used=number_from_json(quality.get("market_cap_used")),
        velocity=number_from_json(data.get("velocity")),
        flags=frozenset(quality.get("flags", ())) - {FLAG_STALE},
    )


@dataclass(frozen=True, slots=True)
class TokenJson:
    """One number form of a snapshot's JSON, ready but for the time-dependent tail.

    ``head`` ends after ``received_at`` (``basic_head`` after ``as_of``); a render appends
    ``age_ms``, ``stale`` and (full detail) the quality object matching ``stale``.
    """

    head: bytes  # '{"id":…,"received_at":"…"'
    basic_head: bytes  # '{"id":…,"as_of":…'
    quality_fresh: bytes
    quality_stale: bytes

    @classmethod
    def of(cls, snapshot: TokenSnapshot, *, strings: bool) -> TokenJson:
        """Serialise ``snapshot`` in one form (``strings``: exact decimal strings)."""
        return cls(
            head=orjson.dumps(_fields(snapshot, DETAIL_FULL, strings))[:-1],
            basic_head=orjson.dumps(_fields(snapshot, DETAIL_BASIC, strings))[:-1],
            quality_fresh=orjson.dumps(_quality(snapshot, False, strings)),
            quality_stale=orjson.dumps(_quality(snapshot, True, strings)),
        )

    def render(self, age_ms: int, stale: bool, *, basic: bool = False) -> bytes:
        """The served JSON object with its freshness (SPEC §4.6)."""
        flag = b"true" if stale else b"false"
        if basic:
            return self.basic_head + b',"age_ms":%d,"stale":%s}' % (age_ms, flag)
        quality = self.quality_stale if stale else self.quality_fresh
        return self.head + b',"age_ms":%d,"stale":%s,"quality":' % (age_ms, flag) + quality + b"}"


@dataclass(frozen=True, slots=True)
class TokenView:
    """A served snapshot with its JSON ready in both number forms (SPEC §4.6)."""

    snapshot: TokenSnapshot
    numbers: TokenJson  # the default: market values as JSON numbers
    strings: TokenJson  # numbers=string: market values as exact decimal strings
    received: float  # unix seconds

    @classmethod
    def of(cls, snapshot: TokenSnapshot) -> TokenView:
        """Serialise ``snapshot`` (the one time it is turned into JSON, in both forms)."""
        return cls(
            snapshot=snapshot,
            numbers=TokenJson.of(snapshot, strings=False),
            strings=TokenJson.of(snapshot, strings=True),
            received=snapshot.quote.received_at.timestamp(),
        )

    def form(self, strings: bool) -> TokenJson:
        """The JSON of the number form asked for."""
        return self.strings if strings else self.numbers

    @property
    def head(self) -> bytes:
        """The default form's full head (see :class:`TokenJson`)."""
        return self.numbers.head

    @property
    def basic_head(self) -> bytes:
        """The default form's ``detail=basic`` head."""
        return self.numbers.basic_head

    @property
    def quality_fresh(self) -> bytes:
        """The default form's quality object when fresh."""
        return self.numbers.quality_fresh

    @property
    def quality_stale(self) -> bytes:
        """The default form's quality object when stale."""
        return self.numbers.quality_stale

    @property
    def body(self) -> bytes:
        """The full snapshot without its age, exact strings (what the bus carries;
        :func:`snapshot_from_json` reads it back)."""
        return self.strings.head + b',"quality":' + self.strings.quality_fresh + b"}"

    def render_at(
        self, now: float, stale_after: float, *, basic: bool = False, strings: bool = False
    ) -> bytes:
        """The served JSON object at unix time ``now`` (age from the receive time)."""
        age = age_ms(self.received, now)
        return self.form(strings).render(age, is_stale(age, stale_after), basic=basic)

    def render(self, age_ms: int, stale: bool, *, basic: bool = False) -> bytes:
        """The served JSON object (default form) with its freshness (SPEC §4.6)."""
        return self.numbers.render(age_ms, stale, basic=basic)


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
        "change_pct": computed_number(trend.change_pct),
        "direction": trend.direction,
        "mean": computed_number(trend.mean),
        "reference_velocity": computed_number(trend.reference_velocity),
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
