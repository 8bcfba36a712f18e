"""Access control through the API (SPEC §8): the admin key API, roles, tiers, sessions, abuse.

The app runs in process with stored keys in a SQLite history store of the test's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import PAIRS, recorded_snapshots
from tests.helpers import asgi_client, build_app, container_of, in_memory_settings, wait_for

ADMIN = "bootstrap-admin-key-0123456789"
PEPPER = "pepper-for-the-tests-0123456789"


def access_settings(tmp_path: Path, **overrides: Any) -> Any:
    return in_memory_settings(
        replay_path=str(recorded_snapshots(tmp_path)),
        auth_enabled=True,
        auth_api_key=ADMIN,
        auth_key_pepper=PEPPER,
        history_enabled=True,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/history.db",
        **overrides,
    )


@contextlib.asynccontextmanager
async def access_client(tmp_path: Path, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a started app with ``overrides``."""
    app = build_app(access_settings(tmp_path, **overrides))
    container = container_of(app)
    async with asgi_client(app) as client:
        await wait_for(
            lambda: len(container.prices.views()) == len(PAIRS) and len(container.tokens) > 0,
            10,
            message="the replay to serve every pair and some tokens",
        )
        client.headers["X-Forwarded-For"] = "198.51.100.1"  # every test's own "client"
        yield client


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with access_client(tmp_path) as client:
        yield client


def admin() -> dict[str, str]:
    return {"X-API-Key": ADMIN}


async def create_key(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await http.post("/api/v1/admin/keys", json={"name": "test", **body}, headers=admin())
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def key(created: dict[str, Any]) -> dict[str, str]:
    return {"X-API-Key": created["key"]}


async def test_key_lifecycle_through_the_admin_api(http: httpx.AsyncClient) -> None:
    created = await create_key(http, owner="ops", tier="pro", role="reader")
    assert created["key"].startswith("tp_live_" + created["key_id"])
    assert created["status"] == "active"
    assert (await http.get("/api/v1/pairs", headers=key(created))).status_code == 200

    listed = (await http.get("/api/v1/admin/keys", headers=admin())).json()["keys"]
    assert [k["key_id"] for k in listed] == [created["key_id"]]
    assert "key" not in listed[0]
    assert "secret_hash" not in str(listed)
    url = f"/api/v1/admin/keys/{created['key_id']}"
    shown = (await http.get(url, headers=admin())).json()
    assert (shown["tier"], shown["role"], shown["owner"]) == ("pro", "reader", "ops")

    changed = await http.patch(url, json={"tier": "enterprise", "role": "analyst"}, headers=admin())
    assert changed.status_code == 200
    assert (changed.json()["tier"], changed.json()["role"]) == ("enterprise", "analyst")
    bad = await http.patch(url, json={"tier": "gold"}, headers=admin())
    assert bad.status_code == 400
    assert (await http.get(url, headers=admin())).json()["tier"] == "enterprise"

    rotated = await http.post(f"{url}/rotate", json={"grace": "1h"}, headers=admin())
    assert rotated.status_code == 200
    new = rotated.json()
    assert new["key"] != created["key"]
    assert new["rotated_secret_valid_until"] is not None
    for credentials in (key(created), key(new)):  # both work during the grace period
        assert (await http.get("/api/v1/pairs", headers=credentials)).status_code == 200

    revoked = await http.post(f"{url}/revoke", headers=admin())
    assert revoked.json()["status"] == "revoked"
    for credentials in (key(created), key(new)):
        assert (await http.get("/api/v1/pairs", headers=credentials)).status_code == 401
    missing = await http.get("/api/v1/admin/keys/000000000000", headers=admin())
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "KEY_NOT_FOUND"


ROLE_CASES = [
    # (method, path, {role: status})
    ("GET", "/api/v1/ltp?pair=BTC/USD", {"reader": 200, "analyst": 200, "admin": 200}),
    ("GET", "/api/v1/tokens?limit=1", {"reader": 200, "analyst": 200, "admin": 200}),
    ("GET", "/api/v1/tokens/bitcoin/velocity", {"reader": 403, "analyst": 200, "admin": 200}),
    ("POST", "/api/v1/ltp/refresh?pairs=NOPE/X", {"reader": 403, "analyst": 403, "admin": 400}),
    ("GET", "/api/v1/admin/keys", {"reader": 403, "analyst": 403, "admin": 200}),
    ("GET", "/api/v1/admin/blocks", {"reader": 403, "analyst": 403, "admin": 200}),
    (
        "GET",
        "/api/v1/tokens/bitcoin/history?from=2020-01-01T00:00:00Z",
        {"reader": 403, "analyst": 200, "admin": 200},
    ),
    ("GET", "/api/v1/tokens/bitcoin/history", {"reader": 200, "analyst": 200, "admin": 200}),
]


async def test_role_matrix(tmp_path: Path) -> None:
    async with access_client(tmp_path, tier_enterprise_history_depth="36500d") as http:
        keys = {
            role: key(await create_key(http, role=role, tier="enterprise"))
            for role in ("reader", "analyst", "admin")
        }
        found: dict[tuple[str, str], int] = {}
        for method, path, expected in ROLE_CASES:
            for role in expected:
                response = await http.request(method, path, headers=keys[role])
                found[(role, path)] = response.status_code
                if response.status_code == 403:
                    body = response.json()
                    flat = path.startswith("/api/v1/ltp")
                    assert (body["error"] if flat else body["error"]["code"]) == "FORBIDDEN"
        expected_all = {(r, p): s for _, p, e in ROLE_CASES for r, s in e.items()}
        assert found == expected_all


async def test_the_bucket_and_its_headers_follow_the_key_tier(tmp_path: Path) -> None:
    async with access_client(
        tmp_path, tier_free_capacity=3, tier_free_refill_rate=0.001, tier_pro_capacity=50
    ) as http:
        free = key(await create_key(http, tier="free"))
        pro = key(await create_key(http, tier="pro"))
        remaining = []
        for _ in range(3):
            response = await http.get("/api/v1/pairs", headers=free)
            assert response.headers["x-ratelimit-limit"] == "3"
            remaining.append(int(response.headers["x-ratelimit-remaining"]))
        assert remaining == [2, 1, 0]
        limited = await http.get("/api/v1/ltp", headers=free)
        assert limited.status_code == 429
        assert limited.json()["error"] == "RATE_LIMIT_EXCEEDED"
        assert int(limited.headers["retry-after"]) >= 1
        other = await http.get("/api/v1/pairs", headers=pro)  # another key, its own bucket
        assert other.status_code == 200
        assert other.headers["x-ratelimit-limit"] == "50"


async def test_each_tier_prices_the_endpoint_classes_its_own_way(tmp_path: Path) -> None:
    async with access_client(
        tmp_path,
        tier_free_capacity=20,
        tier_free_refill_rate=0.001,
        tier_free_cost_tokens=5,
        tier_free_cost_other=3,
        tier_pro_capacity=20,
        tier_pro_refill_rate=0.001,
        tier_enterprise_capacity=4,
        tier_enterprise_refill_rate=0.001,
        tier_enterprise_cost_tokens=50,
    ) as http:

        async def remaining_after(headers: dict[str, str], *paths: str) -> list[int]:
            left = []
            for path in paths:
                response = await http.get(path, headers=headers)
                assert response.status_code == 200, response.text
                left.append(int(response.headers["x-ratelimit-remaining"]))
            return left

        paths = ("/api/v1/tokens", "/api/v1/pairs", "/api/v1/ltp?pair=BTC/USD")
        free = key(await create_key(http, tier="free"))
        assert await remaining_after(free, *paths) == [15, 12, 9]  # 5, then 3 for the others
        pro = key(await create_key(http, tier="pro"))
        assert await remaining_after(pro, *paths) == [18, 17, 16]  # the defaults: 2, 1, 1
        # a cost above the bucket takes the whole bucket (it could never be paid otherwise)
        enterprise = key(await create_key(http, tier="enterprise"))
        assert await remaining_after(enterprise, "/api/v1/tokens") == [0]


async def test_usage_is_counted_per_key(http: httpx.AsyncClient) -> None:
    created = await create_key(http)
    for _ in range(4):
        await http.get("/api/v1/pairs", headers=key(created))
    usage = await http.get(f"/api/v1/admin/keys/{created['key_id']}/usage", headers=admin())
    assert usage.json()["requests"] == 4
    assert usage.json()["scope"] == "this_instance"  # no Redis: there are no other instances
    assert "note" not in usage.json()
    metrics = (await http.get("/metrics")).text
    assert 'tokenpulse_key_requests_total{outcome="allowed",tier="free"} 4.0' in metrics
    assert f'tokenpulse_top_key_requests_total{{key_id="{created["key_id"]}"}} 4.0' in metrics
    assert created["key"] not in metrics


async def test_session_issue_refresh_expiry_and_revocation(tmp_path: Path) -> None:
    async with access_client(tmp_path, auth_session_ttl="4s") as http:
        created = await create_key(http, tier="pro", role="analyst")
        issued = await http.post("/api/v1/sessions", headers=key(created))
        assert issued.status_code == 201, issued.text
        session = issued.json()
        assert (session["key_id"], session["tier"], session["role"]) == (
            created["key_id"],
            "pro",
            "analyst",
        )
        bearer = {"Authorization": f"Bearer {session['token']}"}
        assert (await http.get("/api/v1/pairs", headers=bearer)).status_code == 200
        assert (await http.get(f"/api/v1/pairs?token={session['token']}")).status_code == 200
        # a token cannot mint tokens: only a key can
        assert (await http.post("/api/v1/sessions", headers=bearer)).status_code == 401

        async def expired() -> bool:
            response = await http.get("/api/v1/pairs", headers=bearer)
            return response.status_code == 401

        await wait_for(expired, 15, message="the 4 s token to expire")
        answer = (await http.get("/api/v1/pairs", headers=bearer)).json()
        assert answer["error"]["details"]["reason"] == "TOKEN_EXPIRED"

        refreshed = await http.post("/api/v1/sessions/refresh", json={"token": session["token"]})
        assert refreshed.status_code == 200, refreshed.text
        fresh = {"Authorization": f"Bearer {refreshed.json()['token']}"}
        assert (await http.get("/api/v1/pairs", headers=fresh)).status_code == 200

        await http.post(f"/api/v1/admin/keys/{created['key_id']}/revoke", headers=admin())
        assert (await http.get("/api/v1/pairs", headers=fresh)).status_code == 401
        again = await http.post("/api/v1/sessions/refresh", headers=fresh)
        assert again.status_code == 401
        garbage = await http.post("/api/v1/sessions/refresh", json={"token": "not.a.token"})
        assert garbage.status_code == 401


async def test_failed_authentications_are_throttled_then_blocked(tmp_path: Path) -> None:
    async with access_client(
        tmp_path, auth_failure_capacity=3, auth_failure_refill_rate=0.001, auth_block_after=6
    ) as http:
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        statuses = []
        for attempt in range(6):
            wrong = {**attacker, "X-API-Key": f"tp_live_0123456789ab_{'x' * 40}{attempt}"}
            response = await http.get("/api/v1/ltp?pair=BTC/USD", headers=wrong)
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
                assert response.json()["error"] == "RATE_LIMIT_EXCEEDED"
        assert statuses == [401, 401, 401, 429, 429, 429]
        # blocked now: even the right key is refused from that address, not from others
        blocked = await http.get("/api/v1/pairs", headers={**attacker, **admin()})
        assert blocked.status_code == 429
        assert "blocked" in blocked.json()["error"]["message"]
        assert (await http.get("/api/v1/pairs", headers=admin())).status_code == 200
        # missing keys are not guesses: they never count towards a block
        for _ in range(10):
            response = await http.get("/api/v1/pairs", headers={"X-Forwarded-For": "192.0.2.7"})
            assert response.status_code == 401

        blocks = (await http.get("/api/v1/admin/blocks", headers=admin())).json()["blocks"]
        assert [b["ip"] for b in blocks] == ["203.0.113.9"]
        assert blocks[0]["seconds_left"] > 0
        metrics = (await http.get("/metrics")).text
        assert "tokenpulse_auth_blocks_total 1.0" in metrics
        assert "tokenpulse_auth_blocked_ips 1.0" in metrics

        lifted = await http.delete("/api/v1/admin/blocks/203.0.113.9", headers=admin())
        assert lifted.status_code == 204
        assert (await http.get("/api/v1/pairs", headers={**attacker, **admin()})).status_code == 200
        assert (await http.get("/api/v1/admin/blocks", headers=admin())).json()["blocks"] == []


async def test_admin_input_is_validated(http: httpx.AsyncClient) -> None:
    for body in (
        {"name": ""},
        {"name": "x", "tier": "gold"},
        {"name": "x", "role": "root"},
        {"name": "x", "expires_in": "soon"},
        {"name": "x", "extra": 1},
    ):
        response = await http.post("/api/v1/admin/keys", json=body, headers=admin())
        assert response.status_code == 400, body
    assert (await http.get("/api/v1/admin/keys", headers=admin())).json()["keys"] == []


async def test_a_key_limited_to_networks_and_origins(http: httpx.AsyncClient) -> None:
    by_ip = key(await create_key(http, allowed_ips=["10.0.0.0/8"]))
    assert (await http.get("/api/v1/pairs", headers=by_ip)).status_code == 403
    inside = {**by_ip, "X-Forwarded-For": "10.1.2.3"}
    assert (await http.get("/api/v1/pairs", headers=inside)).status_code == 200
    by_origin = key(await create_key(http, allowed_origins=["https://dash.example"]))
    refused = await http.get("/api/v1/pairs", headers=by_origin)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "FORBIDDEN"
    other = {**by_origin, "Origin": "https://evil.example"}
    assert (await http.get("/api/v1/pairs", headers=other)).status_code == 403
    allowed = {**by_origin, "Origin": "https://dash.example"}
    assert (await http.get("/api/v1/pairs", headers=allowed)).status_code == 200
