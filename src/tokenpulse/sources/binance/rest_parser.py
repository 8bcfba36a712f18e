"""Binance ``GET /api/v3/ticker/24hr``, sans-I/O: body in, tickers out.

With ``symbols=[…]`` the answer is an array of objects; with ``symbol=`` one object (shape
from the Binance.US capture in ``tests/fixtures/binance``)::

    {"symbol":"BTCUSDT","lastPrice":"73346.14000000","bidPrice":"73267.15000000",
     "askPrice":"73345.89000000","volume":"129.21293000","quoteVolume":"9254480.36011840",
     "weightedAvgPrice":"71621.93721726","closeTime":1710328244727, …}

An error answer is ``{"code":-1121,"msg":"Invalid symbol."}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.sources._feed import (
    VenueTickers,
    amount,
    detail,
    epoch_ms,
    fail,
    json_type,
    number,
    required,
)

__all__ = ["parse_ticker_24hr"]


def parse_ticker_24hr(
    payload: object, *, symbols: Mapping[str, Pair], source: str, received_at: datetime
) -> VenueTickers:
    """Read a 24 h ticker answer (one object or an array); bad entries are kept aside."""
    if isinstance(payload, Mapping) and "code" in payload and "msg" in payload:
        return VenueTickers(errors=[f"{payload['code']}: {str(payload['msg'])[:200]}"])
    entries = [payload] if isinstance(payload, Mapping) else payload
    if not isinstance(entries, list):
        fail("rest_body", f"expected an object or an array, got {json_type(payload)}")
    result = VenueTickers()
    for index, entry in enumerate(entries):
        try:
            result.tickers.append(_entry(entry, symbols, source, received_at))
        except ParseError as exc:
            result.bad_entries.append(ParseError(exc.kind, f"[{index}]: {detail(exc)}"))
    return result


def _entry(
    entry: object, symbols: Mapping[str, Pair], source: str, received_at: datetime
) -> Ticker:
    if not isinstance(entry, Mapping):
        fail("rest_entry", f"expected an object, got {json_type(entry)}")
    symbol = required(entry, "symbol")
    if not isinstance(symbol, str) or symbol.upper() not in symbols:
        fail("rest_unknown_pair", f"symbol {str(symbol)[:50]!r} was not asked for")
    last = number("lastPrice", required(entry, "lastPrice"))
    if last <= 0:
        fail("rest_bad_price", f"lastPrice {last} is not positive")
    close_time = entry.get("closeTime")
    if isinstance(close_time, str) and close_time.isdigit():  # ccxt stores it as a string
        close_time = int(close_time)
    return Ticker(
        pair=symbols[symbol.upper()],
        last=last,
        source=source,
        received_at=received_at,
        as_of=epoch_ms({"closeTime": close_time}, "closeTime"),
        bid=amount(entry, "bidPrice"),
        ask=amount(entry, "askPrice"),
        volume_24h=amount(entry, "volume"),
        vwap=amount(entry, "weightedAvgPrice"),
    )
