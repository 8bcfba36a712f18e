"""A last-traded-price ticker as JSON, both ways, and the view that owns its body bytes.

An accepted ticker is serialised once, into :attr:`LtpView.body`: the value's JSON object
without its age. The cache stores those bytes, the bus carries them, a replica reads them back
(:meth:`LtpView.from_body`), and ``/api/v1/ltp`` splices the age into them per request
(:meth:`LtpView.render`), so no request encodes a whole object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.time import isoformat_z, parse_iso
from tokenpulse.wire.numbers import json_number, number_from_json

_AGE = b',"age_ms":'
_FRESH = b',"stale":false}'
_STALE = b',"stale":true}'


def ticker_to_json(ticker: Ticker) -> dict[str, Any]:
    """The JSON-ready fields of a ticker that do not depend on the time of asking."""
    return {
        "pair": str(ticker.pair),
        "amount": json_number(ticker.last),
        "timestamp": isoformat_z(ticker.as_of or ticker.received_at),
        "source": ticker.source,
        "as_of": isoformat_z(ticker.as_of) if ticker.as_of else None,
        "received_at": isoformat_z(ticker.received_at),
        "bid": _number(ticker.bid),
        "ask": _number(ticker.ask),
        "volume_24h": _number(ticker.volume_24h),
        "vwap": _number(ticker.vwap),
    }


def ticker_from_json(data: Mapping[str, Any]) -> Ticker:
    """The inverse of :func:`ticker_to_json` (exact digits: JSON numbers have at most 15).

    Raises ValueError, KeyError or TypeError for something that is not a ticker's JSON.
    """
    base, quote = str(data["pair"]).split("/", 1)
    last = number_from_json(data["amount"])
    if last is None:
        raise ValueError("a ticker without an amount")
    as_of = data.get("as_of")
    return Ticker(
        pair=Pair(base, quote),
        last=last,
        source=str(data["source"]),
        received_at=parse_iso(str(data["received_at"])),
        as_of=parse_iso(as_of) if isinstance(as_of, str) else None,
        bid=number_from_json(data.get("bid")),
        ask=number_from_json(data.get("ask")),
        volume_24h=number_from_json(data.get("volume_24h")),
        vwap=number_from_json(data.get("vwap")),
    )


@dataclass(frozen=True, slots=True)
class LtpView:
    """A served ticker and its JSON: ``body`` as stored and published, ``head`` to splice into."""

    ticker: Ticker
    body: bytes  # '{"pair":…,"vwap":…}': the value without its age
    head: bytes  # body without its closing brace, then ',"age_ms":'
    received: float  # unix seconds

    @classmethod
    def of(cls, ticker: Ticker) -> LtpView:
        """Serialise ``ticker`` (the one time it is turned into JSON)."""
        return cls._with_body(ticker, orjson.dumps(ticker_to_json(ticker)))

    @classmethod
    def from_body(cls, body: bytes) -> LtpView:
        """The view of bytes another process built (cache entry, bus message), kept as they are.

        Raises ValueError, KeyError or TypeError when ``body`` is not a ticker's JSON.
        """
        data = orjson.loads(body)
        if not isinstance(data, dict):
            raise ValueError("a ticker's JSON must be an object")
        return cls._with_body(ticker_from_json(data), body)

    @classmethod
    def _with_body(cls, ticker: Ticker, body: bytes) -> LtpView:
        return cls(ticker, body, body[:-1] + _AGE, ticker.received_at.timestamp())

    def render(self, age_ms: int, stale: bool) -> bytes:
        """The served JSON object with its freshness: ``…,"age_ms":N,"stale":…}``."""
        return self.head + str(age_ms).encode() + (_STALE if stale else _FRESH)


def _number(value: Decimal | None) -> float | str | None:
    return None if value is None else json_number(value)


__all__ = ["LtpView", "ticker_from_json", "ticker_to_json"]
