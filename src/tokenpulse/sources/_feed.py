"""What a venue's sans-I/O ticker parser returns, and the JSON field readers they share.

Coinbase and Binance parsers turn one frame into a :class:`FeedFrame`: the messages the
socket loop acts on (:class:`~tokenpulse.domain.events.TickerUpdated`, :class:`FeedAlive`,
:class:`FeedAck`) and one :class:`~tokenpulse.domain.errors.ParseError` per unreadable entry.
A frame broken as a whole raises ``ParseError``. Every digit the venue sent is kept: either
the frame is read with ``parse_float=Decimal`` (:func:`load_frame`), or it is decoded by
orjson (:func:`decode_frame`, several times faster) and the float values a parser keeps are
replaced by the Decimals of their own digits in the frame (:func:`exact_numbers`). No I/O here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NoReturn

import orjson

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
    "decode_frame",
    "detail",
    "epoch_ms",
    "exact_numbers",
    "fail",
    "json_type",
    "load_frame",
    "number",
    "number_pattern",
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


def decode_frame(raw: str | bytes) -> Any:
    """Decode one JSON frame with orjson (numbers with a fraction are floats); a frame orjson
    refuses (not JSON, or a number beyond a double) is judged by :func:`load_frame`."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return load_frame(raw)


def number_pattern(keys: Sequence[str]) -> re.Pattern[str]:
    """Finds ``"key":<JSON number>`` for ``keys`` in a frame's text (see :func:`exact_numbers`
    for why a match cannot be inside a string). No look-behind: a pattern that starts with a
    literal quote is searched for quote by quote, several times faster."""
    names = "|".join(re.escape(key) for key in keys)
    number = r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?"
    return re.compile(rf'"({names})"\s*:\s*({number})')


def exact_numbers(
    entries: object, raw: str | bytes, keys: Sequence[str], pattern: re.Pattern[str]
) -> bool:
    """Give the float values of ``keys`` in the one entry of ``entries`` (a frame decoded by
    :func:`decode_frame`) the Decimals of their digits in ``raw``, in place.

    False when that cannot be done unambiguously, and the caller decodes the frame with
    :func:`load_frame` instead: several entries with such values, a backslash anywhere in the
    frame, a key found twice (repeated, or nested elsewhere too). True when nothing needed
    replacing. The entry may be changed in part when False is returned.
    """
    if type(entries) is not list or not entries:
        return True  # nothing to read here: the parser reports the frame's shape
    entry = entries[0]
    if len(entries) != 1 or type(entry) is not dict:
        return not any(_floats(item, keys) for item in entries)
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    if "\\" in text:
        return not _floats(entry, keys)
    # Without a backslash no quote is escaped, so every match is a key and its number: the
    # entry's own (a float value is written as a JSON number), or another object's — then
    # the entry's key matches too, and the second match of a key gives up.
    for key, token in pattern.findall(text):
        value = entry.get(key)
        if type(value) is float:
            entry[key] = Decimal(token)
        elif type(value) is Decimal:
            return False
    return not _floats(entry, keys)


def _floats(entry: object, keys: Sequence[str]) -> bool:
    """Whether ``entry`` is an object with a float value under one of ``keys``."""
    return type(entry) is dict and any(type(entry.get(key)) is float for key in keys)


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
    if isinstance(value, int | float | Decimal):
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
