"""Coinbase Exchange REST ``GET /products/{id}/ticker``: the Coinbase LTP fallback.

A :class:`~tokenpulse.sources._http.ProviderClient` (one limiter for every Coinbase call,
timeouts, stamina retries, breaker, health, metrics). Coinbase has no multi-product ticker,
so :meth:`CoinbaseRestClient.fetch_tickers` asks once per pair; a pair that fails is reported
in ``errors`` and does not lose the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Final

import httpx

from tokenpulse.domain.errors import ParseError, UpstreamError
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.time import utcnow
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._answers import Verdict
from tokenpulse.sources._feed import VenueTickers
from tokenpulse.sources._health import RequestLimiter
from tokenpulse.sources._http import ProviderClient
from tokenpulse.sources.coinbase.rest_parser import parse_product_ticker

__all__ = ["DEFAULT_REST_URL", "CoinbaseRestClient"]

DEFAULT_REST_URL: Final = "https://api.exchange.coinbase.com"


class CoinbaseRestClient(ProviderClient):
    """Coinbase's public product ticker; ``products`` maps each pair to its product id."""

    def __init__(
        self,
        *,
        base_url: str,
        http: httpx.AsyncClient,
        products: Mapping[Pair, str],
        metrics: Metrics | None,
        request_timeout: float,
        max_retries: int,
        min_interval: float = 0.2,
        name: str = "coinbase_rest",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name=name,
            label="Coinbase REST",
            base_url=base_url,
            http=http,
            metrics=metrics,
            request_timeout=request_timeout,
            max_retries=max_retries,
            limiter=RequestLimiter(min_interval),
            **kwargs,
        )
        self.products = dict(products)

    async def fetch_tickers(
        self, pairs: Sequence[Pair], *, deadline: float | None = None
    ) -> VenueTickers:
        """One request per pair Coinbase lists; UpstreamError only when every one failed."""
        result = VenueTickers()
        failures: list[UpstreamError] = []
        for pair in dict.fromkeys(pairs):
            product = self.products.get(pair)
            if product is None:
                result.errors.append(f"{pair}: not a Coinbase product")
                continue
            try:
                ticker = await self._get(
                    f"/products/{product}/ticker",
                    None,
                    what=f"ticker for {product}",
                    read=partial(self._read, pair=pair),
                    deadline=deadline,
                )
            except UpstreamError as exc:
                failures.append(exc)
                result.errors.append(f"{pair}: {exc.message}")
                continue
            result.tickers.append(ticker)
        if failures and not result.tickers:
            raise failures[-1]
        return result

    def _read(self, response: httpx.Response, pair: Pair) -> Ticker | Verdict:
        payload = self.read_json(response)
        if isinstance(payload, Verdict):
            return payload
        try:
            ticker = parse_product_ticker(
                payload, pair=pair, source=self.name, received_at=utcnow()
            )
        except ParseError as exc:
            self.parse_errors.report(exc, response.content[:500])
            return Verdict("parse_error", f"malformed response: {exc}")
        if self.metrics is not None:
            self.metrics.source_messages.labels(self.name, "ticker_response").inc()
        return ticker
