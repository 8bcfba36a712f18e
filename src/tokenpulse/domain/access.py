"""Access control, the pure part (SPEC §8): key format and hashing, roles, tiers, who may call what.

An API key reads ``tp_live_<key id>_<secret>``: the key id (12 hex digits) is public — logs,
metrics and the admin API name a key by it — and the secret (43 URL-safe characters, 256
bits from ``secrets``) is shown once and stored only as ``HMAC-SHA-256(pepper, secret)``,
where the pepper is the server secret ``AUTH_KEY_PEPPER``. A database dump without the pepper
lets nobody call the API; a check is one HMAC and one constant-time comparison.

Roles are ordered: ``reader`` < ``analyst`` < ``admin``; each may call what the roles below
it may. Tiers (``free``, ``pro``, ``enterprise``) set how much: bucket, streams, intervals,
history depth and what each endpoint class costs from the bucket (:class:`TierLimits`,
values from settings).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

KEY_PREFIX = "tp_live_"
KEY_ID_BYTES = 6  # 12 hex digits
SECRET_BYTES = 32
ROLES = ("reader", "analyst", "admin")
TIERS = ("free", "pro", "enterprise")
#: The bootstrap admin key's tier: the anonymous RATE_LIMIT_* bucket sizes, no stream caps.
BOOTSTRAP_TIER = "bootstrap"
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
#: How far back a role may read history (None: as far as the tier allows).
ROLE_HISTORY_SECONDS: dict[str, float | None] = {
    "reader": 24 * 3600.0,
    "analyst": None,
    "admin": None,
}
#: What one request takes from its bucket, by endpoint class; ``other`` is every path not
#: named in :data:`COST_PATHS`. Each tier may price them differently (settings).
DEFAULT_COSTS: Mapping[str, float] = {
    "ltp_refresh": 10.0,  # POST /api/v1/ltp/refresh: a provider fetch
    "ltp_cached": 2.0,
    "tokens": 2.0,  # a page of up to 250 tokens
    "other": 1.0,
}
ENDPOINT_CLASSES = tuple(DEFAULT_COSTS)
COST_PATHS: Mapping[str, str] = {
    "ltp_refresh": "/api/v1/ltp/refresh",
    "ltp_cached": "/api/v1/ltp/cached",
    "tokens": "/api/v1/tokens",
}
_KEY = re.compile(r"tp_live_([0-9a-f]{12})_([A-Za-z0-9_-]{20,128})")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key id, its tier and its role (and, for a session, its expiry)."""

    key_id: str
    tier: str = "enterprise"
    role: str = "admin"
    expires_at: float | None = None  # unix seconds, for a session token
    allowed_ips: tuple[str, ...] = ()  # networks the key may be used from (empty: any)
    allowed_origins: tuple[str, ...] = ()  # browser origins it may be used from (empty: any)


@dataclass(frozen=True, slots=True)
class TierLimits:
    """What a tier allows (SPEC §8.2): token bucket, streams, intervals, history depth."""

    capacity: int
    refill_rate: float
    stream_connections: int
    subscriptions: int
    min_interval_ms: int
    history_seconds: float
    costs: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_COSTS))  # by class


def cost_table(
    costs: Mapping[str, float], capacity: float | None
) -> tuple[dict[str, float], float]:
    """``(cost by path, cost of any other path)`` from costs by endpoint class (missing
    classes at their default), each capped at ``capacity``: a request costing more than the
    whole bucket could never be served, so it takes the whole bucket instead."""
    cap = float("inf") if capacity is None else float(capacity)
    by_class = {**DEFAULT_COSTS, **costs}
    by_path = {path: min(by_class[name], cap) for name, path in COST_PATHS.items()}
    return by_path, min(by_class["other"], cap)


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly generated key: the full text (shown once) and its parts."""

    key_id: str
    secret: str

    @property
    def text(self) -> str:
        """``tp_live_<key id>_<secret>``, what the client sends in ``X-API-Key``."""
        return f"{KEY_PREFIX}{self.key_id}_{self.secret}"


def generate_key() -> NewKey:
    """A new key id and secret from the operating system's CSPRNG."""
    return NewKey(secrets.token_hex(KEY_ID_BYTES), secrets.token_urlsafe(SECRET_BYTES))


def generate_secret() -> str:
    """A new secret for an existing key id (rotation)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def split_key(text: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed key, else None."""
    match = _KEY.fullmatch(text)
    return (match.group(1), match.group(2)) if match else None


def hash_secret(pepper: bytes, secret: str) -> str:
    """The stored form of a secret: HMAC-SHA-256 keyed with the pepper, hex."""
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def secret_matches(pepper: bytes, secret: str, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored``, compared in constant time."""
    return hmac.compare_digest(hash_secret(pepper, secret).encode(), stored.encode())


def ip_allowed(ip: str | None, networks: tuple[str, ...]) -> bool:
    """Whether ``ip`` is in one of ``networks`` (addresses or CIDR); always with none."""
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    for network in networks:
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


def origin_allowed(origin: str | None, origins: tuple[str, ...]) -> bool:
    """Whether a request from ``origin`` may use a key limited to ``origins`` (always when
    the key has none; never without an Origin when it has some)."""
    if not origins:
        return True
    return origin is not None and origin.rstrip("/") in {o.rstrip("/") for o in origins}


def role_allows(role: str, required: str) -> bool:
    """Whether ``role`` may call what ``required`` may."""
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[required]


def check_role(value: str) -> str:
    """``value`` if it names a role; ValueError listing the roles otherwise."""
    if value not in ROLE_RANK:
        raise ValueError(f"unknown role {value!r}; roles: {', '.join(ROLES)}")
    return value


def check_tier(value: str) -> str:
    """``value`` if it names a tier; ValueError listing the tiers otherwise."""
    if value not in TIERS:
        raise ValueError(f"unknown tier {value!r}; tiers: {', '.join(TIERS)}")
    return value


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored key as the service knows it (never its secret)."""

    key_id: str
    name: str
    owner: str
    tier: str
    role: str
    secret_hash: str
    created_at: datetime
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    allowed_origins: tuple[str, ...] = ()
    allowed_ips: tuple[str, ...] = ()
    previous_hash: str | None = None  # the secret before a rotation …
    previous_expires_at: datetime | None = None  # … valid until then

    def status(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def usable(self, now: datetime) -> bool:
        """Whether the key may authenticate at ``now``."""
        return self.status(now) == "active"

    def accepts(self, pepper: bytes, secret: str, now: datetime) -> bool:
        """Whether ``secret`` is this key's current secret, or its previous one within the
        rotation grace period (both compared in constant time)."""
        if secret_matches(pepper, secret, self.secret_hash):
            return True
        previous, until = self.previous_hash, self.previous_expires_at
        return (
            previous is not None
            and until is not None
            and now < until
            and secret_matches(pepper, secret, previous)
        )

    def principal(self) -> Principal:
        """The principal this key authenticates as."""
        return Principal(key_id=self.key_id, tier=self.tier, role=self.role)
