"""CoinMarketCap Pro API: primary token market data when ``CMC_API_KEY`` is set (SPEC §3.4).

Two layers, as for every source: the sans-I/O parsers live in
:mod:`tokenpulse.sources.coinmarketcap.parser` (re-exported here), and :class:`CmcClient`
does the I/O on top of :class:`~tokenpulse.sources._http.ProviderClient`:

* ``GET /v1/cryptocurrency/listings/latest?start=&limit=&convert=USD&sort=market_cap``
  (the top N) and ``GET /v2/cryptocurrency/quotes/latest?id=|slug=|symbol=&convert=USD``
  (a tracked set), the key in the ``X-CMC_PRO_API_KEY`` header (never in the URL, never
  logged).
* CMC's answers, by HTTP status and ``status.error_code``:

  ===============================  ================================================
  401/402/403, 1001–1007           key invalid/missing, payment, plan: the source is
                                   disabled (health ``disabled``, one log line,
                                   :class:`ProviderRejected`, no retry loop)
  429, 1008 (per minute), 1011     :class:`ProviderRateLimited`, ``retry_after`` from
  (per IP)                         ``Retry-After`` or 60 s
  1009 (daily cap)                 rate limited until the next UTC midnight
  1010 (monthly cap)               rate limited until the month rolls over; the
                                   budget is marked spent
  5xx, timeouts, transport errors  retried with backoff, up to ``max_retries``
  ===============================  ================================================

* Credits: every answer's ``status.credit_count`` is counted (metric
  ``tokenpulse_provider_credits_used_total``) and, when a :class:`CreditBudget` is attached,
  added to this month's spending; a call that would pass the month's allowance is refused
  (:class:`BudgetExhausted`) before any request is made.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tokenpulse.domain.errors import InvalidParameter, ParseError, UpstreamError
from tokenpulse.domain.time import from_epoch, utcnow
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._answers import Verdict
from tokenpulse.sources._health import RequestLimiter
from tokenpulse.sources._http import ProviderClient
from tokenpulse.sources.coinmarketcap.credits import (
    LISTINGS_COINS_PER_CREDIT,
    QUOTES_COINS_PER_CREDIT,
    CreditBudget,
    credits_for,
    month_bounds,
)
from tokenpulse.sources.coinmarketcap.parser import (
    CmcStatus,
    ListingResult,
    QuotesResult,
    parse_coin,
    parse_listings,
    parse_quotes_v2,
    parse_status,
)

__all__ = [
    "CmcClient",
    "CmcStatus",
    "CreditBudget",
    "ListingResult",
    "QuotesResult",
    "credits_for",
    "parse_coin",
    "parse_listings",
    "parse_quotes_v2",
    "parse_status",
]

LISTINGS_PATH = "/v1/cryptocurrency/listings/latest"
QUOTES_PATH = "/v2/cryptocurrency/quotes/latest"
KEY_HEADER = "X-CMC_PRO_API_KEY"
MAX_LISTING_LIMIT = 5000

#: CMC error codes (docs: "Error Response Codes"). 1001 API_KEY_INVALID, 1002 API_KEY_MISSING,
#: 1003 API_KEY_PLAN_REQUIRES_PAYEMENT, 1004 API_KEY_PLAN_PAYMENT_EXPIRED, 1005
#: API_KEY_REQUIRED, 1006 API_KEY_PLAN_NOT_AUTHORIZED, 1007 API_KEY_DISABLED.
REJECTING_CODES = frozenset(range(1001, 1008))
#: 1008 API_KEY_PLAN_MINUTE_RATE_LIMIT_REACHED, 1011 IP_RATE_LIMIT_REACHED.
RATE_LIMIT_CODES = frozenset({1008, 1011})
DAILY_LIMIT_CODE = 1009  # API_KEY_PLAN_DAILY_RATE_LIMIT_REACHED
MONTHLY_LIMIT_CODE = 1010  # API_KEY_PLAN_MONTHLY_RATE_LIMIT_REACHED
REJECTING_STATUSES = frozenset({401, 402, 403})


class CmcClient(ProviderClient):
    """CoinMarketCap listings and quotes with credits accounting and error handling.

    The caller owns ``http``. ``clock`` is wall time (unix seconds): rate-limit deadlines and
    the calendar month are measured with it. Without an API key the client starts disabled
    and never makes a request. Attach the scheduler's :class:`CreditBudget` as ``budget`` so
    every credit charged counts against the month.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        http: httpx.AsyncClient,
        metrics: Metrics | None,
        request_timeout: float,
        max_retries: int,
        limiter: RequestLimiter | None = None,
        clock: Callable[[], float] = time.time,
        budget: CreditBudget | None = None,
        min_interval: float = 2.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        circuit_threshold: int = 5,
        circuit_cooldown: float = 60.0,
        name: str = "coinmarketcap",
    ) -> None:
        key = api_key.strip()
        super().__init__(
            name=name,
            label="CoinMarketCap",
            base_url=base_url,
            http=http,
            metrics=metrics,
            request_timeout=request_timeout,
            max_retries=max_retries,
            limiter=limiter or RequestLimiter(min_interval),
            headers={KEY_HEADER: key, "Accept": "application/json"} if key else {},
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            circuit_threshold=circuit_threshold,
            circuit_cooldown=circuit_cooldown,
            clock=clock,
        )
        self.has_key = bool(key)
        self.budget: CreditBudget | None = None
        self.credits_used = 0  # since start, whatever the month
        self.last_status: CmcStatus | None = None
        if not key:
            self.disabled_reason = "CMC_API_KEY is not set; CoinMarketCap is not used"
            self.health.state = "disabled"
            self.health.detail = self.disabled_reason
        if budget is not None:
            self.attach_budget(budget)

    def attach_budget(self, budget: CreditBudget) -> None:
        """Count every credit charged against ``budget`` and refuse calls it cannot pay for."""
        self.budget = budget
        if self.metrics is not None:
            self.metrics.provider_credits_left.labels(self.name).set_function(
                lambda: float(budget.left)
            )

    async def listings(self, limit: int, start: int = 1) -> ListingResult:
        """The top ``limit`` coins by market cap from rank ``start`` (USD quotes).

        Costs ``ceil(limit / 200)`` credits. Raises :class:`BudgetExhausted` before any
        request when that does not fit in this month's budget.
        """
        if not 1 <= limit <= MAX_LISTING_LIMIT:
            raise InvalidParameter(f"limit must be 1..{MAX_LISTING_LIMIT}", parameter="limit")
        if start < 1:
            raise InvalidParameter("start must be 1 or more", parameter="start")
        self._check_budget(credits_for(limit, LISTINGS_COINS_PER_CREDIT), "listings")
        params = {
            "start": str(start),
            "limit": str(limit),
            "convert": "USD",
            "sort": "market_cap",
        }
        payload = await self._get(LISTINGS_PATH, params, what="listings", read=self.read_json)
        result = self._parse(
            lambda received_at: parse_listings(payload, received_at=received_at), payload
        )
        assert isinstance(result, ListingResult)
        return result

    async def quotes(
        self,
        ids: Sequence[int] | None = None,
        *,
        symbols: Sequence[str] | None = None,
        slugs: Sequence[str] | None = None,
    ) -> QuotesResult:
        """Latest USD quotes for CMC ``ids``, or ``symbols``, or ``slugs`` (exactly one).

        By symbol, every coin using the symbol comes back. Unknown ones are skipped
        (``skip_invalid``). Costs ``ceil(n / 100)`` credits.
        """
        options = (("id", ids), ("symbol", symbols), ("slug", slugs))
        chosen = [(name, list(values)) for name, values in options if values]
        if len(chosen) != 1:
            raise InvalidParameter("pass exactly one of ids, symbols or slugs", parameter="ids")
        kind, values = chosen[0]
        text = [str(value).strip() for value in values if str(value).strip()]
        self._check_budget(credits_for(len(text), QUOTES_COINS_PER_CREDIT), "quotes")
        params = {kind: ",".join(dict.fromkeys(text)), "convert": "USD", "skip_invalid": "true"}
        payload = await self._get(QUOTES_PATH, params, what="quotes", read=self.read_json)
        result = self._parse(
            lambda received_at: parse_quotes_v2(payload, received_at=received_at), payload
        )
        assert isinstance(result, QuotesResult)
        return result

    # ------------------------------------------------------------------ internals

    def _check_budget(self, credits: int, what: str) -> None:
        if self.budget is not None:
            self._check_usable(what)  # a disabled source says so, not "budget spent"
            self.budget.check(credits)

    def _parse(self, parse: Callable[[datetime], ListingResult], payload: Any) -> ListingResult:
        try:
            result = parse(utcnow())
        except ParseError as exc:
            self.parse_errors.report(exc, str(payload)[:500])
            raise UpstreamError(
                f"CoinMarketCap answer malformed: {exc}", details={"source": self.name}
            ) from None
        for bad in result.bad_entries:
            self.parse_errors.report(bad, str(bad))
        if self.metrics is not None:
            self.metrics.source_messages.labels(self.name, "market_data").inc()
        return result

    def classify(self, response: httpx.Response, payload: Any) -> Verdict | None:
        try:
            status: CmcStatus | None = parse_status(payload)
        except ParseError:
            status = None
        if status is not None:
            self.last_status = status
            self._count_credits(status.credit_count)
        code = status.error_code if status is not None else 0
        http = response.status_code
        text = f"HTTP {http}"
        if status is not None and not status.ok:
            message = (status.error_message or "no message").strip().rstrip(".")
            text += f", error_code {code} ({message})"
        if http in REJECTING_STATUSES or code in REJECTING_CODES:
            return Verdict("rejected", f"{text}. Check CMC_API_KEY and its plan", error_code=code)
        if http == 429 or code in RATE_LIMIT_CODES | {DAILY_LIMIT_CODE, MONTHLY_LIMIT_CODE}:
            return Verdict(
                "rate_limited", text, retry_after=self._retry_after(response, code), error_code=code
            )
        generic = self.classify_http(response)
        if generic is not None:
            return Verdict(
                generic.outcome,
                text,
                generic.retryable,
                provider_up=generic.provider_up,
                http_status=http,
            )
        if status is None:
            return None  # a 200 without a status object: the parser will say what is wrong
        if not status.ok:
            return Verdict("provider_error", text, provider_up=True, error_code=code)
        return None

    def _retry_after(self, response: httpx.Response, code: int) -> float | None:
        now = self._clock()
        if code == MONTHLY_LIMIT_CODE:
            if self.budget is not None:
                self.budget.exhaust()
            return month_bounds(now)[1] - now
        if code == DAILY_LIMIT_CODE and "Retry-After" not in response.headers:
            day = from_epoch(now)
            midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
            return midnight.timestamp() - now
        return self.retry_after_of(response)

    def _count_credits(self, credits: int) -> None:
        if credits <= 0:
            return
        self.credits_used += credits
        if self.budget is not None:
            self.budget.record(credits)
        if self.metrics is not None:
            self.metrics.provider_credits_used.labels(self.name).inc(credits)
