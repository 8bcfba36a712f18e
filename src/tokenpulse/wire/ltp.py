"""A last-traded-price ticker as JSON, both ways, and the view that owns its body bytes.

An accepted ticker is serialised once, into an :class:`LtpView` holding two forms of the
value's JSON object without its age (SPEC §4.6): :attr:`LtpView.body`, market values as the
provider's exact decimal strings — what the cache stores and the bus carries, so a replica
reads back every digit (:meth:`LtpView.from_body`) and ``?numbers=string`` is served from it —
and :attr:`LtpView.head`, the default form with JSON numbers. ``/api/v1/ltp`` splices the age
into one of them per request (:meth:`LtpView.render`), so no request encodes an object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.time import isoformat_z, parse_iso
from tokenpulse.wire.numbers import market_value, number_from_json

#: The market values of a ticker's JSON: numbers by default, exact strings on request.
LTP_MARKET_FIELDS: frozenset[str] = frozenset({"amount", "bid", "ask", "volume_24h", "vwap"})

_AGE = b',"age_ms":'
_FRESH = b',"stale":false}'
_STALE = b',"stale":true}'


def ticker_to_json(ticker: Ticker, *, strings: bool = False) -> dict[str, Any]:
    """The JSON-ready fields of a ticker that do not depend on the time of asking.

    ``strings``: market values as exact decimal strings instead of numbers.
    """
    received_at = isoformat_z(ticker.received_at)
    as_of = isoformat_z(ticker.as_of) if ticker.as_of else None
    return _fields(ticker, strings, as_of, received_at)


def _fields(ticker: Ticker, strings: bool, as_of: str | None, received_at: str) -> dict[str, Any]:
    return {
        "pair": str(ticker.pair),
        "amount": market_value(ticker.last, strings),
        "timestamp": as_of or received_at,
        "source": ticker.source,
        "as_of": as_of,
        "received_at": received_at,
        "bid": market_value(ticker.bid, strings),
        "ask": market_value(ticker.ask, strings),
        "volume_24h": market_value(ticker.volume_24h, strings),
        "vwap": market_value(ticker.vwap, strings),
    }


def ticker_from_json(data: Mapping[str, Any]) -> Ticker:
    """The inverse of :func:`ticker_to_json` (either form; exact digits from strings).

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
    """A served ticker and its JSON in both number forms, ready to splice an age into.

    The exact-string ``body`` is built with the view (every value goes to the cache and the
    bus); the number form is built the first time a reader asks for it (:attr:`head`), since
    most ticks of a busy exchange are replaced before anyone reads them.
    """

    ticker: Ticker
    body: bytes  # '{"pair":…,"vwap":"…"}': exact strings, no age (cache, bus)
    received: float  # unix seconds
    _head: bytes | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, ticker: Ticker) -> LtpView:
        """Serialise ``ticker`` (the one time it is turned into JSON)."""
        received_at = isoformat_z(ticker.received_at)
        as_of = isoformat_z(ticker.as_of) if ticker.as_of else None
        body = orjson.dumps(_fields(ticker, True, as_of, received_at))
        return cls(ticker, body, ticker.received_at.timestamp())

    @classmethod
    def from_body(cls, body: bytes) -> LtpView:
        """The view of bytes another process built (cache entry, bus message).

        Exact-string bytes are kept as they are; bytes in the number form (an older writer)
        are re-serialised. Raises ValueError, KeyError or TypeError when ``body`` is not a
        ticker's JSON.
        """
        data = orjson.loads(body)
        if not isinstance(data, dict):
            raise ValueError("a ticker's JSON must be an object")
        ticker = ticker_from_json(data)
        if not isinstance(data["amount"], str):
            return cls.of(ticker)
        return cls(ticker, body, ticker.received_at.timestamp())

    @property
    def head(self) -> bytes:
        """The default form (numbers) without its closing brace, then ``,"age_ms":``."""
        head = self._head
        if head is None:
            head = orjson.dumps(ticker_to_json(self.ticker))[:-1] + _AGE
            object.__setattr__(self, "_head", head)  # built once, on first read
        return head

    @property
    def string_head(self) -> bytes:
        """``body`` without its closing brace, then ``,"age_ms":``."""
        return self.body[:-1] + _AGE

    def render(self, age_ms: int, stale: bool) -> bytes:
        """The served JSON object with its freshness: ``…,"age_ms":N,"stale":…}``."""
        return self.head + str(age_ms).encode() + (_STALE if stale else _FRESH)

    def render_strings(self, age_ms: int, stale: bool) -> bytes:
        """:meth:`render` with market values as exact decimal strings (``numbers=string``)."""
        return self.string_head + str(age_ms).encode() + (_STALE if stale else _FRESH)


__all__ = ["LTP_MARKET_FIELDS", "LtpView", "ticker_from_json", "ticker_to_json"]
