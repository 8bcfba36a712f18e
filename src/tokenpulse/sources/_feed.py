"""What a venue's sans-I/O ticker parser returns, and the JSON field readers they share.

Coinbase and Binance parsers turn one frame into a :class:`FeedFrame`: the messages the
socket loop acts on (:class:`~tokenpulse.domain.events.TickerUpdated`, :class:`FeedAlive`,
:class:`FeedAck`) and one :class:`~tokenpulse.domain.errors.ParseError` per unreadable entry.
A frame broken as a whole raises ``ParseError``. Numbers are read with ``parse_float=Decimal``
so every digit the venue sent is kept. No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NoReturn

from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.events import TickerUpdated
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.time import from_epoch, parse_iso

__all__ = [
    "FeedAck",
    "FeedAlive",
    "FeedFrame",
    "FeedMessage",
    "VenueTickers",
    "amount",
    "detail",
    "epoch_ms",
    "fail",
    "json_type",
    "load_frame",
    "number",
    "required",
    "rfc3339",
]


@dataclass(frozen=True, slots=True)
class FeedAck:
    """The venue's answer to a subscribe request.

    ``req_id`` names the request when the venue echoes one (Binance ``id``); ``symbols`` are
    the venue symbols it confirms (Coinbase ``subscriptions``); ``error`` is set on a refusal.
    """

    req_id: int | None
    symbols: tuple[str, ...]
    error: str | None = None

    @property
    def success(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class FeedAlive:
    """The venue is alive but has no new price (a heartbeat)."""


FeedMessage = TickerUpdated | FeedAck | FeedAlive


@dataclass(frozen=True, slots=True)
class FeedFrame:
    """What one frame carried: readable messages, and one error per unreadable entry."""

    messages: tuple[FeedMessage, ...] = ()
    errors: tuple[ParseError, ...] = ()
    #: Frames that are understood and deliberately ignored (another channel we did not ask
    #: for, a Binance ``pong``) are not errors; ``ignored`` says so for the metrics.
    ignored: bool = False
    #: The venue's per-symbol sequence number of a ticker (Coinbase ``sequence``): a ticker
    #: not above the last one seen for its pair is a duplicate or out of order, and dropped.
    sequence: int | None = None

    def __iter__(self) -> Iterator[FeedMessage]:
        return iter(self.messages)


@dataclass(slots=True)
class VenueTickers:
    """One REST answer of a venue: the tickers read, the venue's errors, dropped entries."""

    tickers: list[Ticker] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    bad_entries: list[ParseError] = field(default_factory=list)


def load_frame(raw: str | bytes) -> object:
    """Decode one JSON frame, every float as an exact Decimal; ParseError if it is not JSON."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        fail("invalid_json", "frame is not UTF-8")
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        fail("invalid_json", str(exc)[:200])


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def required(obj: Mapping[str, Any], key: str) -> Any:
    """``obj[key]``; ParseError ``missing_field`` when absent."""
    if key not in obj:
        fail("missing_field", f"no {key!r}")
    return obj[key]


def number(key: str, value: object) -> Decimal:
    """A price or amount: a finite, non-negative number (JSON number or decimal string)."""
    if value is None:
        fail("bad_number", f"{key!r} is null")
    try:
        result = parse_decimal(value, field=key)
    except ValueError as exc:
        fail("bad_number", str(exc))
    if result < 0:
        fail("bad_number", f"{key}: {result} is negative")
    return result


def amount(obj: Mapping[str, Any], key: str) -> Decimal | None:
    """An optional amount: absent, null or empty string is None."""
    value = obj.get(key)
    return None if value is None or value == "" else number(key, value)


def rfc3339(obj: Mapping[str, Any], key: str) -> datetime | None:
    """An optional RFC 3339 time as aware UTC."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        fail("bad_timestamp", f"{key!r} must be an RFC 3339 string, got {json_type(value)}")
    try:
        return parse_iso(value)
    except (ValueError, OverflowError):
        fail("bad_timestamp", f"{key!r} {value[:50]!r} is not RFC 3339")


def epoch_ms(obj: Mapping[str, Any], key: str) -> datetime | None:
    """An optional time in integer milliseconds since the epoch, as aware UTC."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        fail("bad_timestamp", f"{key!r} must be epoch milliseconds, got {json_type(value)}")
    try:
        return from_epoch(value / 1000)
    except (ValueError, OverflowError, OSError):
        fail("bad_timestamp", f"{key!r} {value} is out of range")


def json_type(value: object) -> str:
    """The JSON type name of a decoded value (for error messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def detail(error: ParseError) -> str:
    """The message of a ParseError without its ``kind:`` prefix."""
    text = str(error)
    prefix = f"{error.kind}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def fail(kind: str, message: str) -> NoReturn:
    """Raise :class:`ParseError` of ``kind``."""
    raise ParseError(kind, message)
