"""Kraken REST ``GET /0/public/Trades``: each trade's price and time, for backfilling the
per-second LTP history a take-over or a restart left out (SPEC §5.4).

* :func:`parse_trades_response` is sans-I/O: a decoded body in, exact :class:`Trade` values
  out. Kraken answers ``{"error": [], "result": {"XXBTZUSD": [[price, volume, time,
  "b"|"s", "m"|"l", misc, trade_id], …], "last": "<nanosecond cursor>"}}``, oldest first;
  ``time`` is unix seconds with a fraction, prices and volumes are decimal strings. At most
  ``count`` (≤ 1000) trades come back; ``last`` is the ``since`` of the next page.
* :meth:`TradesResult.last_price_per_second` is what a per-second LTP sample is: the price
  of the last trade in that second. A second without a trade has no sample — none is
  invented (the live feed files none either).
* :class:`KrakenTradesClient` is the OHLC client (same HTTP client, base URL and shared
  limiter) that also asks for trades.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import httpx

from tokenpulse.domain.errors import ParseError, UnsupportedPair
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.domain.time import from_epoch
from tokenpulse.sources._answers import Verdict
from tokenpulse.sources.kraken.ohlc import KrakenOhlcClient

TRADES_PATH = "/0/public/Trades"
MAX_TRADES = 1000


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade as Kraken reported it."""

    time: datetime
    price: Decimal
    volume: Decimal


@dataclass(slots=True)
class TradesResult:
    """One Trades response: the trades of one pair (oldest first) and the next cursor."""

    pair: Pair
    trades: list[Trade] = field(default_factory=list)
    last: int | None = None  # nanoseconds: the ``since`` of the next page
    bad_entries: list[ParseError] = field(default_factory=list)

    def last_price_per_second(self) -> list[tuple[datetime, Decimal]]:
        """``(second, price of the last trade in it)`` for every second with a trade."""
        per_second: dict[int, tuple[datetime, Decimal]] = {}
        for trade in self.trades:
            second = int(trade.time.timestamp())
            per_second[second] = (from_epoch(second), trade.price)
        return [per_second[second] for second in sorted(per_second)]


def parse_trades_response(payload: object, *, registry: PairRegistry, pair: Pair) -> TradesResult:
    """Turn a decoded ``/0/public/Trades`` body for ``pair`` into trades, keeping every digit.

    Raises :class:`ParseError` when the body is not ``{"error": [...], "result": {...}}``,
    carries no trade array, or answers for another pair; a malformed trade is recorded in
    ``bad_entries`` and skipped.
    """
    if not isinstance(payload, Mapping):
        raise ParseError("trades_body", f"expected a JSON object, got {type(payload).__name__}")
    result = payload.get("result")
    if not isinstance(result, Mapping):
        raise ParseError("trades_body", "no 'result' object")
    keys = [key for key in result if key != "last"]
    if len(keys) != 1:
        raise ParseError("trades_body", f"expected one pair in 'result', got {len(keys)}")
    key = str(keys[0])
    if registry.by_rest_key(key) != pair:
        raise ParseError("trades_pair", f"asked for {pair}, Kraken answered for {key!r}")
    rows = result[key]
    if not isinstance(rows, list):
        raise ParseError("trades_body", f"{key}: trades are not an array")
    last = result.get("last")
    cursor = int(last) if isinstance(last, str) and last.isdigit() else None
    if isinstance(last, int) and not isinstance(last, bool):
        cursor = last
    parsed = TradesResult(pair=pair, last=cursor)
    for row in rows:
        try:
            parsed.trades.append(_trade(key, row))
        except ParseError as exc:
            parsed.bad_entries.append(exc)
    parsed.trades.sort(key=lambda trade: trade.time)
    return parsed


def _trade(key: str, row: object) -> Trade:
    if not isinstance(row, list) or len(row) < 3:
        raise ParseError(
            "trades_entry", f"{key}: a trade is an array of 7 values, got {row!r}"[:200]
        )
    stamp = row[2]
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or stamp <= 0:
        raise ParseError("trades_entry", f"{key}: trade time {stamp!r} is not a time")
    try:
        price = parse_decimal(row[0], field=f"{key}.price")
        volume = parse_decimal(row[1], field=f"{key}.volume")
    except ValueError as exc:
        raise ParseError("trades_number", str(exc)) from None
    if price <= 0 or volume < 0:
        raise ParseError("trades_number", f"{key}: price {price} or volume {volume} out of range")
    return Trade(from_epoch(stamp), price, volume)


class KrakenTradesClient(KrakenOhlcClient):
    """OHLC candles and recent trades through the one provider client (one request per
    call, the backfiller decides when to try again)."""

    async def fetch_trades(
        self, pair: Pair, *, since: datetime, count: int = MAX_TRADES
    ) -> TradesResult:
        """Up to ``count`` trades of ``pair`` from ``since`` on, oldest first.

        Raises :class:`UpstreamError` when Kraken cannot be reached or refuses, and
        :class:`UnsupportedPair` for a pair Kraken does not list.
        """
        if not 1 <= count <= MAX_TRADES:
            raise ValueError(f"count must be within 1..{MAX_TRADES}, got {count}")
        try:
            altname = self.registry.info(pair).altname
        except KeyError:
            raise UnsupportedPair(f"{pair} is not a Kraken pair", parameter="pair") from None
        params = {"pair": altname, "since": str(int(since.timestamp())), "count": str(count)}

        def read(response: httpx.Response) -> TradesResult | Verdict:
            return self._read_public(
                response,
                lambda payload: parse_trades_response(payload, registry=self.registry, pair=pair),
            )

        return await self._get(
            TRADES_PATH, params, what=f"trades of {pair}", read=read, details={"pair": str(pair)}
        )


__all__ = [
    "TRADES_PATH",
    "KrakenTradesClient",
    "Trade",
    "TradesResult",
    "parse_trades_response",
]
