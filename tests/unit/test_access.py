"""Access control, the pure part: key format, keyed hashes, constant-time checks, roles."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta

import pytest

from tokenpulse.api.access.gate import required_role
from tokenpulse.domain.access import (
    ROLES,
    KeyRecord,
    cost_table,
    generate_key,
    hash_secret,
    role_allows,
    secret_matches,
    split_key,
)

PEPPER = b"0123456789abcdef-pepper"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def record(secret: str, **changes: object) -> KeyRecord:
    values: dict[str, object] = {
        "key_id": "0123456789ab",
        "name": "test",
        "owner": "",
        "tier": "free",
        "role": "reader",
        "secret_hash": hash_secret(PEPPER, secret),
        "created_at": NOW,
    }
    values.update(changes)
    return KeyRecord(**values)  # type: ignore[arg-type]


def test_a_generated_key_has_the_visible_prefix_an_id_and_a_256_bit_secret() -> None:
    keys = {generate_key().text for _ in range(50)}
    assert len(keys) == 50
    for text in keys:
        assert text.startswith("tp_live_")
        parts = split_key(text)
        assert parts is not None
        key_id, secret = parts
        assert len(key_id) == 12
        assert len(secret) == 43


@pytest.mark.parametrize(
    "text", ["", "tp_live_", "tp_live_xyz_secret", "tp_test_0123456789ab_" + "a" * 43, "a" * 60]
)
def test_a_malformed_key_does_not_split(text: str) -> None:
    assert split_key(text) is None


def test_the_stored_hash_is_keyed_by_the_pepper_and_never_the_secret() -> None:
    secret = generate_key().secret
    stored = hash_secret(PEPPER, secret)
    assert secret not in stored
    assert stored != hash_secret(b"another-pepper-value", secret)  # useless without the pepper
    assert len(stored) == 64
    assert secret_matches(PEPPER, secret, stored)
    assert not secret_matches(PEPPER, secret + "x", stored)


def test_secrets_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    secret = generate_key().secret
    assert secret_matches(PEPPER, secret, hash_secret(PEPPER, secret))
    assert calls
    assert all(len(a) == len(b) == 64 for a, b in calls)


def test_a_rotated_secret_works_only_within_its_grace_period() -> None:
    old, new = generate_key().secret, generate_key().secret
    rotated = record(
        new,
        previous_hash=hash_secret(PEPPER, old),
        previous_expires_at=NOW + timedelta(hours=1),
    )
    assert rotated.accepts(PEPPER, new, NOW)
    assert rotated.accepts(PEPPER, old, NOW + timedelta(minutes=59))
    assert not rotated.accepts(PEPPER, old, NOW + timedelta(hours=1))
    assert rotated.accepts(PEPPER, new, NOW + timedelta(days=1))


def test_status_follows_revocation_and_expiry() -> None:
    key = record("s", expires_at=NOW + timedelta(days=1))
    assert key.status(NOW) == "active"
    assert key.status(NOW + timedelta(days=1)) == "expired"
    assert record("s", revoked_at=NOW).status(NOW) == "revoked"


#: Every endpoint class and the least role that may call it.
ENDPOINT_CLASSES = {
    "/api/v1/ltp": "reader",
    "/api/v1/ltp/cached": "reader",
    "/api/v1/ltp/live": "reader",
    "/api/v1/tokens": "reader",
    "/api/v1/tokens/bitcoin": "reader",
    "/api/v1/tokens/bitcoin/history": "reader",
    "/api/v1/tokens/bitcoin/velocity": "analyst",
    "/api/v1/ltp/refresh": "admin",
    "/api/v1/admin/keys": "admin",
    "/api/v1/admin/blocks": "admin",
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("path", "least"), ENDPOINT_CLASSES.items())
def test_role_matrix(role: str, path: str, least: str) -> None:
    assert required_role(path) == least
    assert role_allows(role, least) == (ROLES.index(role) >= ROLES.index(least))


def test_a_cost_table_prices_paths_by_endpoint_class() -> None:
    by_path, other = cost_table({"tokens": 7.0, "other": 0.5}, None)
    assert by_path == {
        "/api/v1/ltp/refresh": 10.0,  # not given: the default
        "/api/v1/ltp/cached": 2.0,
        "/api/v1/tokens": 7.0,
    }
    assert other == 0.5
    by_path, other = cost_table({"tokens": 7.0}, 5)
    assert by_path["/api/v1/ltp/refresh"] == 5.0  # capped at the bucket
    assert (by_path["/api/v1/tokens"], other) == (5.0, 1.0)
