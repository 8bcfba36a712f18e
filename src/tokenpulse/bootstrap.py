"""The composition root: the one place that reads Settings and picks concrete adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import structlog

from tokenpulse import __version__
from tokenpulse._scaleout import (
    RunState,
    build_bus,
    build_election,
    build_replicator,
    build_warm_start,
)
from tokenpulse.bus.base import EventBus
from tokenpulse.bus.topics import make_ltp_publisher, make_token_publisher
from tokenpulse.data import known_tokens, kraken_pair_registry, unknown_token_symbols
from tokenpulse.domain.identity import IdentityRegistry
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.domain.time import utcnow
from tokenpulse.domain.velocity import VelocityPolicy
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.ltp.prices import PriceService
from tokenpulse.services.ltp.supervisor import (
    LtpSupervisor,
    TickerBuffer,
    UnavailableSource,
    buffer_sink,
)
from tokenpulse.services.replication import Replicator
from tokenpulse.services.tokens import ingest
from tokenpulse.services.tokens.backfill import Backfiller
from tokenpulse.services.tokens.ingest import MarketIngest
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
from tokenpulse.sources.replay.tokens import MarketReplaySource, history_rows
from tokenpulse.store.cache.base import Cache
from tokenpulse.store.cache.memory import MemoryCache
from tokenpulse.store.cache.redis import RedisCache
from tokenpulse.store.cache.redis import from_url as redis_from_url
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


@dataclass
class Container:
    """Every adapter and service, wired from one Settings object; ``runtime.py`` runs them."""

    settings: Settings
    metrics: Metrics
    registry: PairRegistry
    cache: Cache
    limiter: RateLimiter | None
    bus: EventBus
    prices: PriceService
    supervisor: LtpSupervisor | None
    http: httpx.AsyncClient
    tokens: TokenService
    history: HistoryRepository | None = None
    market: MarketIngest | None = None
    election: LeaderElection | None = None
    replicator: Replicator | None = None
    redis: Any = None
    state: RunState = field(default_factory=RunState)
    started_at: datetime = field(default_factory=utcnow)
    unknown_tracked_tokens: tuple[str, ...] = ()  # TRACKED_TOKENS the bundled tables lack


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

    bus = build_bus(settings, redis_client, metrics)
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
            min_interval=settings.kraken_min_request_interval,
        )
        if "kraken" in settings.sources
        else None
    )
    supervisor = (
        _build_supervisor(settings, registry, pairs, prices, metrics, rest)
        if settings.ingests
        else None
    )
    identities = IdentityRegistry(known_tokens())
    unknown = unknown_token_symbols(settings.tracked_tokens)
    if unknown:  # a coin listed since the bundled tables may exist: warn, do not refuse
        log.warning("tracked tokens unknown to the bundled token tables", symbols=list(unknown))
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
    state = RunState()
    election = build_election(settings, redis_client, metrics, state)
    build_warm_start(settings, redis_client, prices, tokens, metrics, state)
    replicator = build_replicator(bus, prices, tokens, metrics, state) if redis_client else None
    return Container(
        settings=settings,
        metrics=metrics,
        registry=registry,
        cache=cache,
        limiter=limiter,
        bus=bus,
        prices=prices,
        supervisor=supervisor,
        http=http,
        tokens=tokens,
        history=history,
        market=market,
        election=election,
        replicator=replicator,
        redis=redis_client,
        state=state,
        unknown_tracked_tokens=unknown,
    )


def _build_supervisor(
    settings: Settings,
    registry: PairRegistry,
    pairs: list[Pair],
    prices: PriceService,
    metrics: Metrics,
    rest: KrakenRestClient | None,
) -> LtpSupervisor:
    streams: list[Source] = []
    listed = NOT_IN_THIS_RELEASE.items()
    unavailable = [UnavailableSource(n, why) for n, why in listed if n in settings.sources]
    streaming = sum(name in settings.sources for name in ("kraken", "replay"))
    buffer = TickerBuffer(  # the sources put, the supervisor's consumer drains
        max_keys=max(64, 4 * len(pairs) * (streaming + 1)),
        on_conflated=metrics.source_buffer_conflated.labels("ingest").inc,
        on_dropped=metrics.source_buffer_dropped.labels("ingest").inc,
    )
    sink = buffer_sink(buffer, prices)
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
        streams.append(
            ReplaySource(
                path=Path(settings.replay_path) if settings.replay_path else None,
                speed=settings.replay_speed,
                registry=registry,
                sink=sink,
                metrics=metrics,
            )
        )
    return LtpSupervisor(
        prices=prices,
        metrics=metrics,
        streams=streams,
        rest=rest,
        fallback_timeout=settings.kraken_fallback_timeout,
        poll_interval=settings.rest_poll_interval,
        refresh_timeout=settings.kraken_timeout,
        unavailable=unavailable,
        buffer=buffer,
    )


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
            request_timeout=settings.cmc_request_timeout,
            max_retries=settings.cmc_max_retries,
            min_interval=settings.cmc_min_request_interval,
            budget=budget,
        )
    if "coingecko" in settings.sources:
        coingecko = CoinGeckoClient(
            base_url=settings.coingecko_base_url,
            api_key=settings.coingecko_api_key,
            http=http,
            metrics=metrics,
            request_timeout=settings.coingecko_request_timeout,
            max_retries=settings.coingecko_max_retries,
            min_interval=settings.coingecko_min_request_interval,
        )
    writer = HistoryWriter(history, metrics=metrics) if history is not None else None
    buffer = ingest.QuoteBuffer(max_keys=16)  # the quote source puts, the ingest drains
    sink = ingest.quote_sink(buffer)
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
            tokens.add_history_sink(lambda s: writer.add_token(ingest.replay_time(s)))
        else:
            tokens.add_history_sink(writer.add_token)

        async def record_ltp(view: LtpView) -> None:
            ticker = view.ticker
            replayed = ticker.source == "replay"
            writer.add_ltp(ingest.replay_ticker_time(ticker) if replayed else ticker)

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
    return MarketIngest(
        tokens=tokens,
        source=source,
        history=history,
        writer=writer,
        backfiller=backfiller,
        pairs=pairs,
        raw_retention=timedelta(seconds=settings.history_raw_retention),
        rollup_retention=timedelta(seconds=settings.history_rollup_retention),
        replay=replay,
        buffer=buffer,
        history_seed=history_rows if replay else None,
    )


__all__ = ["Container", "RunState", "build_container"]  # RunState: from _scaleout
