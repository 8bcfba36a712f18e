"""Sessions and the admin API of access control (SPEC §8).

``POST /api/v1/sessions`` exchanges an API key for a session token; ``POST
/api/v1/sessions/refresh`` renews a token without the key (the edge lets it through without
credentials: the token in the body or ``Authorization: Bearer`` is the credential).
``/api/v1/admin/keys`` manages stored keys and ``/api/v1/admin/blocks`` the IP blocks; the
edge admits only the ``admin`` role under ``/api/v1/admin/``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Path, Request
from fastapi.responses import Response

from tokenpulse.api.access import AccessServices
from tokenpulse.api.access.schemas import (
    BlockList,
    KeyChange,
    KeyCreate,
    KeyList,
    KeyOut,
    KeyUsageOut,
    NewKeyOut,
    RotateRequest,
    SessionOut,
    key_json,
)
from tokenpulse.domain.access import Principal
from tokenpulse.domain.durations import parse_duration
from tokenpulse.domain.errors import InvalidParameter, TokenNotFound, Unauthorized
from tokenpulse.domain.time import isoformat_z, utcnow
from tokenpulse.services.access.keys import KeyService
from tokenpulse.services.access.sessions import Session, SessionError

SESSIONS_PATH = "/api/v1/sessions"
REFRESH_PATH = "/api/v1/sessions/refresh"
KeyIdPath = Annotated[str, Path(description="The key id (the part after tp_live_)")]


class KeysUnavailable(TokenNotFound):
    """Stored keys are off: AUTH_KEY_PEPPER (and a history store) are needed."""

    code = "KEYS_DISABLED"
    remediation = "Set AUTH_KEY_PEPPER (and keep HISTORY_ENABLED) to store API keys."


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def access_router(access: AccessServices) -> APIRouter:
    """The routes of ``access`` (sessions, admin keys, blocks and usage)."""
    router = APIRouter(tags=["access"])

    def keys() -> KeyService:
        if access.keys is None:
            raise KeysUnavailable("stored API keys are not enabled on this instance")
        return access.keys

    @router.post(
        SESSIONS_PATH,
        operation_id="createSession",
        summary="Exchange an API key for a session token",
        response_model=SessionOut,
        status_code=201,
    )
    async def create_session(request: Request) -> Response:
        """A short-lived signed token (AUTH_SESSION_TTL) for Socket.IO ``auth: {token}``, SSE
        ``?token=`` or ``Authorization: Bearer``; send the API key as ``X-API-Key``."""
        principal: Principal | None = request.scope["state"].get("principal")
        if principal is None or access.sessions is None:
            raise Unauthorized("sessions need AUTH_ENABLED and an API key")
        if principal.expires_at is not None:
            raise Unauthorized("exchange an API key, not a session token (or refresh it)")
        return _json(_session_out(access.sessions.issue(principal)), 201)

    @router.post(
        REFRESH_PATH,
        operation_id="refreshSession",
        summary="Renew a session token without the API key",
        response_model=SessionOut,
    )
    async def refresh_session(
        request: Request,
        token: Annotated[str | None, Body(embed=True, description="The token to renew")] = None,
    ) -> Response:
        """A new token for the same key while the key is active; the old token is accepted
        until one AUTH_SESSION_TTL after it expired."""
        if access.sessions is None:
            raise Unauthorized("sessions need AUTH_ENABLED")
        if token is None:
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header[:7].lower() == "bearer " else None
        if not token:
            raise Unauthorized("send the session token in the body or as Authorization: Bearer")
        try:
            session = access.sessions.refresh(token)
        except SessionError as exc:
            raise Unauthorized(exc.message, details={"reason": exc.code}) from None
        return _json(_session_out(session))

    @router.post(
        "/api/v1/admin/keys",
        operation_id="createKey",
        summary="Create an API key (shown once)",
        response_model=NewKeyOut,
        status_code=201,
    )
    async def create_key(body: KeyCreate) -> Response:
        """A new key; the response holds its full text, which is never shown again."""
        expires_at = None
        if body.expires_in:
            expires_at = utcnow() + timedelta(seconds=_duration(body.expires_in, "expires_in"))
        record, text = await keys().create(
            name=body.name,
            owner=body.owner,
            tier=body.tier,
            role=body.role,
            expires_at=expires_at,
            allowed_origins=body.allowed_origins,
            allowed_ips=body.allowed_ips,
        )
        return _json({"key": text, **key_json(record)}, 201)

    @router.get(
        "/api/v1/admin/keys",
        operation_id="listKeys",
        summary="List API keys",
        response_model=KeyList,
    )
    async def list_keys() -> Response:
        """Every stored key with its status (never a secret)."""
        return _json({"keys": [key_json(r) for r in await keys().list()]})

    @router.get(
        "/api/v1/admin/keys/{key_id}",
        operation_id="getKey",
        summary="Show an API key",
        response_model=KeyOut,
    )
    async def show_key(key_id: KeyIdPath) -> Response:
        """One key (404 KEY_NOT_FOUND)."""
        return _json(key_json(await keys().show(key_id)))

    @router.patch(
        "/api/v1/admin/keys/{key_id}",
        operation_id="updateKey",
        summary="Change an API key's tier or role",
        response_model=KeyOut,
    )
    async def update_key(key_id: KeyIdPath, body: KeyChange) -> Response:
        """Set the tier and/or the role; every instance applies it at once."""
        service = keys()
        record = await service.show(key_id)
        if body.tier is not None:
            record = await service.set_tier(key_id, body.tier)
        if body.role is not None:
            record = await service.set_role(key_id, body.role)
        return _json(key_json(record))

    @router.post(
        "/api/v1/admin/keys/{key_id}/revoke",
        operation_id="revokeKey",
        summary="Revoke an API key",
        response_model=KeyOut,
    )
    async def revoke_key(key_id: KeyIdPath) -> Response:
        """Refused on every instance within a second; its session tokens stop working."""
        return _json(key_json(await keys().revoke(key_id)))

    @router.post(
        "/api/v1/admin/keys/{key_id}/rotate",
        operation_id="rotateKey",
        summary="Give an API key a new secret",
        response_model=NewKeyOut,
    )
    async def rotate_key(key_id: KeyIdPath, body: RotateRequest | None = None) -> Response:
        """A new secret (shown once); the old one works for ``grace`` (AUTH_ROTATE_GRACE)."""
        grace = access.rotate_grace
        if body is not None and body.grace:
            grace = _duration(body.grace, "grace", allow_zero=True)
        record, text = await keys().rotate(key_id, grace=grace)
        return _json({"key": text, **key_json(record)})

    @router.get(
        "/api/v1/admin/keys/{key_id}/usage",
        operation_id="getKeyUsage",
        summary="An API key's usage over every instance",
        response_model=KeyUsageOut,
    )
    async def key_usage(key_id: KeyIdPath) -> Response:
        """Requests, 429s, stream connections and stream messages: with Redis, summed over
        every instance (each adds its counts within a second; kept 7 days after the key's
        last use); without it, or while Redis fails, this instance's since it started —
        ``scope`` says which."""
        record = await keys().show(key_id)
        scope = "this_instance"
        if access.usage_sync is not None:
            usage, scope = await access.usage_sync.usage(record.key_id)
        else:
            usage = access.metrics.usage.usage(record.key_id)
        body: dict[str, Any] = {"key_id": record.key_id, "tier": record.tier, **usage}
        body["scope"] = scope
        if scope == "this_instance" and access.usage_sync is not None:
            body["note"] = "the shared totals are unavailable (Redis): this instance's counts"
        return _json(body)

    @router.get(
        "/api/v1/admin/blocks",
        operation_id="listBlocks",
        summary="Client IPs blocked for failed authentications",
        response_model=BlockList,
    )
    async def list_blocks() -> Response:
        """Every running block and the seconds left."""
        found = await access.guard.blocks() if access.guard is not None else {}
        blocks = [{"ip": ip, "seconds_left": round(left, 3)} for ip, left in sorted(found.items())]
        return _json({"blocks": blocks})

    @router.delete(
        "/api/v1/admin/blocks/{ip}",
        operation_id="liftBlock",
        summary="Lift an IP block",
        status_code=204,
    )
    async def lift_block(ip: Annotated[str, Path(description="The blocked IP")]) -> Response:
        """Lift the block on every instance (and forget the IP's failures)."""
        if access.guard is not None:
            await access.guard.unblock(ip)
        return Response(status_code=204)

    return router


def _session_out(session: Session) -> dict[str, Any]:
    return {
        "token": session.token,
        "token_type": "Bearer",
        "expires_at": isoformat_z(datetime.fromtimestamp(session.expires_at, UTC)),
        "key_id": session.principal.key_id,
        "tier": session.principal.tier,
        "role": session.principal.role,
    }


def _duration(text: str, parameter: str, *, allow_zero: bool = False) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise InvalidParameter(
            f"{parameter} must be a duration such as 30d or 12h", parameter=parameter
        ) from None
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise InvalidParameter(f"{parameter} must be positive", parameter=parameter)
    return seconds
