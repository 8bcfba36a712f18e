"""Kraken REST ``GET /0/public/Ticker``: the LTP fallback when the WebSocket feed is down.

:class:`KrakenRestClient` is a :class:`~tokenpulse.sources._http.ProviderClient` (one limiter
shared by every Kraken REST call, since Kraken rate-limits per IP; timeouts; retries that
honour ``Retry-After`` and never run past the caller's deadline; a circuit breaker, metrics
and health). What is Kraken's own is here: the request (pairs by altname) and the reading of
an answer, where Kraken's ``error`` array decides: a throttling or service error is retried,
anything else is a definite answer. The body is parsed by the sans-I/O
:func:`~tokenpulse.sources.kraken.rest_parser.parse_ticker_response`.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import orjson
import structlog

from tokenpulse.domain.errors import ParseError, UnsupportedPair
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.domain.time import utcnow
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._answers import Verdict
from tokenpulse.sources._health import RequestLimiter
from tokenpulse.sources._http import ProviderClient
from tokenpulse.sources.kraken.rest_parser import (
    RestTickerResult,
    is_retryable_kraken_error,
    parse_ticker_response,
)

__all__ = ["TICKER_PATH", "KrakenRestClient", "RestTickerResult", "kraken_http_verdict"]

log = structlog.get_logger(__name__)

TICKER_PATH = "/0/public/Ticker"
DEFAULT_MIN_INTERVAL = 1.0  # seconds between Kraken REST calls (its public limit is per IP)


def kraken_http_verdict(response: httpx.Response, retry_after: float | None) -> Verdict | None:
    """A non-200 Kraken answer: 429 and 5xx are retried (after ``Retry-After``), 4xx are not."""
    code = response.status_code
    if code == 200:
        return None
    retryable = code == 429 or code >= 500
    return Verdict(
        "http_error",
        f"HTTP {code}{_error_suffix(response.content)}",
        retryable=retryable,
        retry_after=retry_after if retryable else None,
        http_status=code,
    )


class KrakenRestClient(ProviderClient):
    """Kraken's public Ticker endpoint through the one provider client.

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
        min_interval: float = DEFAULT_MIN_INTERVAL,
        backoff_initial: float = 0.25,
        backoff_max: float = 5.0,
        name: str = "kraken_rest",
        circuit_threshold: int = 5,
        circuit_cooldown: float = 30.0,
        limiter: RequestLimiter | None = None,
    ) -> None:
        super().__init__(
            name=name,
            label="Kraken REST",
            base_url=base_url,
            http=http,
            metrics=metrics,
            request_timeout=request_timeout,
            max_retries=max_retries,
            limiter=limiter or RequestLimiter(min_interval),
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            circuit_threshold=circuit_threshold,
            circuit_cooldown=circuit_cooldown,
        )
        self.registry = registry

    async def fetch_tickers(
        self, pairs: Sequence[Pair], *, deadline: float | None = None
    ) -> RestTickerResult:
        """Fetch the tickers of ``pairs`` in one request, retrying transient failures.

        ``deadline`` is a :func:`time.monotonic` value no attempt or wait runs past. A pair
        missing from a successful answer is simply absent from the result, and so is a pair
        Kraken does not list (only another venue does). Raises :class:`UpstreamError` when
        the circuit is open or when it gives up.
        """
        wanted = [pair for pair in dict.fromkeys(pairs) if pair in self.registry.kraken]
        if not wanted:
            return RestTickerResult(errors=[f"{p}: not a Kraken pair" for p in pairs])
        altnames = ",".join(self.altname(pair) for pair in wanted)
        label = ", ".join(str(pair) for pair in wanted)
        return await self._get(
            f"{TICKER_PATH}?pair={altnames}",
            None,
            what=f"ticker for {label}",
            read=self._read_ticker,
            deadline=deadline,
            details={"pairs": label.split(", ")},
        )

    def altname(self, pair: Pair) -> str:
        """Kraken's name of ``pair`` in a request (``XBTUSD``); UnsupportedPair if it has none."""
        try:
            return self.registry.info(pair).altname
        except KeyError:
            raise UnsupportedPair(f"{pair} is not a Kraken pair", parameter="pair") from None

    def _read_ticker(self, response: httpx.Response) -> RestTickerResult | Verdict:
        verdict = kraken_http_verdict(response, self.retry_after_of(response))
        if verdict is not None:
            return verdict
        try:
            payload = orjson.loads(response.content)
            result = parse_ticker_response(
                payload, registry=self.registry, source=self.name, received_at=utcnow()
            )
        except (orjson.JSONDecodeError, ParseError) as exc:
            error = exc if isinstance(exc, ParseError) else ParseError("rest_json", str(exc))
            self.parse_errors.report(error, response.content[:500])
            return Verdict("parse_error", f"malformed response: {error}")
        for bad in result.bad_entries:
            self.parse_errors.report(bad, response.content[:500])
        if result.errors and not result.tickers:
            retryable = any(is_retryable_kraken_error(error) for error in result.errors)
            # a definite refusal means Kraken is up: not an outage for the breaker
            text = "Kraken error " + ", ".join(result.errors)
            return Verdict("kraken_error", text, retryable=retryable, provider_up=not retryable)
        if self.metrics is not None:
            self.metrics.source_messages.labels(self.name, "ticker_response").inc()
        if result.errors:
            log.debug("kraken rest answered with errors", source=self.name, errors=result.errors)
        return result


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
