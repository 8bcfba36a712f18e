"""The access-control settings (SPEC §8), mixed into :class:`~tokenpulse.settings.Settings`.

Kept apart so the main settings module stays readable; the names are flat like every other
setting (``TIER_PRO_CAPACITY``, or in YAML ``tier: {pro: {capacity: 300}}``), endpoint costs
too (``TIER_FREE_COST_TOKENS``, ``tier: {free: {cost: {tokens: 5}}}``); a ``TIER_*`` variable
that names no setting (an unknown tier or endpoint class) is refused at start.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

from tokenpulse._settings_fields import Seconds, duration
from tokenpulse.domain.access import ENDPOINT_CLASSES, TIERS, TierLimits

MIN_PEPPER_LENGTH = 16

Capacity = Annotated[int, Field(ge=1, le=1_000_000_000)]
Rate = Annotated[float, Field(ge=0.001, le=1_000_000_000)]
Connections = Annotated[int, Field(ge=1, le=100_000)]
Subscriptions = Annotated[int, Field(ge=1, le=10_000)]
IntervalMs = Annotated[int, Field(ge=0, le=60_000)]
Cost = Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)]


class AccessSettings(BaseModel):
    """Stored API keys, session tokens, failed-auth defence and the three tiers."""

    # keys are stored only as HMAC-SHA-256 keyed with this server secret (§8.1)
    auth_key_pepper: str = ""
    auth_keys_refresh: Seconds = duration("30s", "1s", "1h")  # full reload of the key cache
    auth_rotate_grace: Seconds = duration("24h", "0s", "30d")  # old secret still works
    auth_session_ttl: Seconds = duration("15m", "1s", "24h")  # POST /api/v1/sessions
    # failed authentications per client IP: a bucket of their own, then a block (§8.6)
    auth_failure_capacity: Annotated[int, Field(ge=1, le=100_000)] = 10
    auth_failure_refill_rate: Rate = 0.2
    auth_block_after: Annotated[int, Field(ge=1, le=1_000_000)] = 30
    auth_block_for: Seconds = duration("15m", "1s", "7d")
    # with Redis: a stream connection's shared slot outlives a crashed instance this long
    auth_stream_slot_ttl: Seconds = duration("15s", "1500ms", "10m")

    tier_free_capacity: Capacity = 60
    tier_free_refill_rate: Rate = 1.0
    tier_free_stream_connections: Connections = 2
    tier_free_subscriptions: Subscriptions = 20
    tier_free_min_interval_ms: IntervalMs = 1000
    tier_free_history_depth: Seconds = duration("7d", "1h", "36500d")
    tier_free_cost_ltp_refresh: Cost = 10.0
    tier_free_cost_ltp_cached: Cost = 2.0
    tier_free_cost_tokens: Cost = 2.0
    tier_free_cost_other: Cost = 1.0
    tier_pro_capacity: Capacity = 300
    tier_pro_refill_rate: Rate = 10.0
    tier_pro_stream_connections: Connections = 10
    tier_pro_subscriptions: Subscriptions = 100
    tier_pro_min_interval_ms: IntervalMs = 250
    tier_pro_history_depth: Seconds = duration("365d", "1h", "36500d")
    tier_pro_cost_ltp_refresh: Cost = 10.0
    tier_pro_cost_ltp_cached: Cost = 2.0
    tier_pro_cost_tokens: Cost = 2.0
    tier_pro_cost_other: Cost = 1.0
    tier_enterprise_capacity: Capacity = 3000
    tier_enterprise_refill_rate: Rate = 300.0
    tier_enterprise_stream_connections: Connections = 100
    tier_enterprise_subscriptions: Subscriptions = 200
    tier_enterprise_min_interval_ms: IntervalMs = 50
    tier_enterprise_history_depth: Seconds = duration("3650d", "1h", "36500d")
    tier_enterprise_cost_ltp_refresh: Cost = 10.0
    tier_enterprise_cost_ltp_cached: Cost = 2.0
    tier_enterprise_cost_tokens: Cost = 2.0
    tier_enterprise_cost_other: Cost = 1.0

    @model_validator(mode="after")
    def _access_checks(self) -> AccessSettings:
        pepper = self.auth_key_pepper
        if pepper and len(pepper) < MIN_PEPPER_LENGTH:
            raise ValueError(
                f"AUTH_KEY_PEPPER: must be at least {MIN_PEPPER_LENGTH} characters "
                "(e.g. the output of `openssl rand -base64 32`)"
            )
        if pepper and not getattr(self, "history_enabled", True):
            raise ValueError(
                "AUTH_KEY_PEPPER: stored API keys live in the history database: "
                "set HISTORY_ENABLED=true, or leave AUTH_KEY_PEPPER empty"
            )
        return self

    def tier_limits(self) -> dict[str, TierLimits]:
        """Every tier's limits, by name."""
        return {tier: self._tier(tier) for tier in TIERS}

    def _tier(self, tier: str) -> TierLimits:
        def value(name: str) -> float:
            result: float = getattr(self, f"tier_{tier}_{name}")
            return result

        return TierLimits(
            capacity=int(value("capacity")),
            refill_rate=value("refill_rate"),
            stream_connections=int(value("stream_connections")),
            subscriptions=int(value("subscriptions")),
            min_interval_ms=int(value("min_interval_ms")),
            history_seconds=value("history_depth"),
            costs={name: value(f"cost_{name}") for name in ENDPOINT_CLASSES},
        )


def unknown_tier_settings(names: Iterable[str], fields: Iterable[str], origin: str) -> list[str]:
    """A problem for each ``TIER_*`` name that is no setting: a misspelt tier, limit or
    endpoint class would otherwise be ignored (the environment is read by name)."""
    known = set(fields)
    problems = []
    for name in names:
        lower = name.lower()
        if not lower.startswith("tier_") or lower in known:
            continue
        close = difflib.get_close_matches(lower, [f for f in known if f.startswith("tier_")], 1)
        hint = f" (did you mean {close[0].upper()}?)" if close else ""
        problems.append(
            f"{origin}: unknown tier setting {name}{hint}; tiers: {', '.join(TIERS)}; "
            f"endpoint classes (TIER_<TIER>_COST_<CLASS>): {', '.join(ENDPOINT_CLASSES)}"
        )
    return problems
