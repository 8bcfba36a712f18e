"""Kraken WebSocket v2 frames -> typed messages and domain events. Sans-I/O: no socket here.

One frame (a JSON text) becomes a :class:`ParseResult`: the messages it carries and the
errors of the ticker entries that could not be read. A frame that is broken as a whole
(not JSON, not an object, a channel or method we do not know, a v1 array) raises
:class:`~tokenpulse.domain.errors.ParseError`; one bad entry in a ticker frame does not lose
the other entries of the same frame.

Every digit Kraken sent is kept: ``0.10035`` becomes ``Decimal('0.10035')`` and ``69767.60000``
keeps its zeros. Frames are decoded with orjson (several times faster than the standard
library, which matters at tens of thousands of frames a second); the market values we keep
(``last``, ``bid``, ``ask``, ``volume``, ``vwap``) are then read as Decimals from their own
digits in the frame, found by :data:`_RAW_NUMBER` and checked against the decoded float. A
frame where that cannot be done unambiguously (several entries, a repeated key, a number
orjson cannot hold) is decoded again by the standard library with ``parse_float=Decimal``,
so the fast path never changes a result. Times are RFC 3339 strings turned into aware UTC.

Wire shapes (docs.kraken.com, WebSocket v2)::

    {"channel":"status","type":"update","data":[{"system":"online","api_version":"v2",
      "connection_id":…,"version":"2.0.0"}]}
    {"method":"subscribe","req_id":1,"success":true,"result":{"channel":"ticker",
      "symbol":"BTC/USD","snapshot":true,"event_trigger":"trades"},"time_in":…,"time_out":…}
    {"method":"subscribe","req_id":1,"success":false,"symbol":"ABC/DEF",
      "error":"Currency pair not supported ABC/DEF","time_in":…,"time_out":…}
    {"channel":"ticker","type":"snapshot"|"update","data":[{"symbol":"BTC/USD","bid":…,
      "bid_qty":…,"ask":…,"ask_qty":…,"last":…,"volume":…,"vwap":…,"low":…,"high":…,
      "change":…,"change_pct":…,"timestamp":"2023-09-25T09:04:31.742648Z"}]}
    {"channel":"heartbeat"}
    {"method":"pong","req_id":101,"time_in":…,"time_out":…}
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, NoReturn, TypeGuard

from tokenpulse.domain.errors import InvalidParameter, ParseError
from tokenpulse.domain.events import TickerUpdated
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.pairs import PairRegistry
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.time import parse_iso
from tokenpulse.sources._feed import decode_frame, exact_numbers, load_frame, number_pattern

__all__ = [
    "PARSE_ERROR_KINDS",
    "Heartbeat",
    "KrakenMessage",
    "ParseResult",
    "Pong",
    "StatusUpdate",
    "SubscribeAck",
    "parse_ws_v2",
    "ping_message",
    "subscribe_message",
]

#: Every ``ParseError.kind`` this module raises or reports (a small, stable set for metrics).
PARSE_ERROR_KINDS: Final = frozenset(
    {
        "invalid_json",  # not UTF-8, not JSON, NaN/Infinity, nesting too deep
        "not_an_object",  # a JSON scalar, or a ticker entry that is not an object
        "v1_frame",  # a WS v1 array frame or a v1 {"event": …} object
        "unknown_message",  # an object with neither "channel" nor "method"
        "unknown_channel",
        "unknown_method",
        "unknown_type",  # a ticker/status "type" other than snapshot/update
        "missing_field",
        "bad_field",  # a field of the wrong JSON type
        "bad_number",
        "unknown_symbol",
        "bad_timestamp",
    }
)

_TICKER_TYPES: Final = frozenset({"snapshot", "update"})
#: The market values of a ticker entry that are kept, and their digits on the wire: a key
#: (its quote not escaped, so not inside a string) followed by a JSON number.
_EXACT_KEYS: Final = ("last", "bid", "ask", "volume", "vwap")
_RAW_NUMBER: Final = number_pattern(_EXACT_KEYS)


@dataclass(frozen=True, slots=True)
class SubscribeAck:
    """Kraken's answer to one symbol of a subscribe request (one ack per symbol).

    ``symbol`` is None only for an error that names no symbol (a rate limit, a malformed
    request); ``error`` is Kraken's message when ``success`` is False.
    """

    req_id: int | None
    symbol: str | None
    success: bool
    error: str | None


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """The ``status`` channel: sent on connect and when the trading engine changes state."""

    system: str  # online, cancel_only, maintenance, post_only
    api_version: str | None
    connection_id: int | None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Sent about once a second when a subscribed connection has nothing else to say."""


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to our application-level ``ping``."""

    req_id: int | None


KrakenMessage = SubscribeAck | StatusUpdate | Heartbeat | Pong | TickerUpdated
"""Anything one v2 frame can carry that we act on."""


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What one frame carried: the readable messages, and one error per unreadable entry."""

    messages: tuple[KrakenMessage, ...] = ()
    errors: tuple[ParseError, ...] = ()

    def __iter__(self) -> Iterator[KrakenMessage]:
        return iter(self.messages)

    def __len__(self) -> int:
        return len(self.messages)


def parse_ws_v2(
    raw: str | bytes, *, source: str, received_at: datetime, registry: PairRegistry
) -> ParseResult:
    """Parse one Kraken WS v2 frame.

    Raises ParseError when the frame as a whole is malformed. A ticker frame whose entries
    are partly bad returns the good ones as ``TickerUpdated`` and the bad ones in ``errors``.
    """
    frame = decode_frame(raw)
    if isinstance(frame, list):
        _fail("v1_frame", "array frame: WebSocket v1 shape, not v2")
    if not isinstance(frame, dict):
        _fail("not_an_object", f"expected a JSON object, got {_json_type(frame)}")
    if "channel" in frame:
        channel = frame["channel"]
        if channel == "ticker":
            if not exact_numbers(frame.get("data"), raw, _EXACT_KEYS, _RAW_NUMBER):
                frame = load_frame(raw)  # the same JSON, every number a Decimal
            return _parse_ticker(frame, source=source, received_at=received_at, registry=registry)
        if channel == "heartbeat":
            return ParseResult((Heartbeat(),))
        if channel == "status":
            return ParseResult((_parse_status(frame),))
        if not isinstance(channel, str):
            _fail("bad_field", f"'channel' must be a string, got {_json_type(channel)}")
        _fail("unknown_channel", f"channel {channel[:50]!r}")
    if "method" in frame:
        method = frame["method"]
        if method == "subscribe":
            return ParseResult((_parse_ack(frame),))
        if method == "pong":
            return ParseResult((Pong(req_id=_req_id(frame)),))
        if not isinstance(method, str):
            _fail("bad_field", f"'method' must be a string, got {_json_type(method)}")
        _fail("unknown_method", f"method {method[:50]!r}")
    if "event" in frame:
        _fail("v1_frame", "object with 'event': WebSocket v1 shape, not v2")
    _fail("unknown_message", "object has neither 'channel' nor 'method'")


def subscribe_message(
    symbols: Sequence[str], req_id: int, *, event_trigger: str = "trades", snapshot: bool = True
) -> str:
    """The ticker subscribe request for ``symbols`` (WS v2 names such as ``BTC/USD``).

    ``event_trigger="trades"`` makes ``last`` the last trade price on every update.
    """
    return json.dumps(
        {
            "method": "subscribe",
            "params": {
                "channel": "ticker",
                "symbol": list(symbols),
                "event_trigger": event_trigger,
                "snapshot": snapshot,
            },
            "req_id": req_id,
        },
        separators=(",", ":"),
    )


def ping_message(req_id: int) -> str:
    """An application-level ping; Kraken answers with a ``pong`` carrying ``req_id``."""
    return json.dumps({"method": "ping", "req_id": req_id}, separators=(",", ":"))


# -- frames -------------------------------------------------------------------------------


def _parse_ticker(
    frame: Mapping[str, Any], *, source: str, received_at: datetime, registry: PairRegistry
) -> ParseResult:
    kind = _required(frame, "type")
    if not isinstance(kind, str) or kind not in _TICKER_TYPES:
        _fail("unknown_type", f"ticker type {str(kind)[:50]!r}")
    data = _required(frame, "data")
    if not isinstance(data, list):
        _fail("bad_field", f"ticker 'data' must be an array, got {_json_type(data)}")
    messages: list[KrakenMessage] = []
    errors: list[ParseError] = []
    for index, entry in enumerate(data):
        try:
            ticker = _parse_ticker_entry(
                entry, source=source, received_at=received_at, registry=registry
            )
        except ParseError as exc:
            errors.append(ParseError(exc.kind, f"data[{index}]: {_detail(exc)}"))
        else:
            messages.append(TickerUpdated(ticker))
    return ParseResult(tuple(messages), tuple(errors))


def _parse_ticker_entry(
    entry: object, *, source: str, received_at: datetime, registry: PairRegistry
) -> Ticker:
    if not isinstance(entry, dict):
        _fail("not_an_object", f"ticker entry is {_json_type(entry)}, expected an object")
    symbol = _required(entry, "symbol")
    if not isinstance(symbol, str):
        _fail("bad_field", f"'symbol' must be a string, got {_json_type(symbol)}")
    try:
        pair = registry.resolve(symbol)
    except InvalidParameter:
        _fail("unknown_symbol", f"symbol {symbol[:50]!r} is not a known pair")
    return Ticker(
        pair=pair,
        last=_number("last", _required(entry, "last")),
        source=source,
        received_at=received_at,
        as_of=_timestamp(entry),
        bid=_amount(entry, "bid"),
        ask=_amount(entry, "ask"),
        volume_24h=_amount(entry, "volume"),
        vwap=_amount(entry, "vwap"),
    )


def _parse_status(frame: Mapping[str, Any]) -> StatusUpdate:
    data = _required(frame, "data")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        _fail("bad_field", "status 'data' must be a non-empty array of objects")
    item = data[0]
    system = _required(item, "system")
    if not isinstance(system, str):
        _fail("bad_field", f"'system' must be a string, got {_json_type(system)}")
    api_version = item.get("api_version")
    connection_id = item.get("connection_id")
    return StatusUpdate(
        system=system,
        api_version=api_version if isinstance(api_version, str) else None,
        connection_id=connection_id if _is_int(connection_id) else None,
    )


def _parse_ack(frame: Mapping[str, Any]) -> SubscribeAck:
    success = _required(frame, "success")
    if not isinstance(success, bool):
        _fail("bad_field", f"'success' must be a boolean, got {_json_type(success)}")
    symbol: object = None
    result = frame.get("result")
    if isinstance(result, dict):
        symbol = result.get("symbol")
    if symbol is None:
        symbol = frame.get("symbol")
    if symbol is not None and not isinstance(symbol, str):
        _fail("bad_field", f"ack 'symbol' must be a string, got {_json_type(symbol)}")
    error = frame.get("error")
    if error is not None and not isinstance(error, str):
        error = json.dumps(error, default=str)[:200]
    if success and symbol is None:
        _fail("missing_field", "successful subscribe ack names no symbol")
    if not success and error is None:
        error = "subscribe failed (no error message)"
    return SubscribeAck(req_id=_req_id(frame), symbol=symbol, success=success, error=error)


# -- fields -------------------------------------------------------------------------------


def _required(obj: Mapping[str, Any], key: str) -> Any:
    if key not in obj:
        _fail("missing_field", f"no {key!r}")
    return obj[key]


def _amount(entry: Mapping[str, Any], key: str) -> Decimal | None:
    """An optional price or amount: absent or null is None."""
    value = entry.get(key)
    return None if value is None else _number(key, value)


def _number(key: str, value: object) -> Decimal:
    """A price or amount: a finite, non-negative number, every digit kept."""
    if type(value) is Decimal and value.is_finite() and value >= 0:
        return value  # the usual case, read from the frame's digits
    if value is None:
        _fail("bad_number", f"{key!r} is null")
    try:
        number = parse_decimal(value, field=key)
    except ValueError as exc:
        _fail("bad_number", str(exc))
    if number < 0:
        _fail("bad_number", f"{key}: {number} is negative")
    return number


def _timestamp(entry: Mapping[str, Any]) -> datetime | None:
    value = entry.get("timestamp")
    if value is None:
        return None
    if not isinstance(value, str):
        _fail("bad_timestamp", f"'timestamp' must be an RFC 3339 string, got {_json_type(value)}")
    try:
        return parse_iso(value)
    except (ValueError, OverflowError):
        _fail("bad_timestamp", f"'timestamp' {value[:50]!r} is not RFC 3339")


def _req_id(frame: Mapping[str, Any]) -> int | None:
    value = frame.get("req_id")
    if value is None:
        return None
    if not _is_int(value):
        _fail("bad_field", f"'req_id' must be an integer, got {_json_type(value)}")
    return value


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value: object) -> str:
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


def _detail(error: ParseError) -> str:
    """The message of a ParseError without its ``kind:`` prefix."""
    text = str(error)
    prefix = f"{error.kind}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _fail(kind: str, message: str) -> NoReturn:
    raise ParseError(kind, message)
