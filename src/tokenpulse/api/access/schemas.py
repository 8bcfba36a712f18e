"""Models of the access-control endpoints (sessions, keys, blocks, usage), with examples."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tokenpulse.domain.access import KeyRecord
from tokenpulse.domain.time import isoformat_z, utcnow

TIME = "2026-12-06T10:21:07Z"
KEY_EXAMPLE: dict[str, Any] = {
    "key_id": "3f9c2a1b7d4e",
    "name": "grafana",
    "owner": "ops@example.com",
    "tier": "pro",
    "role": "reader",
    "status": "active",
    "created_at": TIME,
    "last_used_at": None,
    "expires_at": None,
    "revoked_at": None,
    "rotated_secret_valid_until": None,
    "allowed_origins": [],
    "allowed_ips": [],
}
NEW_KEY_EXAMPLE = {"key": "tp_live_3f9c2a1b7d4e_" + "x" * 43, **KEY_EXAMPLE}


def _time(value: Any) -> str | None:
    return None if value is None else isoformat_z(value)


def key_json(record: KeyRecord) -> dict[str, Any]:
    """A key as the admin API shows it: everything but its hashes."""
    return {
        "key_id": record.key_id,
        "name": record.name,
        "owner": record.owner,
        "tier": record.tier,
        "role": record.role,
        "status": record.status(utcnow()),
        "created_at": _time(record.created_at),
        "last_used_at": _time(record.last_used_at),
        "expires_at": _time(record.expires_at),
        "revoked_at": _time(record.revoked_at),
        "rotated_secret_valid_until": _time(record.previous_expires_at),
        "allowed_origins": list(record.allowed_origins),
        "allowed_ips": list(record.allowed_ips),
    }


class KeyOut(BaseModel):
    """An API key (never its secret or hash)."""

    model_config = ConfigDict(json_schema_extra={"example": KEY_EXAMPLE})

    key_id: str
    name: str
    owner: str
    tier: str
    role: str
    status: str = Field(description="active, expired or revoked")
    created_at: str
    last_used_at: str | None
    expires_at: str | None
    revoked_at: str | None
    rotated_secret_valid_until: str | None
    allowed_origins: list[str]
    allowed_ips: list[str]


class NewKeyOut(KeyOut):
    """A created or rotated key, with its full text: shown once, never again."""

    model_config = ConfigDict(json_schema_extra={"example": NEW_KEY_EXAMPLE})

    key: str


class KeyList(BaseModel):
    """Every stored key."""

    model_config = ConfigDict(json_schema_extra={"example": {"keys": [KEY_EXAMPLE]}})

    keys: list[KeyOut]


class KeyCreate(BaseModel):
    """A key to create."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"name": "grafana", "owner": "ops", "tier": "pro", "role": "reader"}
        },
    )

    name: str = Field(min_length=1, max_length=200)
    owner: str = Field("", max_length=200)
    tier: str = Field("free", description="free, pro or enterprise")
    role: str = Field("reader", description="reader, analyst or admin")
    expires_in: str | None = Field(None, description="a duration, e.g. 90d")
    allowed_origins: list[str] = Field(default_factory=list, max_length=50)
    allowed_ips: list[str] = Field(default_factory=list, max_length=50)


class KeyChange(BaseModel):
    """A key's new tier and/or role."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"tier": "pro"}})

    tier: str | None = None
    role: str | None = None


class RotateRequest(BaseModel):
    """How long the old secret keeps working (default AUTH_ROTATE_GRACE)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"grace": "1h"}})

    grace: str | None = None


class KeyUsageOut(BaseModel):
    """A key's usage: over every instance (``scope: all_instances``, with Redis), or counted
    on this instance since it started (``this_instance``: no Redis, or Redis failing, then
    ``note`` says so)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "key_id": "3f9c2a1b7d4e",
                "tier": "pro",
                "requests": 1200,
                "rate_limited": 3,
                "stream_connections": 2,
                "stream_messages": 5400,
                "scope": "all_instances",
            }
        }
    )

    key_id: str
    tier: str
    requests: int
    rate_limited: int
    stream_connections: int
    stream_messages: int
    scope: Literal["all_instances", "this_instance"]
    note: str | None = None


class SessionOut(BaseModel):
    """A session token and when it expires."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl",
                "token_type": "Bearer",
                "expires_at": TIME,
                "key_id": "3f9c2a1b7d4e",
                "tier": "pro",
                "role": "reader",
            }
        }
    )

    token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_at: str
    key_id: str
    tier: str
    role: str


class BlockList(BaseModel):
    """Client IPs blocked for failed authentications."""

    model_config = ConfigDict(
        json_schema_extra={"example": {"blocks": [{"ip": "203.0.113.9", "seconds_left": 840.5}]}}
    )

    blocks: list[dict[str, Any]]
