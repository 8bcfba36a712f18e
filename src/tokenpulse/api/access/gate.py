"""Admission of one ``/api`` request (SPEC §8): who calls, may they, how much is left.

The edge (``api/edge.py``) asks :meth:`AccessGate.admit` before any handler runs. In order:
a blocked client IP is refused (429); the credentials — ``X-API-Key`` (or ``api_key=``), or
a session token as ``Authorization: Bearer`` (or ``token=``, for EventSource) — become a
:class:`Principal`, and a failure takes from the IP's failure bucket (429 once empty, a block
after ``AUTH_BLOCK_AFTER``); the route's role (:func:`required_role`) and the key's allowed
IPs give 403; then the token bucket of the key's tier (per client IP when anonymous), taking
what the tier charges for the path's endpoint class (a table per tier built once, so a request
costs one dict lookup). All of it is in memory but the bucket (Redis when shared) and a
failure's bookkeeping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from tokenpulse.api.access.guard import FailedAuthGuard
from tokenpulse.api.auth import Authenticator, requires_auth
from tokenpulse.api.clientip import ClientIpResolver
from tokenpulse.domain.access import (
    DEFAULT_COSTS,
    Principal,
    cost_table,
    ip_allowed,
    origin_allowed,
    role_allows,
)
from tokenpulse.domain.errors import Forbidden, RateLimited, TokenpulseError, Unauthorized
from tokenpulse.observability._access_metrics import KeyUsage
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.access.sessions import SessionError, SessionSigner
from tokenpulse.store.ratelimit import RateLimiter

Scope = MutableMapping[str, Any]
ADMIN_PREFIX = "/api/v1/admin/"
#: Needs no credentials at the edge: the token in the request is the credential.
REFRESH_PATH = "/api/v1/sessions/refresh"
#: Routes above the reader role (anything not listed: reader).
ROLE_BY_PATH: Mapping[str, str] = {"/api/v1/ltp/refresh": "admin"}
ANALYST_SUFFIXES = ("/velocity",)


def required_role(path: str) -> str:
    """The least role that may call ``path``: admin endpoints, operations (a forced provider
    fetch) and analytics (the velocity window series) above the reader's live data."""
    if path.startswith(ADMIN_PREFIX):
        return "admin"
    role = ROLE_BY_PATH.get(path)
    if role is not None:
        return role
    if path.startswith("/api/v1/tokens/") and path.endswith(ANALYST_SUFFIXES):
        return "analyst"
    return "reader"


class AccessGate:
    """Authentication, roles, abuse defence and tier rate limits for the edge."""

    def __init__(
        self,
        *,
        authenticator: Authenticator | None,
        limiter: RateLimiter | None,
        client_ip: ClientIpResolver,
        metrics: Metrics,
        tier_limiters: Mapping[str, RateLimiter] | None = None,
        tier_costs: Mapping[str, Mapping[str, float]] | None = None,
        sessions: SessionSigner | None = None,
        guard: FailedAuthGuard | None = None,
        usage: KeyUsage | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.limiter = limiter
        self.client_ip = client_ip
        self.metrics = metrics
        self.tier_limiters = dict(tier_limiters or {})
        self.sessions = sessions
        self.guard = guard
        self.usage = usage
        # Cost by path and of any other path: the default prices for the anonymous and the
        # bootstrap bucket, each tier's own for its keys (by endpoint class, from settings).
        self.costs, self.other_cost = cost_table(DEFAULT_COSTS, _capacity(limiter))
        tier_costs = tier_costs or {}
        self.tier_costs = {
            tier: cost_table(tier_costs.get(tier, DEFAULT_COSTS), _capacity(lim))
            for tier, lim in self.tier_limiters.items()
        }

    def ip(self, scope: Scope, forwarded: bytes | None) -> str:
        """The client IP (``X-Forwarded-For`` only from ``FORWARDED_ALLOW_IPS`` peers)."""
        client = scope.get("client")
        return self.client_ip.resolve(client[0] if client else None, forwarded)

    async def admit(
        self,
        scope: Scope,
        path: str,
        api_key: bytes | None,
        bearer: bytes | None,
        forwarded: bytes | None,
        headers: list[tuple[bytes, bytes]],
    ) -> TokenpulseError | None:
        """None to go on, or the error to answer; leaves the principal in ``state``."""
        principal: Principal | None = None
        if self.authenticator is not None and requires_auth(path) and path != REFRESH_PATH:
            guard = self.guard
            if guard is not None and guard.any_blocked:
                left = guard.blocked_for(self.ip(scope, forwarded))
                if left > 0:
                    return guard.blocked_error(left)
            principal, rejection = self.identify(scope, api_key, bearer)
            if principal is None:
                if guard is not None and rejection is not _MISSING:
                    throttled = await guard.failed(self.ip(scope, forwarded))
                    if throttled is not None:
                        return throttled
                return rejection
            required = required_role(path)
            if principal.role != "admin" and not role_allows(principal.role, required):
                return Forbidden(
                    f"this key's role {principal.role!r} may not call {path}: "
                    f"it needs role {required!r}",
                    details={"role": principal.role, "required": required},
                )
            if principal.allowed_ips and not ip_allowed(
                self.ip(scope, forwarded), principal.allowed_ips
            ):
                return Forbidden("this key may not be used from this address")
            if principal.allowed_origins and not origin_allowed(
                _origin(scope), principal.allowed_origins
            ):
                return Forbidden("this key may not be used from this origin")
        scope["state"]["principal"] = principal
        if self.limiter is None:
            return None
        return await self._limit(scope, path, principal, forwarded, headers)

    def identify(
        self, scope: Scope, api_key: bytes | None, bearer: bytes | None
    ) -> tuple[Principal | None, Unauthorized]:
        """The caller's principal, or None and the 401 to answer (counted by reason)."""
        assert self.authenticator is not None
        token: str | None = None
        if api_key is None:
            if bearer is not None and bearer[:7].lower() == b"bearer ":
                token = bearer[7:].strip().decode("latin-1")
            else:
                api_key, token = _query_credentials(scope)
        if api_key:
            principal = self.authenticator.authenticate(api_key)
            if principal is not None:
                return principal, _MISSING
            return self._fail("invalid", "invalid API key")
        if token:
            if self.sessions is None:
                return self._fail("invalid", "session tokens are not enabled")
            try:
                return self.sessions.verify(token), _MISSING
            except SessionError as exc:
                return self._fail("invalid", exc.message, code=exc.code)
        self.metrics.auth_failures.labels("missing").inc()
        return None, _MISSING

    def _fail(
        self, reason: str, message: str, code: str | None = None
    ) -> tuple[None, Unauthorized]:
        self.metrics.auth_failures.labels(reason).inc()
        return None, Unauthorized(message, details={"reason": code} if code else None)

    async def _limit(
        self,
        scope: Scope,
        path: str,
        principal: Principal | None,
        forwarded: bytes | None,
        headers: list[tuple[bytes, bytes]],
    ) -> TokenpulseError | None:
        """Take from the caller's bucket: the key's tier bucket, else the client IP's."""
        assert self.limiter is not None
        if principal is not None:
            bucket = principal.key_id
            limiter = self.tier_limiters.get(principal.tier)
            if limiter is None:
                limiter, costs, other = self.limiter, self.costs, self.other_cost
            else:
                costs, other = self.tier_costs[principal.tier]
        else:
            bucket = "ip:" + self.ip(scope, forwarded)
            limiter, costs, other = self.limiter, self.costs, self.other_cost
        decision = await limiter.acquire(bucket, costs.get(path, other))
        headers.append((b"x-ratelimit-limit", str(decision.limit).encode()))
        headers.append((b"x-ratelimit-remaining", str(decision.remaining).encode()))
        if principal is not None and self.usage is not None:
            self.usage.count(principal.key_id, principal.tier, 0 if decision.allowed else 1)
        if not decision.allowed:
            return rate_limited(decision.retry_after)
        return None


def rate_limited(retry_after: float) -> RateLimited:
    """The 429 of an empty bucket."""
    return RateLimited(
        f"rate limit exceeded; retry in {math.ceil(retry_after)}s", retry_after=retry_after
    )


_MISSING = Unauthorized(
    "missing API key: send it in the X-API-Key header, or a session token as Authorization: Bearer",
    details={"reason": "missing"},
)


def _capacity(limiter: RateLimiter | None) -> float | None:
    capacity = getattr(limiter, "capacity", None)
    return None if capacity is None else float(capacity)


def _origin(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"origin":
            return str(value.decode("latin-1"))
    return None


def _query_credentials(scope: Scope) -> tuple[bytes | None, str | None]:
    """``api_key`` or ``token`` from the query string (browsers' EventSource sets no header)."""
    query: bytes = scope.get("query_string", b"")
    if b"api_key=" not in query and b"token=" not in query:
        return None, None
    api_key: bytes | None = None
    token: str | None = None
    for key, value in parse_qsl(query.decode("latin-1")):
        if key == "api_key":
            api_key = value.encode("latin-1")
        elif key == "token":
            token = value
    return api_key, token
