"""Binance REST ``GET /api/v3/ticker/24hr``: the Binance LTP fallback.

A :class:`~tokenpulse.sources._http.ProviderClient`; every pair in one request
(``symbols=["BTCUSDT","ETHUSDT"]``). Binance answers 418/429 with ``Retry-After`` when a
client exceeds its request weight; the shared client honours it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import httpx

from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.time import utcnow
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._answers import Verdict, classify_status
from tokenpulse.sources._feed import VenueTickers
from tokenpulse.sources._health import RequestLimiter
from tokenpulse.sources._http import ProviderClient
from tokenpulse.sources.binance.rest_parser import parse_ticker_24hr

__all__ = ["DEFAULT_REST_URL", "TICKER_PATH", "BinanceRestClient"]

DEFAULT_REST_URL: Final = "https://api.binance.com"
TICKER_PATH: Final = "/api/v3/ticker/24hr"


class BinanceRestClient(ProviderClient):
    """Binance's public 24 h ticker; ``symbols`` maps each pair to its symbol (``BTCUSDT``)."""

    def __init__(
        self,
        *,
        base_url: str,
        http: httpx.AsyncClient,
        symbols: Mapping[Pair, str],
        metrics: Metrics | None,
        request_timeout: float,
        max_retries: int,
        min_interval: float = 0.5,
        name: str = "binance_rest",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name=name,
            label="Binance REST",
            base_url=base_url,
            http=http,
            metrics=metrics,
            request_timeout=request_timeout,
            max_retries=max_retries,
            limiter=RequestLimiter(min_interval),
            **kwargs,
        )
        self.symbols = dict(symbols)

    async def fetch_tickers(
        self, pairs: Sequence[Pair], *, deadline: float | None = None
    ) -> VenueTickers:
        """The 24 h tickers of ``pairs`` in one request; UpstreamError when it fails."""
        wanted = {self.symbols[p]: p for p in dict.fromkeys(pairs) if p in self.symbols}
        if not wanted:
            return VenueTickers(errors=[f"{p}: not a Binance symbol" for p in pairs])
        names = json.dumps(list(wanted), separators=(",", ":"))
        return await self._get(
            TICKER_PATH,
            {"symbols": names},
            what=f"24hr ticker for {', '.join(wanted)}",
            read=lambda response: self._read(response, wanted),
            deadline=deadline,
        )

    def classify_http(self, response: httpx.Response) -> Verdict | None:
        # 418: the IP is banned for ignoring 429s; treat it as a rate limit with Retry-After.
        code = 429 if response.status_code == 418 else response.status_code
        return classify_status(code, self.retry_after_of(response))

    def _read(self, response: httpx.Response, wanted: Mapping[str, Pair]) -> VenueTickers | Verdict:
        payload = self.read_json(response)
        if isinstance(payload, Verdict):
            return payload
        try:
            result = parse_ticker_24hr(
                payload, symbols=wanted, source=self.name, received_at=utcnow()
            )
        except ParseError as exc:
            self.parse_errors.report(exc, response.content[:500])
            return Verdict("parse_error", f"malformed response: {exc}")
        for bad in result.bad_entries:
            self.parse_errors.report(bad, response.content[:500])
        if self.metrics is not None:
            self.metrics.source_messages.labels(self.name, "ticker_response").inc()
        return result
