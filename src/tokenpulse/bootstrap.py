"""The composition root: the one place that reads Settings and picks concrete adapters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import structlog

from tokenpulse import __version__
from tokenpulse._access_wiring import build_access
from tokenpulse._bootstrap_replay import replay_streams
from tokenpulse._bootstrap_venues import build_ltp_feeds, resolve_pairs_at_start
from tokenpulse._pair_lists import PairList
from tokenpulse._scaleout import (
    RunState,
    build_bus,
    build_election,
    build_replicator,
    build_warm_start,
)
from tokenpulse.api.access import AccessServices
from tokenpulse.bus.base import EventBus
from tokenpulse.bus.topics import (
    make_aggregate_publisher,
    make_ltp_publisher,
    make_token_publisher,
)
from tokenpulse.data import known_tokens, unknown_token_symbols
from tokenpulse.domain.identity import IdentityRegistry
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.domain.ticker import sample_second
from tokenpulse.domain.time import utcnow
from tokenpulse.domain.velocity import VelocityPolicy
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.ltp.prices import PriceService
from tokenpulse.services.ltp.supervisor import LtpSupervisor, TickerBuffer, buffer_sink
from tokenpulse.services.ltp.trade_backfill import TradeBackfill
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
from tokenpulse.sources.kraken.rest import KrakenRestClient
from tokenpulse.sources.kraken.trades import KrakenTradesClient
from tokenpulse.sources.replay import ReplayKit, replay_kit
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
    access: AccessServices | None = None  # keys, tiers, sessions, abuse defence (§8)


def build_container(settings: Settings, *, metrics: Metrics | None = None) -> Container:
    """Wire the adapters ``settings`` asks for. Opens no connection yet."""
    metrics = metrics or Metrics()
    pair_lists, registry, pairs = resolve_pairs_at_start(settings)  # ConfigError: no venue
    kit = replay_kit(settings.replay_speed) if "replay" in settings.sources else None

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
        _build_supervisor(settings, registry, pairs, prices, metrics, rest, http, pair_lists, kit)
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
        _build_market(settings, metrics, http, tokens, prices, history, rest, pairs, kit)
        if settings.ingests
        else None
    )
    # Every accepted value goes onto the bus: streams on every instance and the replicas read it.
    prices.add_publisher(make_ltp_publisher(bus))
    if supervisor is not None:  # the cross-venue aggregate: stream pair:X@aggregate
        supervisor.aggregate_publishers.append(make_aggregate_publisher(bus))
    tokens.add_publisher(make_token_publisher(bus))
    state = RunState()
    election = build_election(settings, redis_client, metrics, state)
    build_warm_start(settings, redis_client, bus, prices, tokens, metrics, state)
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
        access=build_access(settings, metrics, history, redis_client, bus),
    )


def _build_supervisor(
    settings: Settings,
    registry: PairRegistry,
    pairs: list[Pair],
    prices: PriceService,
    metrics: Metrics,
    rest: KrakenRestClient | None,
    http: httpx.AsyncClient,
    pair_lists: dict[str, PairList],
    kit: ReplayKit | None,
) -> LtpSupervisor:
    streaming = sum(
        name in settings.sources for name in ("kraken", "coinbase", "binance", "replay")
    )
    buffer = TickerBuffer(  # the sources put, the supervisor's consumer drains
        max_keys=max(64, 4 * len(pairs) * (streaming + 1)),
        on_conflated=metrics.source_buffer_conflated.labels("ingest").inc,
        on_dropped=metrics.source_buffer_dropped.labels("ingest").inc,
        epoch=lambda event: sample_second(event.ticker),  # every second's last value: history
    )
    sink = buffer_sink(buffer, prices)
    feeds = build_ltp_feeds(
        settings,
        registry=registry,
        pairs=pairs,
        prices=prices,
        metrics=metrics,
        http=http,
        kraken_rest=rest,
        buffer=buffer,
        sink=sink,
        lists=pair_lists,
    )
    streams: list[Source] = list(feeds.streams)
    if kit is not None:  # the bundled replay's venues join the book (_bootstrap_replay)
        streams += replay_streams(
            kit,
            settings,
            feeds,
            registry=registry,
            pairs=pairs,
            prices=prices,
            buffer=buffer,
            sink=sink,
            metrics=metrics,
        )
    return LtpSupervisor(
        prices=prices,
        metrics=metrics,
        streams=streams,
        rest=feeds.rest,
        fallback_timeout=settings.kraken_fallback_timeout,
        poll_interval=settings.rest_poll_interval,
        refresh_timeout=settings.kraken_timeout,
        buffer=buffer,
        book=feeds.book,
        secondary=feeds.secondary,
        failover=feeds.failover,
    )


def _build_market(
    settings: Settings,
    metrics: Metrics,
    http: httpx.AsyncClient,
    tokens: TokenService,
    prices: PriceService,
    history: HistoryRepository | None,
    rest: KrakenRestClient | None,
    pairs: list[Pair],
    kit: ReplayKit | None,
) -> MarketIngest:
    """Token ingestion: the market scheduler (or the replay), history writer and backfill."""
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
    if kit is not None:
        source = kit.token_source(sink, settings.market_poll_interval, metrics)
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
        tokens.add_history_sink(writer.add_token)

        async def record_ltp(views: Sequence[LtpView]) -> None:
            for view in views:  # keyed by pair and second: the last value of a second wins
                writer.add_ltp(view.ticker)

        prices.add_publisher(record_ltp)
    backfiller = trade_backfill = None
    if history is not None:  # replay seeds history from its recording, through the backfill
        ohlc = KrakenTradesClient.from_rest_client(rest) if rest is not None else None

        def coin_id_for(token_id: str) -> str | None:
            identity = tokens.identities.get(token_id)
            return identity.coingecko_id if identity is not None else None

        backfiller = Backfiller(
            history,
            charts=coingecko if kit is None else kit.history,
            ohlc=ohlc if kit is None else kit.history,
            metrics=metrics,
            coin_id_for=coin_id_for,
        )
        if kit is not None:
            backfiller.chart_source = backfiller.candle_source = "replay"
        elif ohlc is not None:  # a take-over's hole of seconds, from Kraken's trades

            def received_at(pair: Pair) -> datetime | None:
                view = prices.view(pair)
                return view.ticker.received_at if view is not None else None

            trade_backfill = TradeBackfill(
                history, ohlc, pairs=pairs, received_at=received_at, metrics=metrics
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
        buffer=buffer,
        trade_backfill=trade_backfill,
    )


__all__ = ["Container", "RunState", "build_container"]  # RunState: from _scaleout
