"""Kraken REST ``GET /0/public/OHLC``: candles for backfilling LTP history (SPEC §5.4).

* :func:`parse_ohlc_response` is sans-I/O: a decoded body in, exact :class:`Candle` values
  out. Kraken answers ``{"error": [], "result": {"XXBTZUSD": [[time, open, high, low, close,
  vwap, volume, count], …], "last": <since id>}}``; ``time`` is the candle's start (unix
  seconds), prices and volumes are decimal strings, ``count`` is the number of trades. The
  last candle is the current, still-open one. At most 720 candles come back, whatever
  ``since`` asks for.
* :class:`KrakenOhlcClient` does the I/O through the one provider client
  (:class:`~tokenpulse.sources._http.ProviderClient`) with the Ticker client's HTTP client,
  base URL and shared :class:`~tokenpulse.sources._health.RequestLimiter` (Kraken limits
  public calls per IP, so backfill and the LTP fallback draw from one budget). One request
  per call; the caller (the backfiller) decides when to try again. A 429 or a throttling
  error keeps the limiter's next slot back by ``Retry-After`` (or 5 s).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Self, TypeVar

import httpx
import orjson

from tokenpulse.domain.errors import ParseError, UnsupportedPair
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.domain.time import from_epoch
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._answers import Verdict
from tokenpulse.sources._health import RequestLimiter
from tokenpulse.sources._http import ProviderClient
from tokenpulse.sources.kraken.rest import KrakenRestClient, kraken_http_verdict
from tokenpulse.sources.kraken.rest_parser import is_retryable_kraken_error

OHLC_PATH = "/0/public/OHLC"
#: Candle widths Kraken serves, in minutes.
INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
MAX_CANDLES = 720
_RATE_LIMIT_PAUSE = 5.0
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLC candle as Kraken sent it; ``time`` is its start."""

    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    vwap: Decimal
    volume: Decimal
    count: int


@dataclass(slots=True)
class OhlcResult:
    """One OHLC response: the candles of one pair, Kraken's ``last`` id, dropped entries."""

    pair: Pair
    interval: int  # minutes
    candles: list[Candle] = field(default_factory=list)
    last: int | None = None
    bad_entries: list[ParseError] = field(default_factory=list)

    def closed(self, now: datetime) -> list[Candle]:
        """The candles that had ended by ``now`` (the current candle is still moving)."""
        width = timedelta(minutes=self.interval)
        return [c for c in self.candles if c.time + width <= now]


def parse_ohlc_response(
    payload: object, *, registry: PairRegistry, pair: Pair, interval: int
) -> OhlcResult:
    """Turn a decoded ``/0/public/OHLC`` body for ``pair`` into candles, keeping every digit.

    Raises :class:`ParseError` when the body is not ``{"error": [...], "result": {...}}``,
    carries no candle array, or answers for another pair; a malformed candle is recorded
    in ``bad_entries`` and skipped. Kraken's own errors are the caller's business (they
    come with an empty result and are checked before parsing).
    """
    if not isinstance(payload, Mapping):
        raise ParseError("ohlc_body", f"expected a JSON object, got {type(payload).__name__}")
    result = payload.get("result")
    if not isinstance(result, Mapping):
        raise ParseError("ohlc_body", "no 'result' object")
    keys = [key for key in result if key != "last"]
    if len(keys) != 1:
        raise ParseError("ohlc_body", f"expected one pair in 'result', got {len(keys)}")
    key = keys[0]
    answered = registry.by_rest_key(str(key))
    if answered != pair:
        raise ParseError("ohlc_pair", f"asked for {pair}, Kraken answered for {key!r}")
    rows = result[key]
    if not isinstance(rows, list):
        raise ParseError("ohlc_body", f"{key}: candles are not an array")
    last = result.get("last")
    parsed = OhlcResult(pair=pair, interval=interval, last=last if isinstance(last, int) else None)
    for row in rows:
        try:
            parsed.candles.append(_candle(str(key), row))
        except ParseError as exc:
            parsed.bad_entries.append(exc)
    parsed.candles.sort(key=lambda candle: candle.time)
    return parsed


def _candle(key: str, row: object) -> Candle:
    if not isinstance(row, list) or len(row) != 8:
        raise ParseError(
            "ohlc_candle", f"{key}: a candle is an array of 8 values, got {row!r}"[:200]
        )
    stamp, count = row[0], row[7]
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        raise ParseError("ohlc_candle", f"{key}: candle time {stamp!r} is not a number")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ParseError("ohlc_candle", f"{key}: trade count {count!r} is not a count")
    values: list[Decimal] = []
    for index, name in enumerate(("open", "high", "low", "close", "vwap", "volume"), start=1):
        try:
            value = parse_decimal(row[index], field=f"{key}.{name}")
        except ValueError as exc:
            raise ParseError("ohlc_number", str(exc)) from None
        if value < 0:
            raise ParseError("ohlc_number", f"{key}.{name}: {value} is negative")
        values.append(value)
    open_, high, low, close, vwap, volume = values
    if close <= 0:
        raise ParseError("ohlc_number", f"{key}.close: {close} is not positive")
    return Candle(from_epoch(stamp), open_, high, low, close, vwap, volume, count)


class KrakenOhlcClient(ProviderClient):
    """OHLC candles through the one provider client, with the Ticker client's HTTP client,
    base URL and limiter. One request per call (no retries, its own breaker): the
    backfiller decides when to try again."""

    def __init__(
        self,
        *,
        base_url: str,
        http: httpx.AsyncClient,
        limiter: RequestLimiter,
        registry: PairRegistry,
        metrics: Metrics | None = None,
        request_timeout: float = 10.0,
        name: str = "kraken_rest",
    ) -> None:
        super().__init__(
            name=name,
            label="Kraken OHLC",
            base_url=base_url,
            http=http,
            metrics=metrics,
            request_timeout=request_timeout,
            max_retries=0,
            limiter=limiter,
            export_health=False,  # the source's gauges are the Ticker client's
        )
        self.registry = registry

    @classmethod
    def from_rest_client(
        cls, rest: KrakenRestClient, *, request_timeout: float | None = None
    ) -> Self:
        """Share ``rest``'s HTTP client, base URL, pair registry, limiter and metrics."""
        return cls(
            base_url=rest.base_url,
            http=rest.http,
            limiter=rest.limiter,
            registry=rest.registry,
            metrics=rest.metrics,
            request_timeout=request_timeout or max(rest.request_timeout, 10.0),
            name=rest.name,
        )

    async def fetch_ohlc(
        self, pair: Pair, *, interval: int = 1, since: datetime | None = None
    ) -> OhlcResult:
        """Candles of ``pair`` at ``interval`` minutes after ``since`` (at most 720, oldest first).

        Raises :class:`UpstreamError` when Kraken cannot be reached or refuses, and
        :class:`UnsupportedPair` for a pair Kraken does not list.
        """
        if interval not in INTERVALS:
            raise ValueError(f"interval must be one of {INTERVALS} minutes, got {interval}")
        try:
            altname = self.registry.info(pair).altname
        except KeyError:
            raise UnsupportedPair(f"{pair} is not a Kraken pair", parameter="pair") from None
        params = {"pair": altname, "interval": str(interval)}
        if since is not None:
            params["since"] = str(int(since.timestamp()))

        def read(response: httpx.Response) -> OhlcResult | Verdict:
            return self._read_public(
                response,
                lambda payload: parse_ohlc_response(
                    payload, registry=self.registry, pair=pair, interval=interval
                ),
            )

        return await self._get(
            OHLC_PATH, params, what=f"for {pair}", read=read, details={"pair": str(pair)}
        )

    def _read_public(self, response: httpx.Response, parse: Callable[[object], R]) -> R | Verdict:
        """Read a public-endpoint answer: HTTP status, Kraken's ``error`` array, then ``parse``
        (a sans-I/O parser raising :class:`ParseError`)."""
        pause = self.retry_after_of(response) or _RATE_LIMIT_PAUSE
        verdict = kraken_http_verdict(response, pause if response.status_code == 429 else None)
        if verdict is not None:
            return verdict
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return Verdict("parse_error", "malformed JSON")
        errors = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(errors, list) and errors:
            text = ", ".join(str(e) for e in errors)[:200]
            busy = any(is_retryable_kraken_error(str(e)) for e in errors)
            return Verdict(
                "kraken_error",
                f"Kraken error {text}",
                retry_after=_RATE_LIMIT_PAUSE if busy else None,
                provider_up=not busy,
            )
        try:
            return parse(payload)
        except ParseError as exc:
            return Verdict("parse_error", f"malformed response: {exc}")
