"""``tokenpulse keys …`` on SQLite and PostgreSQL: the whole lifecycle, output and exit codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from tokenpulse.cli import app

pytestmark = pytest.mark.services

PEPPER = "cli-test-pepper-0123456789"


@pytest.fixture
def run(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("AUTH_KEY_PEPPER", PEPPER)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, ["keys", *args])

    return invoke


def test_key_lifecycle_through_the_cli(run: Any) -> None:
    created = run("create", "--name", "grafana", "--owner", "ops", "--tier", "pro", "--json")
    assert created.exit_code == 0, created.output
    document = json.loads(created.output)
    key_id, text = document["key_id"], document["key"]
    assert text.startswith(f"tp_live_{key_id}_")
    assert (document["tier"], document["role"], document["status"]) == ("pro", "reader", "active")

    table = run("list")
    assert table.exit_code == 0
    header, row = table.output.strip().splitlines()
    assert header.split()[:6] == ["KEY_ID", "NAME", "OWNER", "TIER", "ROLE", "STATUS"]
    assert row.split()[:6] == [key_id, "grafana", "ops", "pro", "reader", "active"]
    assert text not in table.output
    listed = json.loads(run("list", "--json").output)
    assert [k["key_id"] for k in listed] == [key_id]

    assert (
        json.loads(run("set-tier", key_id, "enterprise", "--json").output)["tier"] == "enterprise"
    )
    assert json.loads(run("set-role", key_id, "analyst", "--json").output)["role"] == "analyst"
    rotated = json.loads(run("rotate", key_id, "--grace", "1h", "--json").output)
    assert rotated["key"] != text
    assert rotated["rotated_secret_valid_until"] is not None
    shown = json.loads(run("show", key_id, "--json").output)
    assert (shown["tier"], shown["role"]) == ("enterprise", "analyst")

    revoked = run("revoke", key_id, "--json")
    assert revoked.exit_code == 0
    assert json.loads(revoked.output)["status"] == "revoked"
    assert "revoked" in run("show", key_id).output


def test_exit_codes(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = run("show", "000000000000")
    assert missing.exit_code == 1
    assert "no API key with id" in missing.output
    bad_tier = run("create", "--name", "x", "--tier", "gold")
    assert bad_tier.exit_code == 2
    assert "tiers: free, pro, enterprise" in bad_tier.output
    bad_duration = run("create", "--name", "x", "--expires-in", "soon")
    assert bad_duration.exit_code == 2
    assert run("list").output.strip() == "no keys"  # nothing was created
    monkeypatch.delenv("AUTH_KEY_PEPPER")
    no_pepper = run("list")
    assert no_pepper.exit_code == 2
    assert "AUTH_KEY_PEPPER" in no_pepper.output
