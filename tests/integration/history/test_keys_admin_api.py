"""The admin key API on SQLite and PostgreSQL: create, use, change, rotate, revoke."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import recorded_snapshots
from tests.helpers import asgi_client, build_app, in_memory_settings

pytestmark = pytest.mark.services

ADMIN = {"X-API-Key": "bootstrap-admin-key-0123456789"}


async def test_key_lifecycle_through_the_admin_api(db_url: str, tmp_path: Path) -> None:
    settings = in_memory_settings(
        replay_path=str(recorded_snapshots(tmp_path)),
        auth_enabled=True,
        auth_api_key=ADMIN["X-API-Key"],
        auth_key_pepper="pepper-for-the-tests-0123456789",
        history_enabled=True,
        database_url=db_url,
    )
    async with asgi_client(build_app(settings)) as http:
        created = await http.post(
            "/api/v1/admin/keys", json={"name": "pg", "tier": "pro"}, headers=ADMIN
        )
        assert created.status_code == 201, created.text
        key_id, text = created.json()["key_id"], created.json()["key"]
        own = {"X-API-Key": text}
        assert (await http.get("/api/v1/pairs", headers=own)).status_code == 200
        url = f"/api/v1/admin/keys/{key_id}"
        changed = await http.patch(url, json={"role": "analyst"}, headers=ADMIN)
        assert changed.json()["role"] == "analyst"
        rotated = await http.post(f"{url}/rotate", json={"grace": "0s"}, headers=ADMIN)
        new = {"X-API-Key": rotated.json()["key"]}
        assert (await http.get("/api/v1/pairs", headers=own)).status_code == 401
        assert (await http.get("/api/v1/pairs", headers=new)).status_code == 200
        assert (await http.post(f"{url}/revoke", headers=ADMIN)).json()["status"] == "revoked"
        assert (await http.get("/api/v1/pairs", headers=new)).status_code == 401
        listed = (await http.get("/api/v1/admin/keys", headers=ADMIN)).json()["keys"]
        assert [(k["key_id"], k["status"]) for k in listed] == [(key_id, "revoked")]
