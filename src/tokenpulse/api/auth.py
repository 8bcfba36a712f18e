"""API-key authentication.

A key is compared in constant time and never logged; logs and rate-limit buckets use a key id.
The bootstrap admin key (``AUTH_API_KEY``) is :class:`StaticKeyAuthenticator`; stored keys
(``services/access/keys.py``) join it in :class:`CombinedAuthenticator`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

from tokenpulse.domain.access import BOOTSTRAP_TIER, KEY_PREFIX, Principal
from tokenpulse.settings import Settings

OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/docs", "/openapi.json", "/redoc"})
PROTECTED_PREFIX = "/api/"


def requires_auth(path: str) -> bool:
    """``/api/*`` needs a key when auth is on; health, metrics and docs stay open."""
    return path.startswith(PROTECTED_PREFIX) and path not in OPEN_PATHS


def key_id(api_key: str) -> str:
    """A stable, non-reversible id for logs and rate-limit buckets."""
    return "key_" + hashlib.sha256(api_key.encode()).hexdigest()[:12]


class Authenticator(Protocol):
    """Turns an ``X-API-Key`` value into a Principal, or None when the key is not valid.

    Synchronous on purpose: it runs on every request, so implementations keep what they
    need in memory (a key store loads its keyed hashes and refreshes them in the background).
    """

    def authenticate(self, api_key: bytes) -> Principal | None: ...


class StaticKeyAuthenticator:
    """The bootstrap admin key from ``AUTH_API_KEY``."""

    def __init__(self, api_key: str) -> None:
        if not api_key:
            raise ValueError("an empty API key cannot authenticate anyone")
        self._key = api_key.encode()
        self._principal = Principal(key_id=key_id(api_key), tier=BOOTSTRAP_TIER)

    def authenticate(self, api_key: bytes) -> Principal | None:
        # compare_digest's time depends only on the length of the expected key.
        if hmac.compare_digest(api_key, self._key):
            return self._principal
        return None


class CombinedAuthenticator:
    """Stored keys (``tp_live_…``) first, then the bootstrap admin key."""

    def __init__(self, bootstrap: Authenticator | None, keys: Authenticator | None) -> None:
        self.bootstrap = bootstrap
        self.keys = keys
        self._prefix = KEY_PREFIX.encode()

    def authenticate(self, api_key: bytes) -> Principal | None:
        """The principal of a stored key or of the bootstrap key; None otherwise."""
        if self.keys is not None and api_key.startswith(self._prefix):
            principal = self.keys.authenticate(api_key)
            if principal is not None:
                return principal
        return self.bootstrap.authenticate(api_key) if self.bootstrap is not None else None


def authenticator_for(settings: Settings) -> Authenticator | None:
    """The authenticator ``AUTH_ENABLED`` asks for: the bootstrap admin key, or none."""
    return StaticKeyAuthenticator(settings.auth_api_key) if settings.auth_enabled else None


__all__ = [
    "Authenticator",
    "CombinedAuthenticator",
    "Principal",
    "StaticKeyAuthenticator",
    "authenticator_for",
    "key_id",
    "requires_auth",
]
