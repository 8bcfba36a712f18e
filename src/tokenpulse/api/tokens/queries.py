"""Query parameters of the token endpoints: parsing, validation, cursors and granularity.

Everything here is pure: a query string or a value in, a parsed query or InvalidParameter
(naming the parameter) out, so the answers in :mod:`tokenpulse.api.tokens.answers` only deal
with data.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from tokenpulse.api.access import AccessServices
from tokenpulse.domain.access import Principal
from tokenpulse.domain.durations import format_duration
from tokenpulse.domain.errors import Forbidden, InvalidParameter
from tokenpulse.domain.time import from_epoch, parse_iso, utcnow
from tokenpulse.services.tokens.service import SORT_KEYS, TokenFilter
from tokenpulse.wire.numbers import NUMBERS_PARAMETER, parse_numbers
from tokenpulse.wire.tokens import DETAILS

MAX_LIMIT = 500
#: The largest 1-based position a page may start at (far beyond any token count; it keeps
#: every number in an answer within 64 bits).
MAX_START = 1_000_000_000
DEFAULT_LIMIT = 100
MAX_POINTS = 10_000
GRANULARITIES: dict[str, timedelta | None] = {
    "raw": None,
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}
SERIES_WINDOWS = {
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "12h": timedelta(hours=12),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A parsed ``/api/v1/tokens`` query: the shape of its result and the page of it."""

    shape: TokenFilter
    limit: int
    start: int
    detail: str
    max_age_ms: int | None
    strings: bool = False  # numbers=string: market values as exact decimal strings


def _decimal(name: str, value: str) -> Decimal:
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise InvalidParameter(f"{name} must be a number, got {value!r}", parameter=name) from None
    if not number.is_finite() or number < 0:
        raise InvalidParameter(
            f"{name} must be a finite number >= 0, got {value!r}", parameter=name
        )
    return number


def _int(name: str, value: str, low: int, high: int | None = None) -> int:
    text = value.strip()
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        raise InvalidParameter(
            f"{name} must be a whole number {bound}, got {value!r}", parameter=name
        )
    return int(text)


def encode_cursor(start: int) -> str:
    return base64.urlsafe_b64encode(f"s:{start}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    digits = raw[2:]
    if not raw.startswith("s:") or not digits.isdigit() or not 1 <= int(digits[:12]) <= MAX_START:
        raise InvalidParameter("cursor is not one this API issued", parameter="cursor")
    return int(digits)


def parse_time(name: str, value: str) -> datetime:
    """ISO 8601 or unix seconds -> aware UTC; InvalidParameter naming ``name`` otherwise."""
    text = value.strip()
    try:
        if text.replace(".", "", 1).isdigit():
            return from_epoch(float(text))
        return parse_iso(text)
    except (ValueError, OverflowError, OSError):
        raise InvalidParameter(
            f"{name} must be ISO 8601 or unix seconds, got {value!r}", parameter=name
        ) from None


def parse_list_query(query_string: bytes) -> ListQuery:
    """A ``/api/v1/tokens`` query string -> its query (InvalidParameter naming what is wrong)."""
    params = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    limit = _int("limit", params["limit"], 1, MAX_LIMIT) if "limit" in params else DEFAULT_LIMIT
    start = _int("start", params["start"], 1, MAX_START) if "start" in params else 1
    if "cursor" in params:
        start = decode_cursor(params["cursor"])
    sort = params.get("sort", "market_cap")
    if sort not in SORT_KEYS:
        raise InvalidParameter(
            f"sort must be one of {', '.join(SORT_KEYS)}, got {sort!r}", parameter="sort"
        )
    default_order = "asc" if sort == "rank" else "desc"
    order = params.get("order", default_order)
    if order not in {"asc", "desc"}:
        raise InvalidParameter(f"order must be asc or desc, got {order!r}", parameter="order")
    detail = params.get("detail", "full")
    if detail not in DETAILS:
        raise InvalidParameter(f"detail must be basic or full, got {detail!r}", parameter="detail")
    bounds = {
        name: _decimal(name, params[name])
        for name in ("min_market_cap", "max_market_cap", "min_velocity", "max_velocity")
        if name in params and params[name].strip()
    }
    for low, high in (("min_market_cap", "max_market_cap"), ("min_velocity", "max_velocity")):
        if low in bounds and high in bounds and bounds[low] > bounds[high]:
            raise InvalidParameter(f"{low} is greater than {high}", parameter=low)
    symbols = frozenset(
        item.strip().upper() for item in params.get("symbols", "").split(",") if item.strip()
    )
    max_age = _int("max_age_ms", params["max_age_ms"], 0) if "max_age_ms" in params else None
    shape = TokenFilter(
        min_market_cap=bounds.get("min_market_cap"),
        max_market_cap=bounds.get("max_market_cap"),
        min_velocity=bounds.get("min_velocity"),
        max_velocity=bounds.get("max_velocity"),
        symbols=symbols,
        sort=sort,
        order=order,
    )
    return ListQuery(
        shape=shape,
        limit=limit,
        start=start,
        detail=detail,
        max_age_ms=max_age,
        strings=parse_numbers(params.get(NUMBERS_PARAMETER)),
    )


def choose_granularity(start: datetime, end: datetime, *, allow_raw: bool) -> str:
    """The finest stored granularity that keeps the range within MAX_POINTS points."""
    span = end - start
    if allow_raw and span <= timedelta(hours=2):
        return "raw"
    for name in ("1m", "5m", "15m", "1h", "4h", "1d"):
        step = GRANULARITIES[name]
        assert step is not None
        if span / step <= MAX_POINTS:
            return name
    return "1d"


__all__ = [
    "DEFAULT_LIMIT",
    "GRANULARITIES",
    "MAX_LIMIT",
    "MAX_POINTS",
    "SERIES_WINDOWS",
    "ListQuery",
    "choose_granularity",
    "decode_cursor",
    "encode_cursor",
    "parse_list_query",
    "parse_time",
]


def check_history_depth(
    access: AccessServices, principal: Principal | None, start: str | None, end: str | None
) -> None:
    """Forbidden when the range starts further back than the caller's role and tier allow."""
    depth = access.history_seconds(principal)
    if depth is None or principal is None:
        return
    now = utcnow()
    if start:
        first = parse_time("from", start)
    else:  # the default range: the day before ``to``
        first = (parse_time("to", end) if end else now) - timedelta(days=1)
    if first < now - timedelta(seconds=depth):
        raise Forbidden(
            f"this key (role {principal.role!r}, tier {principal.tier!r}) may read "
            f"{format_duration(depth)} of history; an analyst key reads further",
            details={"history_depth_seconds": depth},
        )
