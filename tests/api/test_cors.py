"""CORS on every route kind, answered once by the edge (SPEC §8.5), on a real server."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import KEY, OFFLINE
from tests.server import app_settings, running_app
from tokenpulse.settings import Settings

ALLOWED = "http://app.example"
OTHER = "http://evil.example"

# (path, headers) of each kind: the edge's fast routes, a FastAPI route, an open route, an SSE
# stream and Socket.IO long-polling.
ROUTES = [
    "/api/v1/ltp?pair=BTC/USD",
    "/api/v1/tokens",
    "/health",
    "/api/v1/pairs",
    "/ready",
    "/socket.io/?EIO=4&transport=polling",
]


def _settings(**extra: str) -> Settings:
    return app_settings(**OFFLINE, cors_origins=ALLOWED, **extra)


async def _headers(http: httpx.AsyncClient, url: str, origin: str, **headers: str) -> httpx.Headers:
    """The response headers (a stream's too: read the head, not the endless body)."""
    sent = {"Origin": origin, **headers} if origin else headers
    async with http.stream("GET", url, headers=sent) as response:
        return response.headers


@pytest.mark.parametrize("auth", [False, True])
async def test_every_route_kind_carries_cors_headers_for_an_allowed_origin_only(
    http: httpx.AsyncClient, auth: bool
) -> None:
    extra = {"auth_enabled": "true", "auth_api_key": KEY} if auth else {}
    async with running_app(_settings(**extra)) as app:
        for path in [*ROUTES, "/api/v1/ltp/live?pair=BTC/USD"]:
            url = f"{app.base_url}{path}"
            allowed = await _headers(http, url, ALLOWED, **{"X-API-Key": KEY})
            assert allowed.get_list("access-control-allow-origin") == [ALLOWED], path
            assert "X-Request-ID" in allowed["access-control-expose-headers"], path
            assert "Origin" in allowed.get_list("vary"), path
            other = await _headers(http, url, OTHER, **{"X-API-Key": KEY})
            assert "access-control-allow-origin" not in other, path
            plain = await _headers(http, url, "", **{"X-API-Key": KEY})
            assert "access-control-allow-origin" not in plain, path


async def test_preflight_needs_no_key_and_never_takes_from_the_bucket(
    http: httpx.AsyncClient,
) -> None:
    settings = _settings(
        auth_enabled="true",
        auth_api_key=KEY,
        rate_limit_capacity="2",
        rate_limit_refill_rate="0.001",
    )
    async with running_app(settings) as app:
        for _ in range(5):
            for path in ROUTES:
                response = await http.options(
                    f"{app.base_url}{path}",
                    headers={
                        "Origin": ALLOWED,
                        "Access-Control-Request-Method": "GET",
                        "Access-Control-Request-Headers": "x-api-key, x-request-id",
                    },
                )
                assert response.status_code == 204, (path, response.text)
                assert response.headers["access-control-allow-origin"] == ALLOWED
                assert "x-api-key" in response.headers["access-control-allow-headers"]
                assert "GET" in response.headers["access-control-allow-methods"]
                assert "x-ratelimit-remaining" not in response.headers
        # 30 preflights later the bucket of 2 is still full.
        first = await http.get(f"{app.base_url}/api/v1/pairs", headers={"X-API-Key": KEY})
        assert first.status_code == 200
        assert first.headers["x-ratelimit-remaining"] == "1"


async def test_preflight_from_a_disallowed_origin_or_for_an_unlisted_header_is_refused(
    http: httpx.AsyncClient,
) -> None:
    async with running_app(_settings(auth_enabled="true", auth_api_key=KEY)) as app:
        preflight = {"Access-Control-Request-Method": "GET"}
        other = await http.options(
            f"{app.base_url}/api/v1/ltp", headers={"Origin": OTHER, **preflight}
        )
        assert other.status_code == 403
        assert other.json()["error"] == "FORBIDDEN"  # the LTP path's flat shape
        assert "access-control-allow-origin" not in other.headers
        header = await http.options(
            f"{app.base_url}/api/v1/tokens",
            headers={"Origin": ALLOWED, **preflight, "Access-Control-Request-Headers": "x-secret"},
        )
        assert header.status_code == 403
        assert header.json()["error"]["code"] == "FORBIDDEN"  # the standard shape


async def test_without_cors_origins_no_origin_is_allowed(http: httpx.AsyncClient) -> None:
    async with running_app(app_settings(**OFFLINE)) as app:
        response = await http.get(f"{app.base_url}/api/v1/ltp", headers={"Origin": ALLOWED})
        assert "access-control-allow-origin" not in response.headers
        preflight = await http.options(
            f"{app.base_url}/health",
            headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"},
        )
        assert preflight.status_code == 403


async def test_wildcard_with_auth_allows_any_origin(http: httpx.AsyncClient) -> None:
    settings = app_settings(**OFFLINE, cors_origins="*", auth_enabled="true", auth_api_key=KEY)
    async with running_app(settings) as app:
        response = await http.get(
            f"{app.base_url}/api/v1/ltp", headers={"Origin": OTHER, "X-API-Key": KEY}
        )
        assert response.headers.get_list("access-control-allow-origin") == ["*"]
        polling = await http.get(
            f"{app.base_url}/socket.io/?EIO=4&transport=polling", headers={"Origin": OTHER}
        )
        assert polling.status_code == 200
        assert polling.headers.get_list("access-control-allow-origin") == ["*"]
