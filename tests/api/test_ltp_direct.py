"""``GET /api/v1/ltp``'s direct route (``api/ltp/direct.py``) answers as the general path does.

The same app serves each request twice: once with the direct route, once with it switched off
(the edge's general path: the gate, the fast-route adapter, the metrics and the access log
each in turn). Status, header names in order, the X-RateLimit-* and Retry-After values and
the body (but for the moment of asking) must agree; so must the metrics and the access line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import generate_latest

from tests.api.conftest import PAIRS, recorded_snapshots
from tests.helpers import build_app, container_of, in_memory_settings, wait_for

KEY = "k" * 32
MOMENTARY = {"age_ms", "stale", "timestamp", "as_of", "received_at", "retry_after"}


def scope(query: bytes, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/ltp",
        "raw_path": b"/api/v1/ltp",
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"tokenpulse.test"), *headers],
        "client": ("10.1.2.3", 5555),
        "server": ("127.0.0.1", 8080),
    }


async def call(app: Any, request: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(request, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], list(start["headers"]), body


def comparable(body: bytes) -> Any:
    """The body without what depends on the moment of asking."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in MOMENTARY}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(orjson.loads(body))


async def started_app(tmp_path: Path, **settings: Any) -> Any:
    app = build_app(in_memory_settings(replay_path=str(recorded_snapshots(tmp_path)), **settings))
    await app.runtime.start()
    container = container_of(app)
    await wait_for(
        lambda: len(container.prices.views()) == len(PAIRS), 10, message="every pair served"
    )
    return app


@pytest.fixture
async def keyed_app(tmp_path: Path) -> AsyncIterator[Any]:
    """Auth on, a bucket of 3 that refills slowly: the fourth request is refused."""
    app = await started_app(
        tmp_path,
        auth_enabled=True,
        auth_api_key=KEY,
        rate_limit_enabled=True,
        rate_limit_capacity=3,
        rate_limit_refill_rate=0.001,
    )
    yield app
    await app.runtime.stop()


async def both(app: Any, request: dict[str, Any]) -> tuple[Any, Any]:
    """(direct answer, general answer) to ``request``; each path with its own fresh copy."""
    direct = await call(app, dict(request))
    routes, app.direct_routes = app.direct_routes, {}
    try:
        general = await call(app, dict(request))
    finally:
        app.direct_routes = routes
    return direct, general


def assert_alike(direct: Any, general: Any) -> None:
    (status_d, headers_d, body_d), (status_g, headers_g, body_g) = direct, general
    assert status_d == status_g
    assert [name for name, _ in headers_d] == [name for name, _ in headers_g]
    steady = {b"content-type", b"x-ratelimit-limit", b"retry-after"}
    assert [h for h in headers_d if h[0] in steady] == [h for h in headers_g if h[0] in steady]
    assert comparable(body_d) == comparable(body_g)


@pytest.mark.parametrize(
    "query",
    [
        b"pair=BTC/USD",
        b"pair=BTC/USD,ETH/USD",
        b"pair=BTC/USD,NOPE/USD",
        b"pair=",
        b"x=1",
        b"pair=BTC/USD&numbers=string",
        b"pair=BTC/USD&max_age_ms=abc",
        b"pair=NOPE/USD",
    ],
)
async def test_the_direct_route_answers_as_the_general_path(keyed_app: Any, query: bytes) -> None:
    request = scope(query, (b"x-api-key", KEY.encode()), (b"x-request-id", b"abc-1"))
    direct, general = await both(keyed_app, request)
    assert_alike(direct, general)
    assert (b"x-request-id", b"abc-1") in direct[1]
    assert (b"x-request-id", b"abc-1") in general[1]


async def test_the_direct_route_takes_only_what_it_answers_alike(keyed_app: Any) -> None:
    """Answered directly (no ``scope["state"]`` left behind) or left to the general path."""
    direct = scope(b"pair=BTC/USD", (b"x-api-key", KEY.encode()))
    await call(keyed_app, direct)
    assert "state" not in direct
    for headers in [
        [],  # no key: 401 from the general path
        [(b"x-api-key", b"wrong")],
        [(b"authorization", b"Bearer nope")],
        [(b"x-api-key", KEY.encode()), (b"origin", b"https://example.com")],
        [(b"x-api-key", KEY.encode()), (b"content-length", b"3")],
    ]:
        general = scope(b"pair=BTC/USD", *headers)
        await call(keyed_app, general)
        assert "state" in general, headers


async def test_rate_limit_refusal_headers_metrics_and_usage(keyed_app: Any) -> None:
    """The bucket of 3: three 200s then 429 with Retry-After, the same on either path."""
    request = scope(b"pair=BTC/USD", (b"x-api-key", KEY.encode()))
    remaining = []
    for _ in range(3):
        status, headers, _ = await call(keyed_app, dict(request))
        assert status == 200
        remaining.append(dict(headers)[b"x-ratelimit-remaining"])
    assert remaining == [b"2", b"1", b"0"]
    direct, general = await both(keyed_app, request)
    assert direct[0] == 429
    assert dict(direct[1])[b"retry-after"] == dict(general[1])[b"retry-after"]
    assert_alike(direct, general)
    assert orjson.loads(direct[2])["error"] == "RATE_LIMIT_EXCEEDED"

    metrics = container_of(keyed_app).metrics
    assert metrics.http.count("GET", "/api/v1/ltp", 200) == 3
    assert metrics.http.count("GET", "/api/v1/ltp", 429) == 2
    sample = metrics.registry.get_sample_value
    assert sample("tokenpulse_rate_limit_decisions_total", {"decision": "allowed"}) == 3
    assert sample("tokenpulse_rate_limit_decisions_total", {"decision": "denied"}) == 2
    exposition = generate_latest(metrics.registry).decode()
    assert 'tokenpulse_http_requests_total{method="GET",route="/api/v1/ltp",status="429"} 2.0' in (
        exposition
    )
    assert 'tokenpulse_rate_limit_decisions_total{decision="denied"} 2.0' in exposition


async def test_without_auth_the_bucket_is_the_client_ip(tmp_path: Path) -> None:
    app = await started_app(
        tmp_path, rate_limit_enabled=True, rate_limit_capacity=2, rate_limit_refill_rate=0.001
    )
    try:
        first = scope(b"pair=BTC/USD")
        assert (await call(app, first))[0] == 200
        assert "state" not in first
        other = dict(scope(b"pair=BTC/USD"), client=("10.9.9.9", 1))
        assert (await call(app, other))[0] == 200  # another IP, another bucket
        direct, general = await both(app, scope(b"pair=BTC/USD"))
        assert (direct[0], general[0]) == (200, 429)  # the second token, then none left
        assert dict(direct[1])[b"x-ratelimit-remaining"] == b"0"
    finally:
        await app.runtime.stop()
