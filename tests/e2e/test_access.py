"""Access control as the Go service has it: API key on /api/v1/*, token bucket per client."""

from __future__ import annotations

import httpx
import pytest

from tests.server import app_settings, running_app

OFFLINE = {"kraken_ws_url": "ws://127.0.0.1:1/v2", "kraken_rest_url": "http://127.0.0.1:1"}
KEY = "tp_test_key_0123456789"


async def test_auth_off_needs_no_key(http: httpx.AsyncClient) -> None:
    async with running_app(app_settings(**OFFLINE)) as app:
        assert (await http.get(f"{app.base_url}/api/v1/pairs")).status_code == 200


async def test_auth_on_requires_the_key_on_api_paths_only(http: httpx.AsyncClient) -> None:
    settings = app_settings(**OFFLINE, auth_enabled="true", auth_api_key=KEY)
    async with running_app(settings) as app:
        base = app.base_url
        missing = await http.get(f"{base}/api/v1/ltp?pair=BTC/USD")
        assert missing.status_code == 401
        assert missing.json()["error"] == "UNAUTHORIZED"  # the Go service's flat shape
        wrong = await http.get(f"{base}/api/v1/ltp", headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401
        assert wrong.json() == {"error": "UNAUTHORIZED", "message": "invalid API key"}
        standard = await http.get(f"{base}/api/v1/sources")
        assert standard.status_code == 401
        assert standard.json()["status"] == "error"
        assert standard.json()["error"]["code"] == "UNAUTHORIZED"
        assert standard.json()["request_id"] == standard.headers["x-request-id"]

        ok = await http.get(f"{base}/api/v1/pairs", headers={"X-API-Key": KEY})
        assert ok.status_code == 200
        via_query = await http.get(f"{base}/api/v1/pairs?api_key={KEY}")
        assert via_query.status_code == 200
        for open_path in ("/health", "/ready", "/metrics", "/docs", "/openapi.json"):
            response = await http.get(f"{base}{open_path}")
            assert response.status_code != 401, open_path
        metrics = (await http.get(f"{base}/metrics")).text
        assert 'tokenpulse_auth_failures_total{reason="missing"}' in metrics
        assert KEY not in metrics


async def test_rate_limit_429_with_headers(http: httpx.AsyncClient) -> None:
    settings = app_settings(**OFFLINE, rate_limit_capacity=3, rate_limit_refill_rate=0.01)
    async with running_app(settings) as app:
        url = f"{app.base_url}/api/v1/pairs"
        remaining = []
        for _ in range(3):
            response = await http.get(url)
            assert response.status_code == 200
            assert response.headers["x-ratelimit-limit"] == "3"
            remaining.append(int(response.headers["x-ratelimit-remaining"]))
        assert remaining == [2, 1, 0]
        limited = await http.get(f"{app.base_url}/api/v1/ltp")
        assert limited.status_code == 429
        assert limited.json()["error"] == "RATE_LIMIT_EXCEEDED"
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["x-ratelimit-remaining"] == "0"
        other = await http.get(url)
        assert other.status_code == 429
        assert other.json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"
        # Health checks are never rate limited.
        assert (await http.get(f"{app.base_url}/health")).status_code == 200


@pytest.mark.parametrize(
    ("trusted", "expected_limited"),
    [("127.0.0.1", False), ("10.9.9.9", True)],
)
async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    http: httpx.AsyncClient, trusted: str, expected_limited: bool
) -> None:
    settings = app_settings(
        **OFFLINE, rate_limit_capacity=1, rate_limit_refill_rate=0.01, forwarded_allow_ips=trusted
    )
    async with running_app(settings) as app:
        url = f"{app.base_url}/api/v1/pairs"
        first = await http.get(url, headers={"X-Forwarded-For": "203.0.113.1"})
        assert first.status_code == 200
        # A different client behind the same proxy has its own bucket only if the proxy is trusted.
        second = await http.get(url, headers={"X-Forwarded-For": "203.0.113.2"})
        assert (second.status_code == 429) is expected_limited


async def test_authenticated_callers_have_a_bucket_per_key(http: httpx.AsyncClient) -> None:
    settings = app_settings(
        **OFFLINE,
        auth_enabled="true",
        auth_api_key=KEY,
        rate_limit_capacity=2,
        rate_limit_refill_rate=0.01,
    )
    async with running_app(settings) as app:
        url = f"{app.base_url}/api/v1/pairs"
        statuses = [(await http.get(url, headers={"X-API-Key": KEY})).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]


async def test_oversized_body_is_rejected(http: httpx.AsyncClient) -> None:
    async with running_app(app_settings(**OFFLINE)) as app:
        response = await http.post(f"{app.base_url}/api/v1/ltp/refresh", content=b"x" * 70_000)
        assert response.status_code == 413
