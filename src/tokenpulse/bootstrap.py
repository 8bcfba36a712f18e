"""The composition root: the one place that reads Settings and picks concrete adapters."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import structlog

from tokenpulse import __version__
from tokenpulse.api.auth import Authenticator, StaticKeyAuthenticator
from tokenpulse.api.ltp.answers import LtpEndpoints
from tokenpulse.api.tokens.answers import TokenEndpoints
from tokenpulse.bus.base import InProcessBus
from tokenpulse.bus.redis import RedisBus
from tokenpulse.bus.topics import make_ltp_publisher, make_token_publisher
from tokenpulse.data import kraken_pair_registry
from tokenpulse.domain.errors import StoreError
from tokenpulse.domain.identity import IdentityRegistry
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.domain.time import utcnow
from tokenpulse.domain.tokens import TokenQuote
from tokenpulse.domain.velocity import VelocityPolicy
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.ltp.prices import PriceService
from tokenpulse.services.ltp.supervisor import LtpSupervisor, UnavailableSource
from tokenpulse.services.replication import Replicator
from tokenpulse.services.tokens.backfill import Backfiller
from tokenpulse.services.tokens.ingest import MarketIngest, replay_ticker_time, replay_time
from tokenpulse.services.tokens.poller import MarketScheduler
from tokenpulse.services.tokens.service import TokenService
from tokenpulse.settings import Settings
from tokenpulse.sources._health import Source
from tokenpulse.sources.coingecko.client import CoinGeckoClient
from tokenpulse.sources.coinmarketcap.client import CmcClient
from tokenpulse.sources.coinmarketcap.credits import CreditBudget
from tokenpulse.sources.kraken.ohlc import KrakenOhlcClient
from tokenpulse.sources.kraken.rest import KrakenRestClient
from tokenpulse.sources.kraken.ws import KrakenWsSource
from tokenpulse.sources.replay.ltp import ReplaySource
from tokenpulse.sources.replay.tokens import MarketReplaySource
from tokenpulse.store.cache.base import Cache
from tokenpulse.store.cache.memory import MemoryCache
from tokenpulse.store.cache.redis import RedisCache
from tokenpulse.store.cache.redis import from_url as redis_from_url
from tokenpulse.store.history import migrate
from tokenpulse.store.history.repository import HistoryRepository
from tokenpulse.store.history.writer import HistoryWriter
from tokenpulse.store.leader import LeaderElection
from tokenpulse.store.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from tokenpulse.wire.ltp import LtpView

log = structlog.get_logger(__name__)

NOT_IN_THIS_RELEASE = {
    "coinbase": "the Coinbase feed is not part of this release",
    "binance": "the Binance feed is not part of this release",
}
PROVIDER_TIMEOUT = 10.0


@dataclass
class Container:
    """Everything the app and the CLI use, wired from one Settings object."""

    settings: Settings
    metrics: Metrics
    registry: PairRegistry
    cache: Cache
    limiter: RateLimiter | None
    authenticator: Authenticator | None
    bus: InProcessBus | RedisBus
    prices: PriceService
    supervisor: LtpSupervisor | None
    ltp: LtpEndpoints
    http: httpx.AsyncClient
    identities: IdentityRegistry
    tokens: TokenService
    token_api: TokenEndpoints
    history: HistoryRepository | None = None
    market: MarketIngest | None = None
    election: LeaderElection | None = None
    replicator: Replicator | None = None
    redis: Any = None
    history_error: str | None = None
    started_at: Any = field(default_factory=utcnow)
    _ingesting: bool = False
    _election_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Prepare the history store, then ingest: at once, or when elected leader."""
        await self._prepare_history()
        if isinstance(self.bus, RedisBus):
            await self.bus.start()
        if self.replicator is not None:
            self.replicator.start()
        if self.market is not None:
            await self.market.start()
        if self.election is not None:
            self._election_task = asyncio.create_task(self.election.run(), name="leader-election")
        elif self.settings.ingests:
            await self.start_ingest()

    @property
    def ingesting(self) -> bool:
        """Whether this instance runs the sources right now."""
        return self._ingesting

    async def start_ingest(self) -> None:
        """Run the sources (this instance is the one that ingests)."""
        if self._ingesting:
            return
        self._ingesting = True
        if self.supervisor is not None:
            await self.supervisor.start()
        if self.market is not None:
            await self.market.start_sources()

    async def stop_ingest(self) -> None:
        """Stop the sources (deposed, or shutting down); read values are applied first."""
        if not self._ingesting:
            return
        self._ingesting = False
        if self.supervisor is not None:
            with contextlib.suppress(Exception):
                await self.supervisor.stop()
        if self.market is not None:
            with contextlib.suppress(Exception):
                await self.market.stop_sources()
        log.info(
            "tokenpulse started",
            version=__version__,
            role=self.settings.role,
            sources=self.settings.sources,
            pairs=self.settings.supported_pairs,
            cache=self.settings.cache_backend,
            auth=self.settings.auth_enabled,
        )

    async def _prepare_history(self) -> None:
        """SQLite is migrated in place; PostgreSQL must be at head (`tokenpulse db upgrade`)."""
        if self.history is None:
            return
        url = self.settings.database_url
        try:
            if self.history.dialect == "sqlite":
                await migrate.upgrade(url)
            elif await migrate.current_revision(url) != migrate.head():
                self.history_error = (
                    "the history database is not at the current schema: run `tokenpulse db upgrade`"
                )
                log.error("history store not migrated", hint="tokenpulse db upgrade")
        except StoreError as exc:
            # The service runs without history rather than not at all; /ready says why.
            self.history_error = f"history store unavailable: {exc.message}"
            log.error("history store unavailable", error=exc.message)

    async def stop(self) -> None:
        """Stop sources, apply what they read, flush history, close — never raises."""
        if self.election is not None:
            with contextlib.suppress(Exception):
                await self.election.stop()
            if self._election_task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._election_task, 5)
        await self.stop_ingest()
        if self.replicator is not None:
            self.replicator.stop()
        if self.market is not None:
            with contextlib.suppress(Exception):
                await self.market.stop(self.settings.shutdown_timeout / 2)
        if self.history is not None:
            with contextlib.suppress(Exception):
                await self.history.close()
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

    def bus_failed(topic: str, exc: BaseException) -> None:
        metrics.bus_publish_failures.labels(topic).inc()

    bus: InProcessBus | RedisBus = (
        RedisBus(
            redis_client,
            prefix=settings.redis_key_prefix + "bus:",
            metrics=metrics,
            on_error=bus_failed,
        )
        if redis_client is not None
        else InProcessBus(on_error=bus_failed)
    )
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
    rest = (
        KrakenRestClient(
            base_url=settings.kraken_rest_url,
            http=http,
            registry=registry,
            metrics=metrics,
            request_timeout=settings.kraken_request_timeout,
            max_retries=settings.kraken_max_retries,
        )
        if "kraken" in settings.sources
        else None
    )
    supervisor = (
        _build_supervisor(settings, registry, pairs, prices, metrics, rest)
        if settings.ingests
        else None
    )
    ltp = LtpEndpoints(prices=prices, registry=registry, supervisor=supervisor)
    identities = IdentityRegistry()
    tokens = TokenService(
        identities=identities,
        policy=VelocityPolicy(
            min_market_cap_usd=Decimal(str(settings.min_market_cap_usd)),
            velocity_outlier=Decimal(str(settings.velocity_outlier)),
            stale_after=settings.stale_after,
            trend_stable_band_pct=Decimal(str(settings.trend_stable_band)),
            price_outlier_fraction=Decimal(str(settings.price_outlier_fraction)),
        ),
        metrics=metrics,
    )
    history = (
        HistoryRepository.from_url(settings.database_url, metrics=metrics)
        if settings.history_enabled
        else None
    )
    market = (
        _build_market(settings, metrics, http, tokens, prices, history, rest, registry, pairs)
        if settings.ingests
        else None
    )
    # Every accepted value goes onto the bus: streams on every instance and the replicas read it.
    prices.add_publisher(make_ltp_publisher(bus))
    tokens.add_publisher(make_token_publisher(bus))
    container_ref: list[Container] = []
    election = None
    if settings.role == "all" and redis_client is not None:

        async def elected() -> None:
            await container_ref[0].start_ingest()

        async def deposed() -> None:
            await container_ref[0].stop_ingest()

        election = LeaderElection(
            redis_client,
            key=settings.redis_key_prefix + "ingest-leader",
            ttl=settings.leader_ttl,
            on_elected=elected,
            on_deposed=deposed,
            metrics=metrics,
        )
    replicator = (
        Replicator(
            bus,
            prices=prices,
            tokens=tokens,
            metrics=metrics,
            ingesting=lambda: container_ref[0].ingesting,
        )
        if redis_client is not None
        else None
    )
    token_api = TokenEndpoints(
        tokens=tokens,
        history=history,
        stale_after=settings.stale_after,
        expected_interval=timedelta(seconds=settings.market_poll_interval),
    )
    container = Container(
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
        identities=identities,
        tokens=tokens,
        token_api=token_api,
        history=history,
        market=market,
        election=election,
        replicator=replicator,
        redis=redis_client,
    )
    container_ref.append(container)
    return container


def _build_supervisor(
    settings: Settings,
    registry: PairRegistry,
    pairs: list[Pair],
    prices: PriceService,
    metrics: Metrics,
    rest: KrakenRestClient | None,
) -> LtpSupervisor:
    streams: list[Source] = []
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


def _build_market(
    settings: Settings,
    metrics: Metrics,
    http: httpx.AsyncClient,
    tokens: TokenService,
    prices: PriceService,
    history: HistoryRepository | None,
    rest: KrakenRestClient | None,
    registry: PairRegistry,
    pairs: list[Pair],
) -> MarketIngest:
    """Token ingestion: the market scheduler (or the replay), history writer and backfill."""
    replay = "replay" in settings.sources
    cmc: CmcClient | None = None
    coingecko: CoinGeckoClient | None = None
    budget = CreditBudget(settings.cmc_monthly_credits)
    if "coinmarketcap" in settings.sources:
        cmc = CmcClient(
            base_url=settings.cmc_base_url,
            api_key=settings.cmc_api_key,
            http=http,
            metrics=metrics,
            request_timeout=PROVIDER_TIMEOUT,
            max_retries=settings.kraken_max_retries,
            budget=budget,
        )
    if "coingecko" in settings.sources:
        coingecko = CoinGeckoClient(
            base_url=settings.coingecko_base_url,
            api_key=settings.coingecko_api_key,
            http=http,
            metrics=metrics,
            request_timeout=PROVIDER_TIMEOUT,
            max_retries=settings.kraken_max_retries,
        )
    writer = HistoryWriter(history, metrics=metrics) if history is not None else None
    ingest_ref: list[MarketIngest] = []

    def sink(quotes: list[TokenQuote]) -> None:
        ingest_ref[0].sink(quotes)

    source: Any = None
    if replay:
        source = MarketReplaySource(
            sink=sink,
            interval=settings.market_poll_interval,
            speed=settings.replay_speed,
            metrics=metrics,
        )
    elif cmc is not None or coingecko is not None:
        source = MarketScheduler(
            cmc=cmc,
            coingecko=coingecko,
            budget=budget,
            poll_interval=settings.market_poll_interval,
            tracked_tokens=settings.tracked_tokens,
            track_top_n=settings.track_top_n,
            sink=sink,
            metrics=metrics,
        )
    if writer is not None:
        if replay:
            tokens.add_history_sink(lambda s: writer.add_token(replay_time(s)))
        else:
            tokens.add_history_sink(writer.add_token)

        async def record_ltp(view: LtpView) -> None:
            ticker = view.ticker
            writer.add_ltp(replay_ticker_time(ticker) if ticker.source == "replay" else ticker)

        prices.add_publisher(record_ltp)
    backfiller = None
    if history is not None and not replay:
        ohlc = KrakenOhlcClient.from_rest_client(rest) if rest is not None else None

        def coin_id_for(token_id: str) -> str | None:
            identity = tokens.identities.get(token_id)
            return identity.coingecko_id if identity is not None else None

        backfiller = Backfiller(
            history, charts=coingecko, ohlc=ohlc, metrics=metrics, coin_id_for=coin_id_for
        )
    ingest = MarketIngest(
        tokens=tokens,
        source=source,
        history=history,
        writer=writer,
        backfiller=backfiller,
        pairs=pairs,
        raw_retention=timedelta(seconds=settings.history_raw_retention),
        rollup_retention=timedelta(seconds=settings.history_rollup_retention),
        replay=replay,
    )
    ingest_ref.append(ingest)
    return ingest
