"""``GET /api/v1/ltp`` answered whole by the edge, in one coroutine: the direct route.

The edge's general path (``api/edge.py``) runs each step as its own call — the gate's
``admit`` and ``_limit`` coroutines, the limiter's ``acquire``, the fast-route adapter,
``send_json``, the metrics and the access log — about a hundred Python calls per request.
This does the same steps for the common request in about fifteen: the key from the
authenticator's cache, the token bucket taken synchronously (``MemoryRateLimiter.take``; a
Redis bucket is awaited as before), the answer from :meth:`LtpEndpoints.ltp`, the header
list built once, the HTTP metrics counted into cells kept per status, and the access line
handed to the log writer as raw values.

It takes only what it answers exactly as the general path would, and says so *before* any
side effect: a request with an ``Origin`` (CORS), a body, no ``X-API-Key`` while auth is
on (a session token, a key in the query, a missing key), an unknown key, a key limited by
IP or origin, or any blocked IP known to the failure guard goes the general way.
``tests/api`` and ``tests/contract`` check both paths give the same answers.
"""

from __future__ import annotations

from bisect import bisect_left
from time import perf_counter
from typing import Any

from tokenpulse.api.access.gate import AccessGate, rate_limited, required_role
from tokenpulse.api.access_log import AccessLog
from tokenpulse.api.errors import error_body, error_headers, status_for
from tokenpulse.api.ltp.answers import LtpEndpoints
from tokenpulse.domain.access import ROLES, role_allows
from tokenpulse.domain.errors import TokenpulseError
from tokenpulse.observability._http_metrics import HttpMetrics
from tokenpulse.store.ratelimit import MemoryRateLimiter, RateLimiter

LTP_ROUTE = "/api/v1/ltp"
#: For the access log: every value is served from the price cache, or none is there.
LTP_CACHE = {200: "hit", 206: "partial", 503: "miss"}
CONTENT_TYPE = (b"content-type", b"application/json")

# (limiter, cost of this route, X-RateLimit-Limit value or None, its synchronous take or None)
_Bucket = tuple[RateLimiter, float, bytes | None, Any]


def _bucket(limiter: RateLimiter, costs: dict[str, float], other: float) -> _Bucket:
    cost = costs.get(LTP_ROUTE, other)
    if isinstance(limiter, MemoryRateLimiter):
        return limiter, cost, str(limiter.capacity).encode(), limiter.take
    return limiter, cost, None, None


class DirectLtp:
    """The direct route of ``GET /api/v1/ltp``; the edge calls it before its general path."""

    def __init__(
        self,
        *,
        ltp: LtpEndpoints,
        gate: AccessGate,
        http: HttpMetrics,
        access_log: AccessLog | None,
    ) -> None:
        self.ltp = ltp
        self.gate = gate
        self.http = http
        self.access_log = access_log
        self.roles = frozenset(r for r in ROLES if role_allows(r, required_role(LTP_ROUTE)))
        self.default = (
            _bucket(gate.limiter, gate.costs, gate.other_cost) if gate.limiter is not None else None
        )
        self.tiers = {
            tier: _bucket(limiter, *gate.tier_costs[tier])
            for tier, limiter in gate.tier_limiters.items()
        }
        self._cells: dict[int, tuple[list[int], list[float], list[int]]] = {}
        self._buckets = http.buckets

    async def __call__(
        self,
        scope: Any,
        send: Any,
        request_id: bytes,
        api_key: bytes | None,
        forwarded: bytes | None,
        started: float,
    ) -> bool:
        """Answer the request and return True, or return False having done nothing."""
        gate = self.gate
        principal = None
        if gate.authenticator is not None:
            if not api_key or (gate.guard is not None and gate.guard.any_blocked):
                return False
            principal = gate.authenticator.authenticate(api_key)
            if (
                principal is None
                or principal.role not in self.roles
                or principal.allowed_ips
                or principal.allowed_origins
            ):
                return False
        status = 500
        size = 0
        cache = None
        try:
            limits: list[tuple[bytes, bytes]] = []
            refusal: TokenpulseError | None = None
            bucket = self.default
            if bucket is not None:
                if principal is not None:
                    key = principal.key_id
                    bucket = self.tiers.get(principal.tier, bucket)
                else:
                    key = "ip:" + gate.ip(scope, forwarded)
                limiter, cost, limit, take = bucket
                if take is not None:
                    allowed, remaining, retry_after = take(key, cost)
                else:
                    decision = await limiter.acquire(key, cost)
                    allowed, remaining, retry_after = (
                        decision.allowed,
                        decision.remaining,
                        decision.retry_after,
                    )
                    limit = str(decision.limit).encode()
                assert limit is not None
                limits = [
                    (b"x-ratelimit-limit", limit),
                    (b"x-ratelimit-remaining", b"%d" % remaining),
                ]
                if principal is not None and gate.usage is not None:
                    gate.usage.count(principal.key_id, principal.tier, 0 if allowed else 1)
                if not allowed:
                    refusal = rate_limited(retry_after)
            if refusal is None:
                try:
                    answer = self.ltp.ltp(scope["query_string"])
                    status, body, extra = answer.status, answer.body, answer.headers
                    cache = LTP_CACHE.get(status)
                except TokenpulseError as exc:  # as the fast-route adapter answers it
                    status = status_for(exc)
                    body = error_body(LTP_ROUTE, exc, request_id.decode())
                    extra = error_headers(exc)
            else:
                status = status_for(refusal)
                body = error_body(LTP_ROUTE, refusal, request_id.decode())
                extra = error_headers(refusal)
            size = len(body)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        CONTENT_TYPE,
                        (b"content-length", b"%d" % size),
                        (b"x-request-id", request_id),
                        *limits,
                        *extra,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            cells = self._cells.get(status)
            if cells is None:
                cells = self._cells[status] = self.http.cells("GET", LTP_ROUTE, status)
            count, timing, sizes = cells
            seconds = perf_counter() - started
            count[0] += 1
            timing[bisect_left(self._buckets, seconds)] += 1
            timing[-1] += seconds
            sizes[0] += 1
            sizes[2] += size
            if self.access_log is not None:
                self.access_log.line(
                    request_id,
                    "GET",
                    LTP_ROUTE,
                    status,
                    started,
                    size,
                    principal,
                    scope.get("client"),
                    forwarded,
                    cache,
                )
        return True
