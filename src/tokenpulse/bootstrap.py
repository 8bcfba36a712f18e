"""The composition root: the one place that reads Settings and picks concrete adapters."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from tokenpulse import __version__
from tokenpulse.api.auth import Authenticator, StaticKeyAuthenticator
from tokenpulse.api.ltp import LtpEndpoints
from tokenpulse.bus.base import InProcessBus
from tokenpulse.data import kraken_pair_registry
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.domain.time import utcnow
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.ingest import LtpSupervisor, UnavailableSource
from tokenpulse.services.prices import PriceService
from tokenpulse.settings import Settings
from tokenpulse.sources.base import Source
from tokenpulse.sources.kraken.rest import KrakenRestClient
from tokenpulse.sources.kraken.ws import KrakenWsSource
from tokenpulse.sources.replay import ReplaySource
from tokenpulse.store.cache.base import Cache
from tokenpulse.store.cache.memory import MemoryCache
from tokenpulse.store.cache.redis import RedisCache
from tokenpulse.store.cache.redis import from_url as redis_from_url
from tokenpulse.store.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter

log = structlog.get_logger(__name__)

NOT_IN_THIS_RELEASE = {
    "coinbase": "the Coinbase feed is not part of this release",
    "binance": "the Binance feed is not part of this release",
    "coinmarketcap": "token metrics (CoinMarketCap) are not part of this release",
    "coingecko": "token metrics (CoinGecko) are not part of this release",
}


@dataclass
class Container:
    """Everything the app and the CLI use, wired from one Settings object."""

    settings: Settings
    metrics: Metrics
    registry: PairRegistry
    cache: Cache
    limiter: RateLimiter | None
    authenticator: Authenticator | None
    bus: InProcessBus
    prices: PriceService
    supervisor: LtpSupervisor | None
    ltp: LtpEndpoints
    http: httpx.AsyncClient
    redis: Any = None
    started_at: Any = field(default_factory=utcnow)

    async def start(self) -> None:
        """Start ingestion (when this instance's role ingests)."""
        if self.supervisor is not None:
            await self.supervisor.start()
        log.info(
            "tokenpulse started",
            version=__version__,
            role=self.settings.role,
            sources=self.settings.sources,
            pairs=self.settings.supported_pairs,
            cache=self.settings.cache_backend,
            auth=self.settings.auth_enabled,
        )

    async def stop(self) -> None:
        """Stop sources, apply what they read, close connections — never raises."""
        if self.supervisor is not None:
            with contextlib.suppress(Exception):
                await self.supervisor.stop()
        for close in (self.bus.close, self.http.aclose, self.cache.close):
            try:
                await close()
            except Exception as exc:  # shutdown goes on whatever one adapter does
                log.warning("closing an adapter failed", error=str(exc))
        if self.limiter is not None:
            with contextlib.suppress(Exception):
                await self.limiter.close()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()


def build_container(settings: Settings, *, metrics: Metrics | None = None) -> Container:
    """Wire the adapters ``settings`` asks for. Opens no connection yet."""
    metrics = metrics or Metrics()
    registry = kraken_pair_registry()
    pairs = [registry.resolve(text) for text in settings.supported_pairs]

    cache: Cache
    limiter: RateLimiter | None = None
    redis_client = None
    if settings.cache_backend == "redis":
        redis_client = redis_from_url(settings.effective_redis_url)
        cache = RedisCache(
            redis_client,
            default_ttl=settings.cache_ttl,
            key_prefix=settings.redis_key_prefix + "cache:",
            metrics=metrics,
        )
    else:
        cache = MemoryCache(
            default_ttl=settings.cache_ttl, max_entries=settings.cache_max_entries, metrics=metrics
        )
    if settings.rate_limit_enabled:
        if redis_client is not None:
            limiter = RedisRateLimiter(
                redis_client,
                capacity=settings.rate_limit_capacity,
                refill_rate=settings.rate_limit_refill_rate,
                key_prefix=settings.redis_key_prefix + "ratelimit:",
                metrics=metrics,
            )
        else:
            limiter = MemoryRateLimiter(
                capacity=settings.rate_limit_capacity,
                refill_rate=settings.rate_limit_refill_rate,
                metrics=metrics,
            )
    authenticator = StaticKeyAuthenticator(settings.auth_api_key) if settings.auth_enabled else None

    bus = InProcessBus(on_error=lambda topic, exc: metrics.bus_publish_failures.labels(topic).inc())
    prices = PriceService(
        pairs,
        cache=cache,
        metrics=metrics,
        stale_after=settings.stale_after,
        cache_ttl=settings.cache_ttl,
    )
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.kraken_request_timeout),
        headers={"User-Agent": f"tokenpulse/{__version__}"},
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
    )
    supervisor = (
        _build_supervisor(settings, registry, pairs, prices, metrics, http)
        if settings.ingests
        else None
    )
    ltp = LtpEndpoints(prices=prices, registry=registry, supervisor=supervisor)
    return Container(
        settings=settings,
        metrics=metrics,
        registry=registry,
        cache=cache,
        limiter=limiter,
        authenticator=authenticator,
        bus=bus,
        prices=prices,
        supervisor=supervisor,
        ltp=ltp,
        http=http,
        redis=redis_client,
    )


def _build_supervisor(
    settings: Settings,
    registry: PairRegistry,
    pairs: list[Pair],
    prices: PriceService,
    metrics: Metrics,
    http: httpx.AsyncClient,
) -> LtpSupervisor:
    streams: list[Source] = []
    rest: KrakenRestClient | None = None
    unavailable = [
        UnavailableSource(name, reason)
        for name, reason in NOT_IN_THIS_RELEASE.items()
        if name in settings.sources
    ]
    supervisor_ref: list[LtpSupervisor] = []

    def sink(event: Any) -> None:
        supervisor_ref[0].sink(event)

    if "kraken" in settings.sources:
        streams.append(
            KrakenWsSource(
                url=settings.kraken_ws_url,
                pairs=pairs,
                registry=registry,
                sink=sink,
                metrics=metrics,
                idle_timeout=settings.ws_idle_timeout,
                max_pairs_per_connection=settings.kraken_ws_max_pairs_per_connection,
                subscribe_batch_size=settings.kraken_subscribe_batch_size,
                backoff_initial=settings.backoff_initial,
                backoff_max=settings.backoff_max,
            )
        )
        rest = KrakenRestClient(
            base_url=settings.kraken_rest_url,
            http=http,
            registry=registry,
            metrics=metrics,
            request_timeout=settings.kraken_request_timeout,
            max_retries=settings.kraken_max_retries,
        )
    if "replay" in settings.sources:
        from pathlib import Path

        streams.append(
            ReplaySource(
                path=Path(settings.replay_path) if settings.replay_path else None,
                speed=settings.replay_speed,
                registry=registry,
                sink=sink,
                metrics=metrics,
            )
        )
    supervisor = LtpSupervisor(
        prices=prices,
        metrics=metrics,
        streams=streams,
        rest=rest,
        fallback_timeout=settings.kraken_fallback_timeout,
        poll_interval=settings.rest_poll_interval,
        refresh_timeout=settings.kraken_timeout,
        unavailable=unavailable,
    )
    supervisor_ref.append(supervisor)
    return supervisor


__all__ = ["Container", "build_container"]
