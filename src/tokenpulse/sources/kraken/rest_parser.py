"""Kraken REST ``GET /0/public/Ticker``, sans-I/O: a decoded body in, exact tickers out.

Kraken answers every call with ``{"error": [...], "result": {...}}``; the two are independent
(a request naming one unknown pair among known ones comes back with ``EQuery:Unknown asset
pair`` *and* a filled ``result``), so :func:`parse_ticker_response` keeps both. A malformed
entry becomes a :class:`ParseError` in ``bad_entries``; only a body that is malformed as a
whole raises. The I/O lives in :mod:`tokenpulse.sources.kraken.rest`.

Ticker arrays (Kraken docs, ``AssetTickerInfo``): ``a``/``b`` = ask/bid ``[price, whole lot
volume, lot volume]``, ``c`` = last trade ``[price, lot volume]``, ``v`` = volume ``[today,
last 24 hours]``, ``p`` = VWAP ``[today, last 24 hours]``, ``t`` = trade counts, ``l``/``h`` =
low/high, ``o`` = today's open. Prices are decimal strings; Ticker carries no timestamp.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.domain.ticker import Ticker

#: Kraken error strings worth retrying: throttling and temporary service states. Anything
#: else (``EQuery:Unknown asset pair``, ``EGeneral:Invalid arguments``, a lockout that lasts
#: ~15 minutes) will not change by asking again.
RETRYABLE_KRAKEN_ERRORS = ("EAPI:Rate limit exceeded", "EService:", "EGeneral:Internal error")


@dataclass(slots=True)
class RestTickerResult:
    """One Ticker response: the tickers read, Kraken's own error strings, dropped entries."""

    tickers: list[Ticker] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    bad_entries: list[ParseError] = field(default_factory=list)

    def by_pair(self) -> dict[Pair, Ticker]:
        """The tickers keyed by pair."""
        return {ticker.pair: ticker for ticker in self.tickers}


def is_retryable_kraken_error(error: str) -> bool:
    """True for Kraken error strings that describe a temporary state (rate limit, service)."""
    return error.startswith(RETRYABLE_KRAKEN_ERRORS)


def parse_ticker_response(
    payload: object, *, registry: PairRegistry, source: str, received_at: datetime
) -> RestTickerResult:
    """Turn a decoded ``/0/public/Ticker`` body into tickers, keeping every digit.

    ``last`` = ``c[0]``, ``bid`` = ``b[0]``, ``ask`` = ``a[0]``, ``volume_24h`` = ``v[1]``,
    ``vwap`` = ``p[1]``; ``as_of`` is None because the endpoint sends no time. Result keys
    are mapped through ``registry.by_rest_key``; an unknown key or a malformed entry is
    recorded in ``bad_entries`` and skipped. Raises :class:`ParseError` only when the body as
    a whole does not have the ``{"error": [...], "result": {...}}`` shape.
    """
    if not isinstance(payload, Mapping):
        raise ParseError("rest_body", f"expected a JSON object, got {type(payload).__name__}")
    raw_errors = payload.get("error", [])
    if not isinstance(raw_errors, list) or not all(isinstance(e, str) for e in raw_errors):
        raise ParseError("rest_error_field", "'error' is not a list of strings")
    errors: list[str] = list(raw_errors)
    raw_result = payload.get("result")
    if raw_result is None:
        if errors:
            return RestTickerResult(errors=errors)
        raise ParseError("rest_no_result", "body has neither 'result' nor 'error'")
    if not isinstance(raw_result, Mapping):
        raise ParseError("rest_result_field", f"'result' is a {type(raw_result).__name__}")

    result = RestTickerResult(errors=errors)
    seen: set[Pair] = set()
    for key, entry in raw_result.items():
        try:
            ticker = _parse_entry(key, entry, registry, source, received_at)
        except ParseError as exc:
            result.bad_entries.append(exc)
            continue
        if ticker.pair in seen:
            result.bad_entries.append(
                ParseError("rest_duplicate_pair", f"{key}: {ticker.pair} appears twice")
            )
            continue
        seen.add(ticker.pair)
        result.tickers.append(ticker)
    return result


def _parse_entry(
    key: object, entry: object, registry: PairRegistry, source: str, received_at: datetime
) -> Ticker:
    if not isinstance(key, str):
        raise ParseError("rest_entry", f"result key {key!r} is not a string")
    pair = registry.by_rest_key(key)
    if pair is None:
        raise ParseError("rest_unknown_pair", f"result key {key!r} is not a known Kraken pair")
    if not isinstance(entry, Mapping):
        raise ParseError("rest_entry", f"{key}: expected an object, got {type(entry).__name__}")
    last = _element(key, entry, "c", 0, required=True)
    if last is None or last <= 0:
        raise ParseError("rest_bad_price", f"{key}: last price c[0]={last} is not positive")
    return Ticker(
        pair=pair,
        last=last,
        source=source,
        received_at=received_at,
        as_of=None,
        bid=_element(key, entry, "b", 0),
        ask=_element(key, entry, "a", 0),
        volume_24h=_element(key, entry, "v", 1),
        vwap=_element(key, entry, "p", 1),
    )


def _element(
    key: str, entry: Mapping[str, Any], name: str, index: int, *, required: bool = False
) -> Decimal | None:
    """``entry[name][index]`` as an exact non-negative Decimal; None when the array is absent."""
    array = entry.get(name)
    if array is None and not required:
        return None
    if not isinstance(array, list) or len(array) <= index:
        raise ParseError("rest_entry", f"{key}: '{name}' is not an array with [{index}]")
    try:
        value = parse_decimal(array[index], field=f"{key}.{name}[{index}]")
    except ValueError as exc:
        raise ParseError("rest_bad_number", str(exc)) from None
    if value < 0:
        raise ParseError("rest_bad_number", f"{key}.{name}[{index}]: {value} is negative")
    return value
