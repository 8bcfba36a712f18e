"""Access control in the API (SPEC §8): admission at the edge, sessions and admin routes.

The composition root builds :class:`AccessServices` from Settings (``_access_wiring.py``);
the app factory builds the :class:`~tokenpulse.api.access.gate.AccessGate` the edge asks, and
includes :func:`~tokenpulse.api.access.routes.access_router`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from tokenpulse.api.access.guard import FailedAuthGuard
from tokenpulse.domain.access import ROLE_HISTORY_SECONDS, Principal, TierLimits
from tokenpulse.observability._access_metrics import AccessMetrics
from tokenpulse.services.access.keys import KeyService
from tokenpulse.services.access.sessions import SessionSigner
from tokenpulse.services.access.usage import UsageSync
from tokenpulse.store.ratelimit import RateLimiter
from tokenpulse.store.streamslots import RedisStreamSlots


@dataclass
class AccessServices:
    """Everything access control needs at run time, wired from Settings."""

    tiers: dict[str, TierLimits]
    metrics: AccessMetrics
    tier_limiters: dict[str, RateLimiter] = field(default_factory=dict)
    keys: KeyService | None = None  # stored keys (AUTH_KEY_PEPPER and a history store)
    sessions: SessionSigner | None = None
    guard: FailedAuthGuard | None = None
    rotate_grace: float = 86400.0
    stream_slots: RedisStreamSlots | None = None  # per-key stream connections, in Redis
    usage_sync: UsageSync | None = None  # per-key usage summed over instances, in Redis

    def history_seconds(self, principal: Principal | None) -> float | None:
        """How far back ``principal`` may read history: the shorter of its role's depth
        (reader: 24 h) and its tier's; None for no limit (auth off, the bootstrap key)."""
        if principal is None:
            return None
        depths = [ROLE_HISTORY_SECONDS.get(principal.role)]
        tier = self.tiers.get(principal.tier)
        if tier is not None:
            depths.append(tier.history_seconds)
        known = [depth for depth in depths if depth is not None]
        return min(known) if known else None

    async def start(self) -> None:
        """Load the keys and the running IP blocks; listen for changes."""
        if self.keys is not None:
            await self.keys.start()
        if self.guard is not None:
            await self.guard.start()
        if self.usage_sync is not None:
            self.usage_sync.start()

    async def stop(self) -> None:
        """Stop listening; write the keys' last-used times; close the tier limiters."""
        if self.guard is not None:
            with contextlib.suppress(Exception):
                await self.guard.stop()
        if self.keys is not None:
            with contextlib.suppress(Exception):
                await self.keys.stop()
        if self.usage_sync is not None:
            with contextlib.suppress(Exception):
                await self.usage_sync.stop()
        for limiter in self.tier_limiters.values():
            with contextlib.suppress(Exception):
                await limiter.close()
