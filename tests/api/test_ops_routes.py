"""Liveness, readiness, pairs and the OpenAPI document through the ASGI app in process."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import PAIRS
from tests.helpers import asgi_client


async def test_health_is_up_before_anything_is_served(app: Any) -> None:
    async with asgi_client(app, start=False) as client:
        response = await client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["uptime_seconds"] >= 0


async def test_ready_once_the_sources_serve(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"


async def test_pairs_lists_the_supported_pairs(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/pairs")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert [item["pair"] for item in body["data"]] == PAIRS
    assert {item["serving_source"] for item in body["data"]} == {"replay"}


async def test_unknown_paths_get_the_error_model(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")


async def test_the_openapi_document_describes_the_fast_routes(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/v1/ltp", "/api/v1/tokens", "/health"} <= set(paths)
