"""The one provider HTTP client: every REST call to Kraken, CoinGecko and CoinMarketCap.

:class:`ProviderClient` makes one provider's GET requests through its
:class:`~tokenpulse.sources._health.RequestLimiter` (a minimum interval between requests),
each bounded by a timeout, retried by stamina with capped jittered backoff (or exactly the
provider's ``Retry-After``), behind a circuit breaker, with health, metrics and URLs
redacted from error texts. A provider subclass builds its requests and reads each answer
into its result or a :class:`~tokenpulse.sources._answers.Verdict`:

* **retryable** (transport errors, timeouts, 5xx, a provider's "busy" code): tried again,
  up to ``max_retries`` times, never past the caller's ``deadline``.
* **rejected** (bad key, plan, payment): the source is *disabled* — one clear log line,
  ``health.state == "disabled"``, :class:`ProviderRejected` now and on every later call,
  without another request; retrying cannot help and would only spam the provider.
* **rate limited**: :class:`ProviderRateLimited` carrying ``retry_after``; calls before that
  moment fail at once without a request.
* anything else definite (400, 404, a parse error): :class:`UpstreamError`, not retried.

Tests switch stamina's backoff off with ``stamina.set_testing(True, …)``; a ``Retry-After``
still holds in test mode because the limiter defers the provider's next request by it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx
import stamina
import structlog

from tokenpulse.domain.errors import (
    ParseError,
    ProviderRateLimited,
    ProviderRejected,
    UpstreamError,
)
from tokenpulse.domain.time import from_epoch, isoformat_z
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._answers import (
    Verdict,
    classify_status,
    decode_json_exact,
    redact,
    retry_after_seconds,
)
from tokenpulse.sources._health import (
    CircuitBreaker,
    ParseErrorReporter,
    RequestLimiter,
    SourceHealth,
    bind_health_metrics,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")
DEFAULT_RETRY_AFTER = 60.0  # seconds, when a provider says "slow down" without Retry-After
CIRCUIT_OPEN = "circuit open"


class ProviderClient:
    """One provider's GET loop: limiter, timeouts, stamina retries, circuit, health, metrics.

    ``clock`` is wall time (unix seconds) for rate-limit deadlines and the breaker, so tests
    can move it by hand; a caller's ``deadline`` is :func:`time.monotonic`. With
    ``export_health=False`` a second client under the same source name leaves the gauges be.
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
        headers: Mapping[str, str] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        circuit_threshold: int = 5,
        circuit_cooldown: float = 30.0,
        clock: Callable[[], float] = time.time,
        export_health: bool = True,
    ) -> None:
        self.name = name
        self.label = label  # provider name for messages: "Kraken REST", "CoinGecko"
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
        self.parse_errors = ParseErrorReporter(name, metrics)
        self._headers = dict(headers or {})
        self._clock = clock
        if metrics is not None and export_health:
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

    async def _get(
        self,
        path: str,
        params: Mapping[str, str] | None,
        *,
        what: str,
        read: Callable[[httpx.Response], T | Verdict],
        deadline: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> T:
        """GET ``path`` until ``read`` turns an answer into a result, or give up.

        Raises :class:`ProviderRejected` (and disables the source), :class:`ProviderRateLimited`
        or :class:`UpstreamError`; never anything else for a provider fault.
        """
        url = f"{self.base_url}{path}"
        extra = dict(details or {})
        attempts = 0
        last: Verdict | None = None
        failure: UpstreamError | None = None  # what the attempt that just failed raised
        decision: bool | float = False  # retry it? a float is the provider's Retry-After

        def retry_on(exc: Exception) -> bool | float:
            return decision if exc is failure else False

        try:
            async for attempt in stamina.retry_context(
                on=retry_on,
                attempts=self.max_retries + 1,
                timeout=None,
                wait_initial=self.backoff_initial,
                wait_max=self.backoff_max,
                wait_jitter=self.backoff_initial,
            ):
                with attempt:
                    self._check_usable(what)
                    reason = await self._wait_for_slot(deadline)
                    if reason is not None:
                        raise self._give_up(what, attempts, last, reason, extra)
                    attempts += 1
                    started = time.monotonic()
                    outcome = await self._attempt(url, params, read, deadline)
                    if not isinstance(outcome, Verdict):
                        self._succeeded(started)
                        return outcome
                    last = outcome
                    self._failed(outcome, started)
                    decision, reason = self._next_try(outcome, attempts, what, deadline)
                    if decision is False:
                        raise self._give_up(what, attempts, last, reason, extra)
                    if self.metrics is not None:
                        self.metrics.source_retries.labels(self.name).inc()
                    failure = UpstreamError(f"{self.label} {what}: {outcome.text}")
                    raise failure
        except UpstreamError as exc:
            if failure is not None and exc is failure:  # stamina ran out of attempts
                raise self._give_up(what, attempts, last, None, extra) from None
            raise
        raise AssertionError("unreachable: stamina neither returned nor raised")

    async def _wait_for_slot(self, deadline: float | None) -> str | None:
        """Wait for the breaker and the limiter; the reason to give up instead, if any."""
        if not self.breaker.allow():
            return CIRCUIT_OPEN
        remaining = _remaining(deadline)
        if remaining is not None and remaining <= 0:
            return "deadline reached"
        if not await self.limiter.acquire(deadline):
            return "rate limiter has no slot before deadline"
        return None

    def _next_try(
        self, verdict: Verdict, attempts: int, what: str, deadline: float | None
    ) -> tuple[bool | float, str | None]:
        """Whether to try again (a float: after exactly that wait), or why not; may raise."""
        if verdict.outcome == "rejected":
            self.disable(
                f"{self.label} refused {what}: {verdict.text}; "
                "the source stays disabled until restart"
            )
            assert self.disabled_reason is not None
            raise ProviderRejected(self.disabled_reason, details={"source": self.name})
        if verdict.outcome == "rate_limited":
            raise self._rate_limited(verdict, what)
        if verdict.retry_after is not None:
            self.limiter.defer(verdict.retry_after)
        if not verdict.retryable or attempts > self.max_retries:
            return False, None
        # the longest stamina may wait before retry number ``attempts`` (its jitter included)
        longest = min(self.backoff_max, self.backoff_initial * (2 ** (attempts - 1) + 1))
        delay = longest if verdict.retry_after is None else verdict.retry_after
        remaining = _remaining(deadline)
        if remaining is not None and delay >= remaining:
            return False, f"next try in {delay:.2f}s would pass the deadline"
        return (True if verdict.retry_after is None else verdict.retry_after), None

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

    async def _attempt(
        self,
        url: str,
        params: Mapping[str, str] | None,
        read: Callable[[httpx.Response], T | Verdict],
        deadline: float | None,
    ) -> T | Verdict:
        """One request, bounded by the request timeout and the deadline: ``read``'s answer."""
        timeout = self.request_timeout
        remaining = _remaining(deadline)
        if remaining is not None:
            timeout = min(timeout, remaining)
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
        return read(response)

    def read_json(self, response: httpx.Response) -> Any:
        """The exact JSON body of an answer :meth:`classify` accepts, else its Verdict."""
        payload: Any = None
        decode_error: ParseError | None = None
        try:
            payload = decode_json_exact(response.content)
        except ParseError as exc:
            decode_error = exc
        verdict = self.classify(response, payload)
        if verdict is not None:
            return verdict
        if decode_error is not None:
            self.parse_errors.report(decode_error, response.content[:500])
            return Verdict("parse_error", f"malformed response: {decode_error}")
        return payload

    def classify(self, response: httpx.Response, payload: Any) -> Verdict | None:
        """Classify an answer (``payload`` is None when the body is not JSON); None = success."""
        return self.classify_http(response)

    def classify_http(self, response: httpx.Response) -> Verdict | None:
        """The generic reading of the answer's HTTP status (see :func:`classify_status`)."""
        return classify_status(response.status_code, self.retry_after_of(response))

    def retry_after_of(self, response: httpx.Response) -> float | None:
        """The answer's ``Retry-After`` in seconds, None when it has none (or a bad one)."""
        return retry_after_seconds(response.headers.get("Retry-After"), now=self._clock())

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
            "provider rate limited", source=self.name, retry_after=retry_after, error=verdict.text
        )
        return ProviderRateLimited(
            f"{self.label} {what}: {verdict.text}; retry after {retry_after:g}s",
            retry_after=retry_after,
            source=self.name,
            error_code=verdict.error_code,
        )

    def _give_up(
        self,
        what: str,
        attempts: int,
        last: Verdict | None,
        reason: str | None,
        details: Mapping[str, Any],
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
            kind = (
                "circuit_open" if reason == CIRCUIT_OPEN else last.outcome if last else "deadline"
            )
            self.metrics.source_errors.labels(self.name, kind).inc()
        if reason == CIRCUIT_OPEN:  # failing fast is the breaker working; its opening was logged
            log.debug("provider circuit open", source=self.name, what=what)
        elif last is not None and last.provider_up:  # a definite answer such as a 404
            log.info("provider refused a request", source=self.name, error=message)
        else:
            log.warning("provider request failed", source=self.name, error=message)
        return UpstreamError(
            message,
            details={
                "source": self.name,
                **details,
                "attempts": attempts,
                "last_failure": last.text if last is not None else None,
                "http_status": last.http_status if last is not None else None,
                "circuit": self.breaker.state,
            },
        )

    def _observe(self, outcome: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.source_requests.labels(self.name, outcome).inc()
            self.metrics.source_request_duration.labels(self.name).observe(
                time.monotonic() - started
            )

    def _on_circuit_change(self, state: str) -> None:
        self.health.circuit = state
        log.warning("provider circuit breaker", source=self.name, state=state)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()
