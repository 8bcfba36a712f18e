"""The access log (SPEC §9): one line per request, in JSON and text, off with ACCESS_LOG."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import structlog

from tests.api.conftest import KEY, OFFLINE, serve_process
from tests.helpers import wait_for
from tests.server import app_settings, running_app
from tokenpulse.api.auth import key_id

EVENT = "HTTP request processed"
REQUEST_ID = 'r-42"q\\x'


async def test_one_line_per_request_with_route_template_caller_and_cache(
    http: httpx.AsyncClient,
) -> None:
    settings = app_settings(**OFFLINE, auth_enabled="true", auth_api_key=KEY, log_level="info")
    async with running_app(settings) as app:
        with structlog.testing.capture_logs() as lines:
            ltp = await http.get(
                f"{app.base_url}/api/v1/ltp?pair=BTC/USD",
                headers={"X-API-Key": KEY, "X-Request-ID": "req-ltp-1"},
            )
            token = await http.get(f"{app.base_url}/api/v1/tokens/bitcoin?api_key={KEY}")
            await http.get(f"{app.base_url}/api/v1/tokens", headers={"X-API-Key": KEY})
            anonymous = await http.get(f"{app.base_url}/api/v1/pairs")
            await http.get(f"{app.base_url}/socket.io/?EIO=4&transport=polling")
        access = [line for line in lines if line["event"] == EVENT]
        assert len(access) == 5, access
        first, second, listing, fourth, polling = access
        assert first["request_id"] == "req-ltp-1"
        assert first["method"] == "GET"
        assert first["route"] == "/api/v1/ltp"
        assert first["status"] == ltp.status_code
        assert first["bytes"] == len(ltp.content)
        assert first["key_id"] == key_id(KEY)
        assert first["cache"] == "miss"  # offline: no price yet, 503
        assert first["duration_ms"] >= 0
        assert second["route"] == "/api/v1/tokens/{token_id}"  # the template, not the path
        assert second["status"] == token.status_code
        assert listing["route"] == "/api/v1/tokens"
        assert listing["cache"] in {"hit", "miss"}
        assert fourth["status"] == anonymous.status_code == 401
        assert fourth["client_ip"] == "127.0.0.1"
        assert "key_id" not in fourth
        assert polling["route"] == "/socket.io/"
        assert all(KEY not in repr(line) for line in lines)


async def test_sse_logs_at_open_and_at_close(http: httpx.AsyncClient) -> None:
    async with running_app(app_settings(**OFFLINE, log_level="info")) as app:
        with structlog.testing.capture_logs() as lines:
            url = f"{app.base_url}/api/v1/ltp/live?pair=BTC/USD"
            async with http.stream("GET", url) as response:
                assert response.status_code == 200
                opened = [line for line in lines if line["event"] == "stream opened"]
                assert [line["stream"] for line in opened] == ["sse"]
                assert not [line for line in lines if line["event"] == EVENT]
            # The close line comes once the server sees the disconnect.
            await wait_for(lambda: any(line["event"] == EVENT for line in lines))
        (closed,) = [line for line in lines if line["event"] == EVENT]
        assert closed["stream"] == "sse"
        assert closed["route"] == "/api/v1/ltp/live"
        assert closed["request_id"] == opened[0]["request_id"]


async def test_access_log_false_logs_nothing(http: httpx.AsyncClient) -> None:
    async with running_app(app_settings(**OFFLINE, log_level="info", access_log="false")) as app:
        with structlog.testing.capture_logs() as lines:
            await http.get(f"{app.base_url}/api/v1/ltp")
            await http.get(f"{app.base_url}/health")
        assert not [line for line in lines if line["event"] == EVENT]


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_the_process_writes_the_line_in_both_formats(tmp_path: Path, fmt: str) -> None:
    with serve_process(tmp_path, LOG_FORMAT=fmt) as server:
        with httpx.Client(timeout=5) as client:
            # A client's request id may hold the characters JSON must escape.
            response = client.get(
                f"{server.base_url}/api/v1/ltp?pair=BTC/USD",
                headers={"X-Request-ID": REQUEST_ID},
            )
        log = server.wait_for_log("r-42")
    (line,) = [line for line in log.splitlines() if "r-42" in line]
    if fmt == "json":
        record = json.loads(line)
        assert record["request_id"] == REQUEST_ID
        assert isinstance(record["duration_ms"], float)
        assert record["duration_ms"] >= 0
        assert record["event"] == EVENT
        assert record["level"] == "info"
        assert record["route"] == "/api/v1/ltp"
        assert record["status"] == response.status_code
        assert record["bytes"] == len(response.content)
        assert record["client_ip"] == "127.0.0.1"
        assert record["timestamp"].endswith("Z")
    else:
        assert EVENT in line
        assert "route=/api/v1/ltp" in line
        assert f"status={response.status_code}" in line
        assert "client_ip=127.0.0.1" in line
