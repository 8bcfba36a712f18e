"""Sans-I/O parsers for CoinGecko API v3: decoded JSON in, exact domain values out.

* ``/api/v3/coins/markets?vs_currency=usd&…`` answers an array of coins. Numbers are JSON
  numbers today, but older answers (2018) sent several as **strings** (``"17236100.0"``);
  both are read digit for digit. ``null`` is everywhere (``max_supply``, ``total_supply``,
  ``roi``, the ``price_change_percentage_*_in_currency`` fields not asked for), and
  ``last_updated`` can be half an hour old within one answer: it is kept as ``as_of``, never
  replaced by the receive time.
* ``/api/v3/coins/{id}/market_chart?vs_currency=usd&days=N`` answers ``prices``,
  ``market_caps`` and ``total_volumes`` as ``[unix milliseconds, value]`` pairs. A market cap
  of 0 (a coin's first day, or after a collapse) is kept as ``Decimal(0)``: the domain decides
  what it means. A pair whose value is ``null`` carries nothing and is skipped.

A malformed coin or pair becomes a :class:`ParseError` in ``bad_entries``/``bad_rows``; only a
body malformed as a whole raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.time import parse_iso
from tokenpulse.domain.tokens import TokenQuote

SOURCE = "coingecko"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHART_SERIES = ("prices", "market_caps", "total_volumes")


@dataclass(slots=True)
class MarketsResult:
    """One or more ``coins/markets`` pages: the coins read and the ones dropped as malformed."""

    quotes: list[TokenQuote] = field(default_factory=list)
    bad_entries: list[ParseError] = field(default_factory=list)
    pages: int = 0  # requests it took (set by the client)


@dataclass(slots=True)
class MarketChart:
    """A ``market_chart`` answer: three series of (time, exact value), oldest first."""

    prices: list[tuple[datetime, Decimal]] = field(default_factory=list)
    market_caps: list[tuple[datetime, Decimal]] = field(default_factory=list)
    total_volumes: list[tuple[datetime, Decimal]] = field(default_factory=list)
    bad_rows: list[ParseError] = field(default_factory=list)
    skipped_nulls: int = 0


def error_message(payload: object) -> str | None:
    """CoinGecko's error text in a body (``{"error": …}`` or ``{"status": {"error_message"}}``).

    None when the body is not one of CoinGecko's error shapes.
    """
    if not isinstance(payload, Mapping):
        return None
    error = payload.get("error")
    if isinstance(error, str):
        return error
    status = payload.get("status")
    if isinstance(status, Mapping):
        message = status.get("error_message")
        code = status.get("error_code")
        if message is not None or code is not None:
            return f"error_code {code}: {message}"
    return None


def parse_markets(payload: object, *, received_at: datetime, source: str = SOURCE) -> MarketsResult:
    """Turn a decoded ``coins/markets`` answer into quotes, keeping every digit.

    Raises :class:`ParseError` when the body is not an array (an error object, for example).
    """
    if not isinstance(payload, list):
        message = error_message(payload)
        if message is not None:
            raise ParseError("cg_error_body", f"CoinGecko answered an error: {message[:200]}")
        raise ParseError("cg_body", f"expected a JSON array, got {type(payload).__name__}")
    result = MarketsResult()
    seen: set[str] = set()
    for index, entry in enumerate(payload):
        try:
            quote = parse_market_entry(
                entry, where=f"[{index}]", received_at=received_at, source=source
            )
        except ParseError as exc:
            result.bad_entries.append(exc)
            continue
        assert quote.coingecko_id is not None
        if quote.coingecko_id in seen:
            result.bad_entries.append(
                ParseError("cg_duplicate_id", f"[{index}]: {quote.coingecko_id} appears twice")
            )
            continue
        seen.add(quote.coingecko_id)
        result.quotes.append(quote)
    return result


def parse_market_entry(
    entry: object, *, where: str, received_at: datetime, source: str = SOURCE
) -> TokenQuote:
    """One ``coins/markets`` coin as a :class:`TokenQuote`; ParseError if malformed."""
    if not isinstance(entry, Mapping):
        raise ParseError("cg_entry", f"{where}: expected an object, got {type(entry).__name__}")
    coin_id = _text(entry, "id", where)
    symbol = _text(entry, "symbol", where)
    name = _text(entry, "name", where)
    where = f"{where} ({coin_id})"
    change_24h = _number(entry, "price_change_percentage_24h_in_currency", where)
    if change_24h is None:
        change_24h = _number(entry, "price_change_percentage_24h", where)
    return TokenQuote(
        source=source,
        symbol=symbol.upper(),
        name=name,
        received_at=received_at,
        coingecko_id=coin_id,
        rank=_rank(entry.get("market_cap_rank"), where),
        price_usd=_number(entry, "current_price", where),
        market_cap_usd=_number(entry, "market_cap", where),
        volume_24h_usd=_number(entry, "total_volume", where),
        circulating_supply=_number(entry, "circulating_supply", where),
        total_supply=_number(entry, "total_supply", where),
        max_supply=_number(entry, "max_supply", where),
        percent_change_1h=_number(entry, "price_change_percentage_1h_in_currency", where),
        percent_change_24h=change_24h,
        percent_change_7d=_number(entry, "price_change_percentage_7d_in_currency", where),
        as_of=_time(entry.get("last_updated"), where),
    )


def parse_market_chart(payload: object) -> MarketChart:
    """Turn a decoded ``market_chart`` answer into three exact series.

    Raises :class:`ParseError` when the body is not an object or a series is not an array.
    A missing series is empty.
    """
    if not isinstance(payload, Mapping):
        raise ParseError("cg_chart_body", f"expected a JSON object, got {type(payload).__name__}")
    if not any(name in payload for name in CHART_SERIES):
        message = error_message(payload)
        if message is not None:
            raise ParseError("cg_error_body", f"CoinGecko answered an error: {message[:200]}")
    chart = MarketChart()
    for name in CHART_SERIES:
        rows = payload.get(name)
        if rows is None:
            continue
        if not isinstance(rows, list):
            raise ParseError("cg_chart_body", f"'{name}' is a {type(rows).__name__}, not an array")
        series: list[tuple[datetime, Decimal]] = getattr(chart, name)
        for index, row in enumerate(rows):
            try:
                point = _chart_point(row, f"{name}[{index}]")
            except ParseError as exc:
                chart.bad_rows.append(exc)
                continue
            if point is None:
                chart.skipped_nulls += 1
            else:
                series.append(point)
    return chart


def _chart_point(row: object, where: str) -> tuple[datetime, Decimal] | None:
    if not isinstance(row, list) or len(row) != 2:
        raise ParseError("cg_chart_row", f"{where}: expected [milliseconds, value]")
    stamp, value = row
    if value is None:
        return None
    try:
        number = parse_decimal(value, field=where)
    except ValueError as exc:
        raise ParseError("cg_bad_number", str(exc)) from None
    return _from_millis(stamp, where), number


def _from_millis(stamp: object, where: str) -> datetime:
    if isinstance(stamp, bool) or not isinstance(stamp, int | Decimal):
        raise ParseError("cg_chart_row", f"{where}: time {str(stamp)[:40]!r} is not a number")
    try:
        if isinstance(stamp, Decimal):
            if not stamp.is_finite() or abs(stamp.adjusted()) > 15:
                raise ParseError("cg_chart_row", f"{where}: time {stamp} is out of range")
            return EPOCH + timedelta(microseconds=int(stamp * 1000))
        return EPOCH + timedelta(milliseconds=stamp)
    except OverflowError:
        raise ParseError("cg_chart_row", f"{where}: time {stamp} is out of range") from None


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ParseError("cg_entry", f"{where}: '{key}' is not a non-empty string")
    return value.strip()


def _number(entry: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    value = entry.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return parse_decimal(value, field=f"{where}.{key}")
    except ValueError as exc:
        raise ParseError("cg_bad_number", str(exc)) from None


def _rank(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ParseError("cg_bad_number", f"{where}.market_cap_rank: {str(value)[:40]!r}")


def _time(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParseError("cg_bad_time", f"{where}.last_updated: expected an ISO 8601 string")
    try:
        return parse_iso(value)
    except (ValueError, OverflowError):
        raise ParseError("cg_bad_time", f"{where}.last_updated: {value[:50]!r}") from None
