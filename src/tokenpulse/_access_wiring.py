"""The composition root's access-control part (SPEC §8), apart so ``bootstrap.py`` stays small.

With ``AUTH_ENABLED``: a token bucket per tier and the keys' stream connection slots (in
Redis when the cache is, so instances share them), the failed-auth guard, session tokens,
and — with ``AUTH_KEY_PEPPER`` and a history store — stored API keys. Without auth:
nothing (anonymous per-IP limits only).
"""

from __future__ import annotations

from typing import Any

from tokenpulse.api.access import AccessServices
from tokenpulse.api.access.guard import FailedAuthGuard
from tokenpulse.api.auth import key_id
from tokenpulse.bus.base import EventBus
from tokenpulse.domain.access import BOOTSTRAP_TIER, Principal
from tokenpulse.observability._access_metrics import AccessMetrics
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.access.keys import KeyService
from tokenpulse.services.access.sessions import SessionSigner
from tokenpulse.services.access.usage import UsageSync
from tokenpulse.settings import Settings
from tokenpulse.store.authblocks import BlockStore, MemoryBlockStore, RedisBlockStore
from tokenpulse.store.history.repository import HistoryRepository
from tokenpulse.store.keyrevision import RedisKeyRevision
from tokenpulse.store.keys import SqlKeyStore
from tokenpulse.store.keyusage import RedisKeyUsage
from tokenpulse.store.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from tokenpulse.store.streamslots import RedisStreamSlots


def build_access(
    settings: Settings,
    metrics: Metrics,
    history: HistoryRepository | None,
    redis_client: Any,
    bus: EventBus,
) -> AccessServices | None:
    """What ``AUTH_ENABLED`` asks for, or None when auth is off."""
    if not settings.auth_enabled:
        return None
    access_metrics = AccessMetrics(metrics.registry)
    prefix = settings.redis_key_prefix

    def limiter(capacity: int, refill: float, name: str) -> RateLimiter:
        if redis_client is not None:
            return RedisRateLimiter(
                redis_client,
                capacity=capacity,
                refill_rate=refill,
                key_prefix=f"{prefix}ratelimit:{name}:",
                metrics=metrics,
            )
        return MemoryRateLimiter(capacity=capacity, refill_rate=refill, metrics=metrics)

    tiers = settings.tier_limits()
    tier_limiters = {
        tier: limiter(limits.capacity, limits.refill_rate, "tier-" + tier)
        for tier, limits in tiers.items()
    }
    blocks: BlockStore = (
        RedisBlockStore(redis_client, key_prefix=prefix + "auth:")
        if redis_client is not None
        else MemoryBlockStore()
    )
    guard = FailedAuthGuard(
        limiter=limiter(
            settings.auth_failure_capacity, settings.auth_failure_refill_rate, "authfail"
        ),
        store=blocks,
        block_after=settings.auth_block_after,
        block_for=settings.auth_block_for,
        bus=bus,
        metrics=access_metrics,
    )
    keys = (
        KeyService(
            SqlKeyStore(history.engine),
            pepper=settings.auth_key_pepper,
            bus=bus,
            refresh_interval=settings.auth_keys_refresh,
            revision=(
                RedisKeyRevision(redis_client, key_prefix=prefix)
                if redis_client is not None
                else None
            ),
        )
        if settings.auth_key_pepper and history is not None
        else None
    )
    bootstrap = Principal(key_id=key_id(settings.auth_api_key), tier=BOOTSTRAP_TIER)

    def principal_of(kid: str) -> Principal | None:
        if kid == bootstrap.key_id:
            return bootstrap
        return keys.principal(kid) if keys is not None else None

    sessions = SessionSigner(
        settings.auth_key_pepper or settings.auth_api_key,
        ttl=settings.auth_session_ttl,
        principal_of=principal_of,
    )
    return AccessServices(
        tiers=tiers,
        metrics=access_metrics,
        tier_limiters=tier_limiters,
        keys=keys,
        sessions=sessions,
        guard=guard,
        rotate_grace=settings.auth_rotate_grace,
        stream_slots=(
            RedisStreamSlots(redis_client, key_prefix=prefix, ttl=settings.auth_stream_slot_ttl)
            if redis_client is not None
            else None
        ),
        usage_sync=(
            UsageSync(access_metrics.usage, RedisKeyUsage(redis_client, key_prefix=prefix))
            if redis_client is not None
            else None
        ),
    )
