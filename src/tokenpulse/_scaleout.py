"""The scale-out part of the composition root (SPEC §10): the event bus, the leader election,
the replicator and what the runtime shares with the API (kept apart from ``bootstrap.py`` so
that module stays one readable page)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from tokenpulse.bus.base import EventBus
from tokenpulse.bus.memory import InProcessBus
from tokenpulse.bus.redis import RedisBus
from tokenpulse.bus.topics import LATEST_SAVED_TOPIC
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.ltp.prices import PriceService
from tokenpulse.services.replication import Replicator
from tokenpulse.services.tokens.service import TokenService
from tokenpulse.services.warm import WarmStart
from tokenpulse.settings import Settings
from tokenpulse.store.latest import RedisLatestValues
from tokenpulse.store.leader import LeaderElection

log = structlog.get_logger(__name__)


@dataclass
class RunState:
    """What the runtime changes while the process runs, read by the replicator and the API."""

    ingesting: bool = False  # this instance runs the sources (all/ingest role, or elected)
    history_error: str | None = None  # why the history store is unusable (for /ready)
    election: LeaderElection | None = None  # ROLE=all on Redis
    warm: WarmStart | None = None  # on Redis: the latest values shared between instances

    def ingest_lock(self) -> str:
        """``held``, ``not held``, ``ingesting without the lock``, or ``not used`` (no
        election: ``ROLE=ingest``/``api``, or no Redis)."""
        return self.election.lock_state if self.election is not None else "not used"

    async def reload_latest(self) -> int:
        """Load the latest values the ingest leader saved (warm start, resync); never raises."""
        return await self.warm.load() if self.warm is not None else 0


def build_bus(settings: Settings, redis_client: Any, metrics: Metrics) -> EventBus:
    """The Redis pub/sub bus when Redis is configured, else the in-process one."""

    def bus_handler_failed(topic: str, exc: BaseException) -> None:
        # A subscriber raised, not a publish failed (the Redis bus counts and logs its own).
        metrics.bus_handler_errors.labels(topic).inc()
        log.error("bus handler failed", topic=topic, error=repr(exc))

    if redis_client is None:
        return InProcessBus(on_error=bus_handler_failed)
    return RedisBus(
        redis_client,
        prefix=settings.redis_key_prefix + "bus:",
        metrics=metrics,
        heartbeat_interval=settings.bus_heartbeat_interval,
    )


def build_election(
    settings: Settings, redis_client: Any, metrics: Metrics, state: RunState
) -> LeaderElection | None:
    """``ROLE=all`` instances on Redis elect the one that ingests (``state`` reports it)."""
    if settings.role != "all" or redis_client is None:
        return None
    state.election = LeaderElection(
        redis_client,
        key=settings.redis_key_prefix + "ingest-leader",
        ttl=settings.leader_ttl,
        metrics=metrics,
    )
    return state.election


def build_replicator(
    bus: EventBus, prices: PriceService, tokens: TokenService, metrics: Metrics, state: RunState
) -> Replicator:
    """Applies the leader's updates from the bus while this instance does not ingest."""
    return Replicator(
        bus, prices=prices, tokens=tokens, metrics=metrics, ingesting=lambda: state.ingesting
    )


def build_warm_start(
    settings: Settings,
    redis_client: Any,
    bus: EventBus,
    prices: PriceService,
    tokens: TokenService,
    metrics: Metrics,
    state: RunState,
) -> WarmStart | None:
    """On Redis, the leader saves every accepted value for instances that start later, and
    announces on the bus when its saves caught up after an outage (followers reload)."""
    if redis_client is None:
        return None

    async def announce() -> None:
        await bus.publish(LATEST_SAVED_TOPIC, b"{}")

    store = RedisLatestValues(redis_client, prefix=settings.redis_key_prefix)
    state.warm = WarmStart(
        store,
        prices=prices,
        tokens=tokens,
        metrics=metrics,
        announce=announce,
        ingesting=lambda: state.ingesting,
    )
    bus.watch(state.warm.bus_state_changed)
    prices.add_publisher(state.warm.record_ltp)  # called only for values this instance accepts
    tokens.add_publisher(state.warm.record_token)
    return state.warm


__all__ = ["RunState", "build_bus", "build_election", "build_replicator", "build_warm_start"]
