"""CoinGecko API v3: token market data without a key, the fallback when CMC is unavailable.

Two layers: the sans-I/O parsers live in :mod:`tokenpulse.sources.coingecko.parser`
(re-exported here); :class:`CoinGeckoClient` does the I/O on top of
:class:`~tokenpulse.sources._http.ProviderClient`.

* ``GET /api/v3/coins/markets?vs_currency=usd&order=market_cap_desc&per_page=…&page=…
  &price_change_percentage=1h,24h,7d`` — at most 250 coins a page, so the top N takes
  ``ceil(N / 250)`` requests (fewer when a page comes back short: past the end there is
  nothing more); ``&ids=…`` for a given set.
* ``GET /api/v3/coins/{id}/market_chart?vs_currency=usd&days=N`` — history for backfill; an
  unknown id is a 404 ``{"error":"coin not found"}`` (:class:`UnknownCoin`).
* The public API allows roughly 10–30 calls a minute per IP, so every request of this
  client goes through one :class:`RequestLimiter` (default: 2.5 s apart). A 429 carries
  ``Retry-After`` (the recorded one said 119 s); without it we wait a minute.
* Optional key: a demo key goes to ``api.coingecko.com`` in ``x-cg-demo-api-key``; a pro
  key goes to ``pro-api.coingecko.com`` in ``x-cg-pro-api-key`` (chosen from the base URL).
  A 401 means the key is wrong: the source is disabled with a clear reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from tokenpulse.domain.errors import InvalidParameter, ParseError, UnknownCoin, UpstreamError
from tokenpulse.domain.time import utcnow
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._answers import Verdict
from tokenpulse.sources._health import RequestLimiter
from tokenpulse.sources._http import ProviderClient
from tokenpulse.sources.coingecko.parser import (
    MarketChart,
    MarketsResult,
    error_message,
    parse_market_chart,
    parse_market_entry,
    parse_markets,
)

__all__ = [
    "CoinGeckoClient",
    "MarketChart",
    "MarketsResult",
    "parse_market_chart",
    "parse_market_entry",
    "parse_markets",
]

MARKETS_PATH = "/api/v3/coins/markets"
CHART_PATH = "/api/v3/coins/{coin_id}/market_chart"
MAX_PER_PAGE = 250
DEFAULT_MIN_INTERVAL = 2.5  # seconds between calls: the public API allows ~10-30 a minute
PRO_HOST = "pro-api.coingecko.com"
DEMO_KEY_HEADER = "x-cg-demo-api-key"
PRO_KEY_HEADER = "x-cg-pro-api-key"
PRICE_CHANGE_WINDOWS = "1h,24h,7d"


def key_header_for(base_url: str) -> str:
    """The header a key goes in: ``x-cg-pro-api-key`` on the pro host, else the demo one."""
    host = (urlsplit(base_url).hostname or "").lower()
    return PRO_KEY_HEADER if host == PRO_HOST else DEMO_KEY_HEADER


class CoinGeckoClient(ProviderClient):
    """CoinGecko ``coins/markets`` (paged) and ``market_chart`` with one limiter and 429 handling.

    The caller owns ``http``. ``base_url`` is the host (``https://api.coingecko.com``); a URL
    ending in ``/api/v3`` is accepted too. ``clock`` is wall time (unix seconds).
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
        min_interval: float = DEFAULT_MIN_INTERVAL,
        per_page: int = MAX_PER_PAGE,
        clock: Callable[[], float] = time.time,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        circuit_threshold: int = 5,
        circuit_cooldown: float = 60.0,
        name: str = "coingecko",
    ) -> None:
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be 1..{MAX_PER_PAGE}, got {per_page}")
        root = base_url.rstrip("/").removesuffix("/api/v3")
        key = api_key.strip()
        self.key_header: str | None = key_header_for(root) if key else None
        headers = {"Accept": "application/json"}
        if self.key_header is not None:
            headers[self.key_header] = key
        super().__init__(
            name=name,
            label="CoinGecko",
            base_url=root,
            http=http,
            metrics=metrics,
            request_timeout=request_timeout,
            max_retries=max_retries,
            limiter=limiter or RequestLimiter(min_interval),
            headers=headers,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            circuit_threshold=circuit_threshold,
            circuit_cooldown=circuit_cooldown,
            clock=clock,
        )
        self.per_page = per_page

    async def markets(
        self, top_n: int | None = None, ids: Sequence[str] | None = None
    ) -> MarketsResult:
        """The top ``top_n`` coins by market cap, or the coins ``ids`` (USD, 1h/24h/7d change).

        Pages of ``per_page`` (250) coins, each request through the limiter; stops early when a
        page comes back short. A coin seen on two pages (ranks move between requests) is kept
        once. Raises on the first page that fails.
        """
        wanted = [item.strip() for item in ids or () if item.strip()]
        if wanted:
            unique = list(dict.fromkeys(wanted))
            chunks = [unique[i : i + self.per_page] for i in range(0, len(unique), self.per_page)]
            requests = [
                {"ids": ",".join(chunk), "per_page": str(len(chunk)), "page": "1"}
                for chunk in chunks
            ]
            limit = len(unique)
        else:
            if top_n is None or top_n < 1:
                raise InvalidParameter("markets needs top_n >= 1 or ids", parameter="top_n")
            size = min(self.per_page, top_n)
            pages = math.ceil(top_n / size)
            requests = [{"per_page": str(size), "page": str(page)} for page in range(1, pages + 1)]
            limit = top_n
        result = MarketsResult()
        seen: set[str] = set()
        for extra in requests:
            params = {
                "vs_currency": "usd",
                "order": "market_cap_desc",
                **extra,
                "price_change_percentage": PRICE_CHANGE_WINDOWS,
            }
            payload = await self._get(
                MARKETS_PATH, params, what=f"markets page {extra['page']}", read=self.read_json
            )
            page = self._parse_markets(payload)
            result.pages += 1
            result.bad_entries.extend(page.bad_entries)
            for item in page.quotes:
                if item.coingecko_id not in seen and len(result.quotes) < limit:
                    seen.add(item.coingecko_id or "")
                    result.quotes.append(item)
            if not wanted and len(page.quotes) + len(page.bad_entries) < int(extra["per_page"]):
                break  # past the end of CoinGecko's list
        return result

    async def market_chart(self, coin_id: str, days: int | str) -> MarketChart:
        """Price, market cap and volume history of ``coin_id`` over ``days`` (a number or "max").

        CoinGecko picks the granularity from the range (5-minutely for 1 day, hourly up to 90
        days, daily beyond). Raises :class:`UnknownCoin` for an id CoinGecko does not know.
        """
        coin = coin_id.strip()
        if not coin or "/" in coin:
            raise InvalidParameter(f"not a CoinGecko coin id: {coin_id!r}", parameter="coin_id")
        path = CHART_PATH.format(coin_id=quote(coin, safe=""))
        params = {"vs_currency": "usd", "days": str(days)}
        try:
            payload = await self._get(
                path, params, what=f"market_chart of {coin}", read=self.read_json
            )
        except UpstreamError as exc:
            if exc.details.get("http_status") == 404:
                raise UnknownCoin(
                    f"CoinGecko has no coin {coin!r}", details={"source": self.name}
                ) from exc
            raise
        try:
            chart = parse_market_chart(payload)
        except ParseError as exc:
            raise self._malformed(exc, payload) from None
        for bad in chart.bad_rows:
            self.parse_errors.report(bad, str(bad))
        if self.metrics is not None:
            self.metrics.source_messages.labels(self.name, "market_chart").inc()
        return chart

    # ------------------------------------------------------------------ internals

    def _parse_markets(self, payload: Any) -> MarketsResult:
        try:
            page = parse_markets(payload, received_at=utcnow())
        except ParseError as exc:
            raise self._malformed(exc, payload) from None
        for bad in page.bad_entries:
            self.parse_errors.report(bad, str(bad))
        if self.metrics is not None:
            self.metrics.source_messages.labels(self.name, "market_data").inc()
        return page

    def _malformed(self, exc: ParseError, payload: Any) -> UpstreamError:
        self.parse_errors.report(exc, str(payload)[:500])
        return UpstreamError(f"CoinGecko answer malformed: {exc}", details={"source": self.name})

    def classify(self, response: httpx.Response, payload: Any) -> Verdict | None:
        code = response.status_code
        message = error_message(payload)
        text = f"HTTP {code}" + (f": {message[:200]}" if message else "")
        if code == 401:
            return Verdict("rejected", f"{text}. Check COINGECKO_API_KEY and the base URL")
        status_code = _status_code(payload)
        if code == 429 or status_code == 429:
            return Verdict("rate_limited", text, retry_after=self.retry_after_of(response))
        generic = self.classify_http(response)
        if generic is not None:
            return Verdict(
                generic.outcome,
                text,
                generic.retryable,
                provider_up=generic.provider_up,
                http_status=code,
            )
        return None


def _status_code(payload: Any) -> int | None:
    """``status.error_code`` of a CoinGecko error body (sometimes sent with HTTP 200)."""
    if isinstance(payload, dict):
        status = payload.get("status")
        if isinstance(status, dict):
            code = status.get("error_code")
            if isinstance(code, int) and not isinstance(code, bool):
                return code
    return None
