"""What the two polled token-market providers (CoinMarketCap, CoinGecko) share: one HTTP loop.

:class:`PolledProvider` makes one provider's GET requests: through the provider's
:class:`~tokenpulse.sources.kraken.rest.RequestLimiter`, each bounded by a timeout, retried
with capped jittered backoff on transport errors and 5xx, behind a circuit breaker, with
health and metrics. Each subclass classifies its provider's answers (:meth:`_classify`) into
one of three lasting outcomes besides success and retryable failure:

* **rejected** (bad key, plan, payment): the source is *disabled* — one clear log line,
  ``health.state == "disabled"``, :class:`ProviderRejected` now and on every later call,
  without another request; retrying cannot help and would only spam the provider.
* **rate limited** (HTTP 429 or the provider's own code): :class:`ProviderRateLimited`
  carrying ``retry_after``; calls before that moment fail at once without a request.
* anything else definite (400, 404): :class:`UpstreamError`, not retried.

Bodies are decoded with ``json.loads(..., parse_float=Decimal)`` so a price keeps the digits
the provider sent (§4.6). Only :class:`~tokenpulse.sources.market.MarketScheduler` (and the
explicit refresh endpoint) call these clients: no client request ever reaches a provider.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx
import structlog

from tokenpulse.domain.errors import (
    ParseError,
    ProviderRateLimited,
    ProviderRejected,
    UpstreamError,
)
from tokenpulse.domain.time import from_epoch, isoformat_z
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._health import (
    Backoff,
    CircuitBreaker,
    ParseErrorReporter,
    SourceHealth,
    bind_health_metrics,
)
from tokenpulse.sources.kraken.rest import RequestLimiter

log = structlog.get_logger(__name__)

DEFAULT_RETRY_AFTER = 60.0  # seconds, when a provider says "slow down" without Retry-After
_Failed = Literal["http_error", "transport_error", "provider_error", "parse_error"]
Outcome = Literal["ok", "rate_limited", "rejected", _Failed]

_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Verdict:
    """How one HTTP answer is classified; ``None`` from :meth:`_classify` means success."""

    outcome: Outcome
    text: str
    retryable: bool = False
    retry_after: float | None = None
    error_code: int | None = None
    provider_up: bool = False  # a definite answer (404, 400): not an outage for the breaker
    http_status: int | None = None


def decode_json_exact(content: bytes) -> Any:
    """Decode a JSON body keeping every digit of every number (floats become Decimal)."""
    try:
        return json.loads(content, parse_float=Decimal)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise ParseError("json", f"body is not JSON: {str(exc)[:200]}") from None


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None if unusable.

    ``now`` is the wall-clock time (unix seconds) an HTTP date is measured from.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def redact(text: str) -> str:
    """Remove URLs (they may carry a proxy's credentials) from an error text."""
    return _URL.sub("<url>", text)


class PolledProvider:
    """One provider's GET loop: limiter, timeouts, retries, circuit, disable and rate-limit state.

    ``clock`` is wall time (unix seconds): rate-limit deadlines and the breaker's cooldown are
    measured with it, so tests can move time by hand. ``sleep`` waits between retries.
    """

    def __init__(
        self,
        *,
        name: str,
        label: str,
        base_url: str,
        http: httpx.AsyncClient,
        metrics: Metrics | None,
        request_timeout: float,
        max_retries: int,
        limiter: RequestLimiter,
        headers: Mapping[str, str],
        backoff_initial: float,
        backoff_max: float,
        circuit_threshold: int,
        circuit_cooldown: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[object]],
    ) -> None:
        self.name = name
        self.label = label  # provider name for messages: "CoinMarketCap", "CoinGecko"
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.metrics = metrics
        self.request_timeout = request_timeout
        self.max_retries = max(0, max_retries)
        self.limiter = limiter
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.disabled_reason: str | None = None
        self.rate_limited_until: float | None = None
        self.health = SourceHealth(name=name, kind="rest", state="idle")
        self.breaker = CircuitBreaker(
            circuit_threshold, circuit_cooldown, clock=clock, on_change=self._on_circuit_change
        )
        self._headers = dict(headers)
        self._clock = clock
        self._sleep = sleep
        self.parse_errors = ParseErrorReporter(name, metrics)
        if metrics is not None:
            bind_health_metrics(self.health, metrics)

    # ------------------------------------------------------------------ state

    @property
    def disabled(self) -> bool:
        """True once the provider refused us for good (or we never had what it needs)."""
        return self.disabled_reason is not None

    def rate_limited_for(self) -> float:
        """Seconds until the provider takes requests again (0 when it does now)."""
        if self.rate_limited_until is None:
            return 0.0
        return max(0.0, self.rate_limited_until - self._clock())

    def disable(self, reason: str) -> None:
        """Stop calling the provider: one log line, health ``disabled`` with ``reason``."""
        if self.disabled_reason is None:
            log.error("market data source disabled", source=self.name, reason=reason)
        self.disabled_reason = reason
        self.health.connected = False
        self.health.state = "disabled"
        self.health.detail = reason

    def state(self) -> dict[str, Any]:
        """Health plus the disable / rate-limit state, for ``/api/v1/sources``."""
        data = self.health.to_json()
        data["disabled"] = self.disabled
        data["rate_limited_until"] = (
            isoformat_z(from_epoch(self.rate_limited_until))
            if self.rate_limited_for() > 0 and self.rate_limited_until is not None
            else None
        )
        return data

    # ------------------------------------------------------------------ the loop

    async def _get(self, path: str, params: Mapping[str, str], *, what: str) -> Any:
        """GET ``path`` and return the decoded body of a successful answer.

        Raises :class:`ProviderRejected` (and disables the source), :class:`ProviderRateLimited`
        or :class:`UpstreamError`; never anything else for a provider fault.
        """
        url = f"{self.base_url}{path}"
        backoff = Backoff(self.backoff_initial, self.backoff_max)
        attempts = 0
        last: Verdict | None = None
        while True:
            self._check_usable(what)
            if not self.breaker.allow():
                raise self._give_up(what, attempts, last, "circuit open")
            await self.limiter.acquire()
            attempts += 1
            started = time.monotonic()
            outcome = await self._attempt(url, params)
            if not isinstance(outcome, Verdict):
                self._succeeded(started)
                return outcome
            last = outcome
            self._failed(outcome, started)
            if outcome.outcome == "rejected":
                self.disable(
                    f"{self.label} refused {what}: {outcome.text}; "
                    "the source stays disabled until restart"
                )
                assert self.disabled_reason is not None
                raise ProviderRejected(self.disabled_reason, details={"source": self.name})
            if outcome.outcome == "rate_limited":
                raise self._rate_limited(outcome, what)
            if not outcome.retryable or attempts > self.max_retries:
                raise self._give_up(what, attempts, last, None)
            if self.metrics is not None:
                self.metrics.source_retries.labels(self.name).inc()
            delay = backoff.next_delay()
            log.debug(
                "market provider retry",
                source=self.name,
                attempt=attempts,
                delay=round(delay, 3),
                failure=outcome.text,
            )
            await self._sleep(delay)

    def _check_usable(self, what: str) -> None:
        if self.disabled_reason is not None:
            raise ProviderRejected(self.disabled_reason, details={"source": self.name})
        wait = self.rate_limited_for()
        if wait > 0:
            raise ProviderRateLimited(
                f"{self.label} {what} not requested: rate limited for another {wait:.1f}s",
                retry_after=wait,
                source=self.name,
            )

    async def _attempt(self, url: str, params: Mapping[str, str]) -> Any:
        """One request: the decoded body of a success, or a :class:`Verdict`."""
        timeout = self.request_timeout
        try:
            async with asyncio.timeout(timeout):
                response = await self.http.get(
                    url, params=params, headers=self._headers, timeout=httpx.Timeout(timeout)
                )
        except (TimeoutError, httpx.TimeoutException):
            return Verdict("transport_error", f"timed out after {timeout:.2f}s", retryable=True)
        except httpx.RequestError as exc:
            text = redact(f"{type(exc).__name__}: {exc}".rstrip(": "))
            return Verdict("transport_error", text, retryable=True)
        payload: Any = None
        decode_error: ParseError | None = None
        try:
            payload = decode_json_exact(response.content)
        except ParseError as exc:
            decode_error = exc
        verdict = self._classify(response, payload)
        if verdict is not None:
            return verdict
        if decode_error is not None:
            self.parse_errors.report(decode_error, response.content[:500])
            return Verdict("parse_error", f"malformed response: {decode_error}")
        return payload

    def _classify(self, response: httpx.Response, payload: Any) -> Verdict | None:
        """Classify an answer (``payload`` is None when the body is not JSON); None = success."""
        return self.classify_http(response)

    def classify_http(self, response: httpx.Response) -> Verdict | None:
        """The generic reading of an HTTP status: 429 slow down, 5xx/408 retry, 4xx definite."""
        code = response.status_code
        if code == 200:
            return None
        text = f"HTTP {code}"
        if code == 429:
            return Verdict(
                "rate_limited", text, retry_after=self.retry_after_of(response), http_status=code
            )
        if code >= 500 or code == 408:
            return Verdict("http_error", text, retryable=True, http_status=code)
        return Verdict("http_error", text, provider_up=True, http_status=code)

    def retry_after_of(self, response: httpx.Response) -> float:
        """The answer's ``Retry-After`` in seconds, or a minute when it has none."""
        seconds = retry_after_seconds(response.headers.get("Retry-After"), now=self._clock())
        return DEFAULT_RETRY_AFTER if seconds is None else seconds

    # ------------------------------------------------------------------ bookkeeping

    def _succeeded(self, started: float) -> None:
        self._observe("ok", started)
        self.breaker.record_success()
        self.health.heard()
        self.health.connected = True
        self.health.state = "polling"
        self.health.detail = ""

    def _failed(self, verdict: Verdict, started: float) -> None:
        self._observe(verdict.outcome, started)
        if verdict.provider_up or verdict.outcome in ("rate_limited", "rejected"):
            self.breaker.record_success()  # the provider answered; it is not down
        else:
            self.breaker.record_failure()
        self.health.failed(verdict.outcome, verdict.text)

    def _rate_limited(self, verdict: Verdict, what: str) -> ProviderRateLimited:
        retry_after = DEFAULT_RETRY_AFTER if verdict.retry_after is None else verdict.retry_after
        self.rate_limited_until = self._clock() + retry_after
        self.limiter.defer(retry_after)
        self.health.connected = True
        self.health.state = "rate_limited"
        self.health.detail = f"{verdict.text}; next request in {retry_after:g}s"
        if self.metrics is not None:
            self.metrics.provider_rate_limited.labels(self.name).inc()
        log.warning(
            "market provider rate limited",
            source=self.name,
            retry_after=retry_after,
            error=verdict.text,
        )
        return ProviderRateLimited(
            f"{self.label} {what}: {verdict.text}; retry after {retry_after:g}s",
            retry_after=retry_after,
            source=self.name,
            error_code=verdict.error_code,
        )

    def _give_up(
        self, what: str, attempts: int, last: Verdict | None, reason: str | None
    ) -> UpstreamError:
        parts = [f"{self.label} {what} failed"]
        if attempts:
            parts.append(f"after {attempts} attempt{'s' if attempts != 1 else ''}")
        if last is not None:
            parts.append(f"(last: {last.text})")
        if reason:
            parts.append(f"[{reason}]")
        message = " ".join(parts)
        if last is None or not last.provider_up:
            self.health.connected = False
            self.health.state = "failed"
        self.health.detail = message
        if self.metrics is not None:
            kind = "circuit_open" if reason == "circuit open" else (last.outcome if last else "")
            self.metrics.source_errors.labels(self.name, kind or "unknown").inc()
        if reason == "circuit open":
            log.debug("market provider circuit open", source=self.name, what=what)
        elif last is not None and last.provider_up:  # a definite answer such as a 404
            log.info("market provider refused a request", source=self.name, error=message)
        else:
            log.warning("market provider request failed", source=self.name, error=message)
        return UpstreamError(
            message,
            details={
                "source": self.name,
                "attempts": attempts,
                "last_failure": last.text if last is not None else None,
                "http_status": last.http_status if last is not None else None,
                "circuit": self.breaker.state,
            },
        )

    def _observe(self, outcome: Outcome, started: float) -> None:
        if self.metrics is not None:
            self.metrics.source_requests.labels(self.name, outcome).inc()
            self.metrics.source_request_duration.labels(self.name).observe(
                time.monotonic() - started
            )

    def _on_circuit_change(self, state: str) -> None:
        self.health.circuit = state
        log.warning("market provider circuit breaker", source=self.name, state=state)
