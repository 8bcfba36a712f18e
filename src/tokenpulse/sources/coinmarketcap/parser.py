"""Sans-I/O parsers for CoinMarketCap's Pro API: decoded JSON in, :class:`TokenQuote` out.

Every CMC answer — success or error — carries a ``status`` object (``timestamp``,
``error_code``, ``error_message``, ``elapsed``, ``credit_count``, and in newer answers
``notice`` and ``total_count``); :func:`parse_status` reads it. Two data shapes:

* ``/v1/cryptocurrency/listings/latest``: ``data`` is an array of coins, ranked;
* ``/v2/cryptocurrency/quotes/latest``: ``data`` is an object keyed by CMC id (``?id=`` and
  ``?slug=``), or keyed by symbol with an **array** per symbol (``?symbol=``), because
  symbols are not unique.

A coin's numbers are under ``quote.USD`` (we always ask ``convert=USD``). Decode bodies with
``parse_float=Decimal`` so prices keep their digits; nulls become ``None`` and a zero stays
zero (the domain decides what a zero market cap means). A malformed coin becomes a
:class:`ParseError` in ``bad_entries``; only a body malformed as a whole raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.time import parse_iso
from tokenpulse.domain.tokens import TokenQuote

SOURCE = "coinmarketcap"
CONVERT = "USD"
_MAX_INT_DIGITS = 18

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CmcStatus:
    """CMC's ``status`` object: ``error_code`` 0 means success; ``credit_count`` is what it cost."""

    error_code: int
    error_message: str | None
    credit_count: int
    elapsed: int | None
    timestamp: datetime | None
    notice: str | None = None
    total_count: int | None = None

    @property
    def ok(self) -> bool:
        """True for a successful answer."""
        return self.error_code == 0


@dataclass(slots=True)
class ListingResult:
    """One listings answer: the coins read, CMC's status, and the coins dropped as malformed."""

    quotes: list[TokenQuote]
    status: CmcStatus
    bad_entries: list[ParseError] = field(default_factory=list)


@dataclass(slots=True)
class QuotesResult(ListingResult):
    """One quotes/latest answer (same parts as a listing; several coins may share a symbol)."""


def parse_status(payload: object) -> CmcStatus:
    """Read the ``status`` object of any CMC answer; raises :class:`ParseError` without one.

    ``error_code`` and ``credit_count`` must be integers (absent means 0); the informational
    fields (``timestamp``, ``elapsed``, ``notice``, ``total_count``) are None when unreadable.
    """
    if not isinstance(payload, Mapping):
        raise ParseError("cmc_body", f"expected a JSON object, got {type(payload).__name__}")
    status = payload.get("status")
    if not isinstance(status, Mapping):
        raise ParseError("cmc_status", "answer has no 'status' object")
    error_code = _int(status.get("error_code"), "status.error_code", kind="cmc_status")
    credit_count = _int(status.get("credit_count"), "status.credit_count", kind="cmc_status")
    message = status.get("error_message")
    notice = status.get("notice")
    return CmcStatus(
        error_code=error_code or 0,
        error_message=message if isinstance(message, str) else None,
        credit_count=max(0, credit_count or 0),
        elapsed=_lenient(_int, status.get("elapsed"), "status.elapsed"),
        timestamp=_lenient(_time, status.get("timestamp"), "status.timestamp"),
        notice=notice if isinstance(notice, str) else None,
        total_count=_lenient(_int, status.get("total_count"), "status.total_count"),
    )


def _lenient(read: Callable[[object, str], T | None], value: object, name: str) -> T | None:
    try:
        return read(value, name)
    except ParseError:
        return None


def parse_listings(
    payload: object, *, received_at: datetime, source: str = SOURCE
) -> ListingResult:
    """Turn a decoded ``listings/latest`` answer into quotes, keeping every digit.

    An error answer (no ``data``) gives no quotes and its status; the caller decides what the
    error means. Raises :class:`ParseError` when the body has no status or ``data`` is not an
    array.
    """
    status = parse_status(payload)
    assert isinstance(payload, Mapping)
    data = payload.get("data")
    result = ListingResult(quotes=[], status=status)
    if data is None:
        return result
    if not isinstance(data, list):
        raise ParseError("cmc_data", f"listings 'data' is a {type(data).__name__}, not an array")
    seen: set[int] = set()
    for index, entry in enumerate(data):
        _add(result, seen, entry, f"data[{index}]", received_at, source)
    return result


def parse_quotes_v2(
    payload: object, *, received_at: datetime, source: str = SOURCE
) -> QuotesResult:
    """Turn a decoded v2 ``quotes/latest`` answer into quotes.

    ``data`` keyed by id string (``?id=``, ``?slug=``) holds one coin per key; keyed by symbol
    (``?symbol=``) it holds an array of every coin using that symbol, all of which are kept.
    """
    status = parse_status(payload)
    assert isinstance(payload, Mapping)
    data = payload.get("data")
    result = QuotesResult(quotes=[], status=status)
    if data is None:
        return result
    if not isinstance(data, Mapping):
        raise ParseError("cmc_data", f"quotes 'data' is a {type(data).__name__}, not an object")
    seen: set[int] = set()
    for key, value in data.items():
        if isinstance(value, list):  # by symbol: every coin that uses the symbol
            for index, entry in enumerate(value):
                _add(result, seen, entry, f"data.{key}[{index}]", received_at, source)
        else:
            _add(result, seen, value, f"data.{key}", received_at, source)
    return result


def _add(
    result: ListingResult,
    seen: set[int],
    entry: object,
    where: str,
    received_at: datetime,
    source: str,
) -> None:
    try:
        quote = parse_coin(entry, where=where, received_at=received_at, source=source)
    except ParseError as exc:
        result.bad_entries.append(exc)
        return
    assert quote.cmc_id is not None
    if quote.cmc_id in seen:
        result.bad_entries.append(
            ParseError("cmc_duplicate_id", f"{where}: CMC id {quote.cmc_id} appears twice")
        )
        return
    seen.add(quote.cmc_id)
    result.quotes.append(quote)


def parse_coin(
    entry: object, *, where: str, received_at: datetime, source: str = SOURCE
) -> TokenQuote:
    """One coin object (listings or quotes) as a :class:`TokenQuote`; ParseError if malformed."""
    if not isinstance(entry, Mapping):
        raise ParseError("cmc_entry", f"{where}: expected an object, got {type(entry).__name__}")
    cmc_id = _int(entry.get("id"), f"{where}.id")
    if cmc_id is None:
        raise ParseError("cmc_entry", f"{where}: no CMC 'id'")
    symbol = _required_text(entry, "symbol", where)
    name = _required_text(entry, "name", where)
    quotes = entry.get("quote")
    usd = quotes.get(CONVERT) if isinstance(quotes, Mapping) else None
    if not isinstance(usd, Mapping):
        raise ParseError("cmc_entry", f"{where} ({symbol}): no quote.{CONVERT} object")
    updated = usd.get("last_updated")
    if updated is None:
        updated = entry.get("last_updated")
    return TokenQuote(
        source=source,
        symbol=symbol.upper(),
        name=name,
        received_at=received_at,
        cmc_id=cmc_id,
        cmc_slug=_text(entry, "slug", where),
        rank=_int(entry.get("cmc_rank"), f"{where}.cmc_rank"),
        price_usd=_number(usd, "price", where),
        market_cap_usd=_number(usd, "market_cap", where),
        volume_24h_usd=_number(usd, "volume_24h", where),
        circulating_supply=_number(entry, "circulating_supply", where),
        total_supply=_number(entry, "total_supply", where),
        max_supply=_number(entry, "max_supply", where),
        percent_change_1h=_number(usd, "percent_change_1h", where),
        percent_change_24h=_number(usd, "percent_change_24h", where),
        percent_change_7d=_number(usd, "percent_change_7d", where),
        as_of=_time(updated, f"{where}.last_updated"),
    )


def _text(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    if entry.get(key) is None:
        return None
    return _required_text(entry, key, where)


def _required_text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ParseError("cmc_entry", f"{where}: '{key}' is not a non-empty string")
    return value.strip()


def _number(entry: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    value = entry.get(key)
    if value is None:
        return None
    try:
        return parse_decimal(value, field=f"{where}.{key}")
    except ValueError as exc:
        raise ParseError("cmc_bad_number", str(exc)) from None


def _int(value: object, name: str, *, kind: str = "cmc_bad_number") -> int | None:
    """A JSON integer (also a whole Decimal such as ``1.0``); None when null or absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ParseError(kind, f"{name}: expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        if value.adjusted() > _MAX_INT_DIGITS:
            raise ParseError(kind, f"{name}: {value} is out of range")
        return int(value)
    text = value.strip() if isinstance(value, str) else ""
    digits = text.removeprefix("-")
    if digits.isascii() and digits.isdigit() and len(digits) <= _MAX_INT_DIGITS:
        return int(text)
    raise ParseError(kind, f"{name}: {str(value)[:50]!r} is not an integer")


def _time(value: object, name: str, *, kind: str = "cmc_bad_time") -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParseError(kind, f"{name}: expected an ISO 8601 string")
    try:
        return parse_iso(value)
    except (ValueError, OverflowError):
        raise ParseError(kind, f"{name}: {value[:50]!r} is not an ISO 8601 time") from None
