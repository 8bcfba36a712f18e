"""Kraken REST ``GET /0/public/Ticker``: the LTP fallback when the WebSocket feed is down.

Two layers, as for every source:

* :func:`parse_ticker_response` is sans-I/O: a decoded Ticker body in, exact
  :class:`~tokenpulse.domain.ticker.Ticker` values out. Kraken answers every call with
  ``{"error": [...], "result": {...}}``; the two are independent (a request naming one
  unknown pair among known ones comes back with ``EQuery:Unknown asset pair`` *and* a filled
  ``result``), so the parser keeps both. A malformed entry becomes a :class:`ParseError` in
  ``bad_entries``; only a body that is malformed as a whole raises.
* :class:`KrakenRestClient` does the I/O: one shared limiter (Kraken rate-limits per IP),
  per-request timeouts, retries with capped jittered backoff that honour ``Retry-After`` and
  never run past the caller's deadline, a circuit breaker, metrics and health.

Ticker arrays (Kraken docs, ``AssetTickerInfo``): ``a``/``b`` = ask/bid ``[price, whole lot
volume, lot volume]``, ``c`` = last trade ``[price, lot volume]``, ``v`` = volume ``[today,
last 24 hours]``, ``p`` = VWAP ``[today, last 24 hours]``, ``t`` = trade counts, ``l``/``h`` =
low/high, ``o`` = today's open. Prices are decimal strings; Ticker carries no timestamp.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
import orjson
import structlog

from tokenpulse.domain.errors import ParseError, UnsupportedPair, UpstreamError
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.time import utcnow
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._health import (
    Backoff,
    CircuitBreaker,
    ParseErrorReporter,
    SourceHealth,
    bind_health_metrics,
)

log = structlog.get_logger(__name__)

TICKER_PATH = "/0/public/Ticker"

#: Kraken error strings worth retrying: throttling and temporary service states. Anything
#: else (``EQuery:Unknown asset pair``, ``EGeneral:Invalid arguments``, a lockout that lasts
#: ~15 minutes) will not change by asking again.
RETRYABLE_KRAKEN_ERRORS = ("EAPI:Rate limit exceeded", "EService:", "EGeneral:Internal error")

Outcome = Literal["ok", "http_error", "transport_error", "kraken_error", "parse_error"]

_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


# --------------------------------------------------------------------------- parsing


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


# --------------------------------------------------------------------------- I/O


class RequestLimiter:
    """Spaces the requests of everyone sharing it at least ``min_interval`` seconds apart.

    Kraken limits public calls per IP, so all REST calls to one provider share one limiter.
    Callers reserve the next free slot under an :class:`asyncio.Lock` (the lock is never held
    while sleeping) and then wait for it; a slot beyond the caller's deadline is not taken.
    """

    def __init__(
        self,
        min_interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.min_interval = min_interval
        self._lock = asyncio.Lock()
        self._next_slot = float("-inf")
        self._clock = clock
        self._sleep = sleep

    async def acquire(self, deadline: float | None = None) -> bool:
        """Wait for this caller's turn; False (without waiting) if it would pass ``deadline``."""
        async with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            if deadline is not None and slot >= deadline:
                return False
            self._next_slot = slot + self.min_interval
        if slot > now:
            await self._sleep(slot - now)
        return True

    def defer(self, seconds: float) -> None:
        """Take no request for ``seconds`` from now (the provider asked us via Retry-After)."""
        self._next_slot = max(self._next_slot, self._clock() + seconds)

    def free_at(self) -> float:
        """Monotonic time of the next free slot."""
        return max(self._clock(), self._next_slot)


@dataclass(slots=True)
class _Failure:
    outcome: Outcome
    text: str
    retryable: bool
    retry_after: float | None = None


class KrakenRestClient:
    """Kraken's public Ticker endpoint with one limiter, retries, a circuit breaker and health.

    The caller owns ``http`` (an :class:`httpx.AsyncClient`, so tests and proxies can inject
    their own). Each :meth:`fetch_tickers` call makes at most ``1 + max_retries`` requests,
    each bounded by ``request_timeout`` and by the optional overall ``deadline``.
    """

    def __init__(
        self,
        *,
        base_url: str,
        http: httpx.AsyncClient,
        registry: PairRegistry,
        metrics: Metrics | None,
        request_timeout: float,
        max_retries: int,
        min_interval: float = 1.0,
        backoff_initial: float = 0.25,
        backoff_max: float = 5.0,
        name: str = "kraken_rest",
        circuit_threshold: int = 5,
        circuit_cooldown: float = 30.0,
        limiter: RequestLimiter | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.registry = registry
        self.metrics = metrics
        self.request_timeout = request_timeout
        self.max_retries = max(0, max_retries)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.limiter = limiter or RequestLimiter(min_interval)
        self.health = SourceHealth(name=name, kind="rest", state="idle")
        self.breaker = CircuitBreaker(
            circuit_threshold, circuit_cooldown, on_change=self._on_circuit_change
        )
        self._parse_errors = ParseErrorReporter(name, metrics)
        if metrics is not None:
            bind_health_metrics(self.health, metrics)

    async def fetch_tickers(
        self, pairs: Sequence[Pair], *, deadline: float | None = None
    ) -> RestTickerResult:
        """Fetch the tickers of ``pairs`` in one request, retrying transient failures.

        ``deadline`` is a :func:`time.monotonic` value no attempt or wait runs past. A pair
        missing from a successful answer is simply absent from the result. Raises
        :class:`UpstreamError` when the circuit is open or when it gives up.
        """
        wanted = list(dict.fromkeys(pairs))
        if not wanted:
            return RestTickerResult()
        altnames = [self._altname(pair) for pair in wanted]
        url = f"{self.base_url}{TICKER_PATH}?pair={','.join(altnames)}"
        label = ", ".join(str(pair) for pair in wanted)
        backoff = Backoff(self.backoff_initial, self.backoff_max)
        attempts = 0
        last: _Failure | None = None

        while True:
            if not self.breaker.allow():
                raise self._give_up(label, attempts, last, "circuit open")
            remaining = _remaining(deadline)
            if remaining is not None and remaining <= 0:
                raise self._give_up(label, attempts, last, "deadline reached")
            if not await self.limiter.acquire(deadline):
                raise self._give_up(
                    label, attempts, last, "rate limiter has no slot before deadline"
                )
            attempts += 1
            outcome = await self._attempt(url, deadline)
            if isinstance(outcome, RestTickerResult):
                return outcome
            last = outcome
            if not outcome.retryable or attempts > self.max_retries:
                raise self._give_up(label, attempts, last, None)
            delay = outcome.retry_after if outcome.retry_after is not None else backoff.next_delay()
            if outcome.retry_after is not None:
                self.limiter.defer(outcome.retry_after)
            remaining = _remaining(deadline)
            if remaining is not None and delay >= remaining:
                reason = f"next try in {delay:.2f}s would pass the deadline"
                raise self._give_up(label, attempts, last, reason)
            if self.metrics is not None:
                self.metrics.source_retries.labels(self.name).inc()
            log.debug(
                "kraken rest retry",
                source=self.name,
                attempt=attempts,
                delay=round(delay, 3),
                failure=outcome.text,
            )
            await asyncio.sleep(delay)

    def _altname(self, pair: Pair) -> str:
        try:
            return self.registry.info(pair).altname
        except KeyError:
            raise UnsupportedPair(f"{pair} is not a Kraken pair", parameter="pair") from None

    async def _attempt(self, url: str, deadline: float | None) -> RestTickerResult | _Failure:
        """One request: a parsed result, or a classified failure (health and metrics updated)."""
        timeout = self.request_timeout
        remaining = _remaining(deadline)
        if remaining is not None:
            timeout = min(timeout, remaining)
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                response = await self.http.get(url, timeout=httpx.Timeout(timeout))
        except (TimeoutError, httpx.TimeoutException):
            return self._failed("transport_error", f"timed out after {timeout:.2f}s", True, started)
        except httpx.RequestError as exc:
            text = _redact(f"{type(exc).__name__}: {exc}".rstrip(": "))
            return self._failed("transport_error", text, True, started)

        if response.status_code != 200:
            retryable = response.status_code == 429 or response.status_code >= 500
            text = f"HTTP {response.status_code}{_error_suffix(response.content)}"
            retry_after = _retry_after(response.headers.get("Retry-After")) if retryable else None
            return self._failed("http_error", text, retryable, started, retry_after)

        received_at = utcnow()
        try:
            payload = orjson.loads(response.content)
            result = parse_ticker_response(
                payload, registry=self.registry, source=self.name, received_at=received_at
            )
        except (orjson.JSONDecodeError, ParseError) as exc:
            error = exc if isinstance(exc, ParseError) else ParseError("rest_json", str(exc))
            self._parse_errors.report(error, response.content[:500])
            return self._failed("parse_error", f"malformed response: {error}", False, started)

        for bad in result.bad_entries:
            self._parse_errors.report(bad, response.content[:500])
        if result.errors and not result.tickers:
            text = "Kraken error " + ", ".join(result.errors)
            retryable = any(is_retryable_kraken_error(error) for error in result.errors)
            if not retryable:
                # A definite answer: Kraken is up, the request was refused. Not an outage.
                self.breaker.record_success()
                self._observe("kraken_error", started)
                self.health.failed("kraken_error", text)
                return _Failure("kraken_error", text, False)
            return self._failed("kraken_error", text, True, started)

        self._observe("ok", started)
        self.breaker.record_success()
        self.health.heard()
        self.health.connected = True
        self.health.state = "polling"
        self.health.detail = ""
        if self.metrics is not None:
            self.metrics.source_messages.labels(self.name, "ticker_response").inc()
        if result.errors:
            log.debug("kraken rest answered with errors", source=self.name, errors=result.errors)
        return result

    def _failed(
        self,
        outcome: Outcome,
        text: str,
        retryable: bool,
        started: float,
        retry_after: float | None = None,
    ) -> _Failure:
        self._observe(outcome, started)
        self.breaker.record_failure()
        self.health.failed(outcome, text)
        return _Failure(outcome, text, retryable, retry_after)

    def _observe(self, outcome: Outcome, started: float) -> None:
        if self.metrics is not None:
            self.metrics.source_requests.labels(self.name, outcome).inc()
            self.metrics.source_request_duration.labels(self.name).observe(
                time.monotonic() - started
            )

    def _count_error(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.source_errors.labels(self.name, kind).inc()

    def _give_up(
        self, label: str, attempts: int, last: _Failure | None, reason: str | None
    ) -> UpstreamError:
        parts = [f"Kraken REST ticker for {label} failed"]
        if attempts:
            parts.append(f"after {attempts} attempt{'s' if attempts != 1 else ''}")
        if last is not None:
            parts.append(f"(last: {last.text})")
        if reason:
            parts.append(f"[{reason}]")
        message = " ".join(parts)
        self.health.connected = False
        self.health.state = "failed"
        self.health.detail = message
        if reason == "circuit open":
            # Failing fast is the breaker working; its opening was logged once already.
            self._count_error("circuit_open")
            log.debug("kraken rest circuit open", source=self.name, pairs=label)
        else:
            self._count_error(last.outcome if last is not None else "deadline")
            log.warning("kraken rest gave up", source=self.name, error=message)
        return UpstreamError(
            message,
            details={
                "source": self.name,
                "pairs": label.split(", "),
                "attempts": attempts,
                "last_failure": last.text if last is not None else None,
                "circuit": self.breaker.state,
            },
        )

    def _on_circuit_change(self, state: str) -> None:
        self.health.circuit = state
        log.warning("kraken rest circuit breaker", source=self.name, state=state)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def _redact(text: str) -> str:
    """Remove URLs (which may carry credentials of a proxy) from an error text."""
    return _URL.sub("<url>", text)


def _error_suffix(content: bytes) -> str:
    """`` EService:Unavailable`` when an error response carries Kraken's error array."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(body, dict):
        errors = body.get("error")
        if isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
            return " " + ", ".join(errors)[:200]
    return ""


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - utcnow()).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
