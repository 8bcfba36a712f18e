"""Access control on the streams (SPEC §7.1, §8): who connects, how many, how often.

The Socket.IO handshake accepts ``auth: {api_key}`` (or the ``X-API-Key`` header) and
``auth: {token}`` (a session token, or ``Authorization: Bearer``). Each key may hold its
tier's ``stream_connections`` connections — on all instances together when the count is
shared in Redis (``slots``; if Redis fails, this instance's own count decides, with a
warning and ``tokenpulse_stream_slot_errors_total``) — ``subscriptions`` keys per
connection, and no ``min_interval_ms`` below its tier's floor (a client that asks for none
gets the floor when the adaptive default would be faster). A connection opened with a
session token ends when the token expires (event ``session_expired``, then a disconnect),
and every connection of a key ends when the key is revoked (event ``key_revoked``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from tokenpulse.api.auth import Authenticator
from tokenpulse.domain.access import Principal, TierLimits, ip_allowed, origin_allowed
from tokenpulse.domain.errors import InvalidParameter, LimitExceeded, RateLimited
from tokenpulse.store.streamslots import RedisError, RedisStreamSlots

#: The ``stream_rejected`` reason of a refused handshake, by its code (else unauthorized).
REFUSAL_REASONS = {LimitExceeded.code: "too_many_connections", RateLimited.code: "throttled"}
#: Longest wait for Redis to admit a connection before this instance's count decides.
SLOT_TIMEOUT_SECONDS = 1.0

log = structlog.get_logger(__name__)


class StreamRefused(Exception):
    """A handshake refused with ``code`` and ``message`` (``reason``: missing or invalid)."""

    def __init__(self, code: str, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason


@dataclass
class StreamAccess:
    """Tier limits per key and the end of connections whose credentials ended."""

    tiers: Mapping[str, TierLimits]
    verify_token: Callable[[str], Principal] | None = None  # raises an error with .code
    guard: Any = None  # api.access.guard.FailedAuthGuard: failed handshakes count too
    count: Callable[[str, str], None] | None = None  # usage: (key id, tier)
    messages: Callable[[str, int], None] | None = None  # usage: (key id, messages sent)
    clock: Callable[[], float] = time.time
    fastest_adaptive_ms: int = 100  # the hub's adaptive interval while a price moves
    slots: RedisStreamSlots | None = None  # the count shared by instances (CACHE_BACKEND=redis)
    slot_errors: Callable[[], None] | None = None  # a Redis failure counting connections
    _by_key: dict[str, set[str]] = field(default_factory=dict)
    _principals: dict[str, Principal] = field(default_factory=dict)
    _timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    _sio: Any = None
    _ending: set[str] = field(default_factory=set)
    _enders: dict[str, Callable[[dict[str, str]], None]] = field(default_factory=dict)
    _refresher: asyncio.Task[None] | None = None
    _releases: set[asyncio.Task[None]] = field(default_factory=set)

    def bind(self, sio: Any, delivery: Any) -> None:
        """The Socket.IO server whose clients are told why they are disconnected, and the
        dispatcher whose writes count as the keys' stream messages."""
        self._sio = sio
        delivery.on_sent = self.messages

    async def end(self, sid: str, reason: dict[str, str]) -> None:
        """Tell a client why its connection ends (``session_expired`` or ``key_revoked``,
        ``{code, message}``), then disconnect it."""
        event = "session_expired" if reason["code"] == "TOKEN_EXPIRED" else "key_revoked"
        with contextlib.suppress(Exception):
            await self._sio.emit(event, reason, to=sid)
        with contextlib.suppress(Exception):
            await self._sio.disconnect(sid)

    def token_principal(self, token: str) -> Principal:
        """The principal of a session token; StreamRefused when it is not valid."""
        if self.verify_token is None:
            raise StreamRefused("UNAUTHORIZED", "session tokens are not enabled")
        try:
            return self.verify_token(token)
        except Exception as exc:  # SessionError: expired, forged, or its key revoked
            raise StreamRefused("UNAUTHORIZED", str(getattr(exc, "message", exc))) from None

    async def open(
        self,
        sid: str,
        principal: Principal,
        end: Callable[[dict[str, str]], None] | None = None,
    ) -> None:
        """Admit a connection of ``principal`` (LimitExceeded past its tier's connections).

        ``end(reason)`` ends it when its token expires or its key is revoked (default: the
        Socket.IO client ``sid`` is told and disconnected)."""
        limits = self.tiers.get(principal.tier)
        if limits is not None and not await self._admit(sid, principal.key_id, limits):
            raise LimitExceeded(
                f"this key's tier {principal.tier!r} allows {limits.stream_connections} "
                "stream connections"
            )
        self._by_key.setdefault(principal.key_id, set()).add(sid)
        self._principals[sid] = principal
        if end is not None:
            self._enders[sid] = end
        if self.count is not None:
            self.count(principal.key_id, principal.tier)
        if principal.expires_at is not None and (self._sio is not None or end is not None):
            delay = max(0.0, principal.expires_at - self.clock())
            loop = asyncio.get_running_loop()
            self._timers[sid] = loop.call_later(delay, self._expire, sid)

    async def _admit(self, sid: str, key_id: str, limits: TierLimits) -> bool:
        """Whether ``key_id`` has a free slot: in Redis when shared, else on this instance."""
        limit = limits.stream_connections
        slots = self.slots
        if slots is not None:
            self._start_refresher(slots)
            try:
                async with asyncio.timeout(SLOT_TIMEOUT_SECONDS):
                    return await slots.acquire(key_id, sid, limit)
            except (RedisError, OSError, TimeoutError) as exc:
                self._slot_failed("admit", exc)
        return len(self._by_key.get(key_id, ())) < limit

    def _slot_failed(self, what: str, exc: BaseException) -> None:
        log.warning("stream_slots_unavailable", action=what, error=repr(exc))
        if self.slot_errors is not None:
            self.slot_errors()

    def _start_refresher(self, slots: RedisStreamSlots) -> None:
        if self._refresher is None or self._refresher.done():
            loop = asyncio.get_running_loop()
            self._refresher = loop.create_task(self._refresh_forever(slots))

    async def _refresh_forever(self, slots: RedisStreamSlots) -> None:
        """Re-score this instance's live connections every third of the slots' TTL."""
        while True:
            await asyncio.sleep(slots.ttl / 3)
            held = {key: sorted(sids) for key, sids in self._by_key.items() if sids}
            try:
                await slots.refresh(held)
            except (RedisError, OSError, TimeoutError) as exc:  # the entries expire; next round
                self._slot_failed("refresh", exc)

    async def stop(self) -> None:
        """Stop refreshing; wait briefly for the slots being freed."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refresher
            self._refresher = None
        if self._releases:
            await asyncio.wait(set(self._releases), timeout=SLOT_TIMEOUT_SECONDS)

    def _release(self, slots: RedisStreamSlots, key_id: str, sid: str) -> None:
        async def release() -> None:
            try:
                async with asyncio.timeout(SLOT_TIMEOUT_SECONDS):
                    await slots.release(key_id, sid)
            except (RedisError, OSError, TimeoutError) as exc:  # it expires after the TTL
                self._slot_failed("release", exc)

        task = asyncio.get_running_loop().create_task(release())
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    def close(self, sid: str) -> None:
        """Forget a connection (and free its shared slot)."""
        principal = self._principals.pop(sid, None)
        self._ending.discard(sid)
        self._enders.pop(sid, None)
        timer = self._timers.pop(sid, None)
        if timer is not None:
            timer.cancel()
        if principal is not None:
            sids = self._by_key.get(principal.key_id)
            if self.slots is not None and principal.tier in self.tiers:
                self._release(self.slots, principal.key_id, sid)
            if sids is not None:
                sids.discard(sid)
                if not sids:
                    del self._by_key[principal.key_id]

    def revoked(self, key_id: str) -> None:
        """End every connection of a revoked key."""
        for sid in list(self._by_key.get(key_id, ())):
            self._finish(sid, "KEY_REVOKED", "the API key of this connection was revoked")

    def _expire(self, sid: str) -> None:
        self._timers.pop(sid, None)
        self._finish(sid, "TOKEN_EXPIRED", "session token expired: refresh it and reconnect")

    def _finish(self, sid: str, code: str, message: str) -> None:
        if sid in self._ending:
            return
        reason = {"code": code, "message": message}
        ender = self._enders.get(sid)
        if ender is not None:
            self._ending.add(sid)
            ender(reason)
            return
        if self._sio is None:
            return
        self._ending.add(sid)
        task = asyncio.get_running_loop().create_task(self.end(sid, reason))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    def check_subscriptions(self, sid: str, current: int, adding: int) -> None:
        """InvalidParameter when ``adding`` keys would pass the tier's subscriptions."""
        limits = self._limits(sid)
        if limits is not None and current + adding > limits.subscriptions:
            raise LimitExceeded(
                f"this key's tier allows {limits.subscriptions} subscriptions per connection"
            )

    def interval(self, sid: str, asked: int | None) -> int | None:
        """The interval to use: refused below the tier's floor; the floor when none asked
        and the floor is above the hub's fastest adaptive interval."""
        limits = self._limits(sid)
        if limits is None or limits.min_interval_ms <= 0:
            return asked
        if asked is None:
            floor = limits.min_interval_ms
            return floor if floor > self.fastest_adaptive_ms else None
        if asked < limits.min_interval_ms:
            raise InvalidParameter(
                f"min_interval_ms must be at least {limits.min_interval_ms} for this key's tier",
                parameter="min_interval_ms",
            )
        return asked

    def _limits(self, sid: str) -> TierLimits | None:
        principal = self._principals.get(sid)
        return None if principal is None else self.tiers.get(principal.tier)

    def principal(self, sid: str) -> Principal | None:
        """The principal of a connection."""
        return self._principals.get(sid)


def credentials(environ: Mapping[str, Any], auth: Any) -> tuple[str | None, str | None]:
    """(API key, session token) of a Socket.IO handshake."""
    key = token = None
    if isinstance(auth, dict):
        key, token = auth.get("api_key"), auth.get("token")
    if key is None:
        key = environ.get("HTTP_X_API_KEY")
    if token is None:
        header = environ.get("HTTP_AUTHORIZATION", "")
        if isinstance(header, str) and header[:7].lower() == "bearer ":
            token = header[7:].strip()
    return (key if isinstance(key, str) and key else None), (
        token if isinstance(token, str) and token else None
    )


async def handshake(
    authenticator: Authenticator,
    access: StreamAccess | None,
    environ: Mapping[str, Any],
    auth: Any,
    sid: str,
) -> Principal:
    """The principal of a Socket.IO handshake, admitted under its tier; StreamRefused if not.

    A blocked client IP is refused, and a wrong key or token counts as a failed
    authentication (the same per-IP bucket and block as on REST)."""
    guard = access.guard if access is not None else None
    ip = environ.get("REMOTE_ADDR")
    ip = ip if isinstance(ip, str) else None
    if guard is not None and ip is not None and guard.any_blocked:
        left = guard.blocked_for(ip)
        if left > 0:
            raise StreamRefused(RateLimited.code, guard.blocked_error(left).message)
    key, token = credentials(environ, auth)
    if key is None and token is None:
        raise StreamRefused(
            "UNAUTHORIZED",
            "missing API key: connect with auth: {api_key: …} or {token: …}",
            "missing",
        )
    principal: Principal | None = None
    refusal = StreamRefused("UNAUTHORIZED", "invalid API key")
    if key is not None:
        principal = authenticator.authenticate(key.encode())
    elif access is not None and token is not None:
        try:
            principal = access.token_principal(token)
        except StreamRefused as exc:
            refusal = exc
    if principal is None:
        if guard is not None and ip is not None:
            throttled = await guard.failed(ip)
            if throttled is not None:
                raise StreamRefused(throttled.code, throttled.message)
        raise refusal
    origin = environ.get("HTTP_ORIGIN")
    if not ip_allowed(ip, principal.allowed_ips) or not origin_allowed(
        origin if isinstance(origin, str) else None, principal.allowed_origins
    ):
        raise StreamRefused("FORBIDDEN", "this key may not be used from this address or origin")
    if access is not None:
        try:
            await access.open(sid, principal)
        except LimitExceeded as exc:
            raise StreamRefused(exc.code, exc.message) from None
    return principal
