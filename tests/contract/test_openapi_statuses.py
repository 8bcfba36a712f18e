"""Every operation's documented error cases, driven against the real app: each answer must be
a status the document lists for that operation, with a body that validates against it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.contract._openapi import operation, problems
from tests.contract.conftest import KEY, LiveApp, live_settings

#: (method, path template, concrete path with query, the status it must answer)
CASES: list[tuple[str, str, str, int]] = [
    ("GET", "/api/v1/ltp", "/api/v1/ltp", 200),
    ("GET", "/api/v1/ltp", "/api/v1/ltp?pair=BTC/USD,DOGE/MOON", 206),
    ("GET", "/api/v1/ltp", "/api/v1/ltp?pair=DOGE/MOON", 400),
    ("GET", "/api/v1/ltp", "/api/v1/ltp?pair=BTC/USD&max_age_ms=-1", 400),
    ("GET", "/api/v1/ltp/cached", "/api/v1/ltp/cached", 200),
    ("POST", "/api/v1/ltp/refresh", "/api/v1/ltp/refresh?pairs=BTC/USD", 200),
    ("POST", "/api/v1/ltp/refresh", "/api/v1/ltp/refresh?pairs=NOPE/X", 400),
    ("GET", "/api/v1/pairs", "/api/v1/pairs", 200),
    ("GET", "/api/v1/sources", "/api/v1/sources", 200),
    ("GET", "/api/v1/tokens", "/api/v1/tokens?limit=2", 200),
    ("GET", "/api/v1/tokens", "/api/v1/tokens?limit=0", 400),
    ("GET", "/api/v1/tokens", "/api/v1/tokens?sort=nope", 400),
    ("GET", "/api/v1/tokens/{token_id}", "/api/v1/tokens/bitcoin?history=24h", 200),
    ("GET", "/api/v1/tokens/{token_id}", "/api/v1/tokens/nosuchcoin", 404),
    ("GET", "/api/v1/tokens/{token_id}", "/api/v1/tokens/bitcoin?detail=nope", 400),
    ("GET", "/api/v1/tokens/{token_id}", "/api/v1/tokens/bitcoin?max_age_ms=x", 400),
    ("GET", "/api/v1/tokens/{token_id}/velocity", "/api/v1/tokens/bitcoin/velocity", 200),
    ("GET", "/api/v1/tokens/{token_id}/velocity", "/api/v1/tokens/bitcoin/velocity?window=9y", 400),
    ("GET", "/api/v1/tokens/{token_id}/velocity", "/api/v1/tokens/nosuchcoin/velocity", 404),
    ("GET", "/api/v1/tokens/{token_id}/history", "/api/v1/tokens/bitcoin/history", 200),
    (
        "GET",
        "/api/v1/tokens/{token_id}/history",
        "/api/v1/tokens/bitcoin/history?granularity=raw&from=0",
        200,
    ),
    (
        "GET",
        "/api/v1/tokens/{token_id}/history",
        "/api/v1/tokens/bitcoin/history?granularity=1m&from=0",
        400,
    ),
    ("GET", "/api/v1/tokens/{token_id}/history", "/api/v1/tokens/bitcoin/history?to=soon", 400),
    ("GET", "/api/v1/tokens/{token_id}/history", "/api/v1/tokens/nosuchcoin/history", 404),
    ("GET", "/api/v1/ltp/live", "/api/v1/ltp/live?pair=DOGE/MOON", 400),
    ("GET", "/api/v1/tokens/live", "/api/v1/tokens/live?ids=nosuchcoin", 404),
    ("GET", "/api/v1/tokens/{token_id}/live", "/api/v1/tokens/nosuchcoin/live", 404),
    ("GET", "/health", "/health", 200),
    ("GET", "/ready", "/ready", 200),
    ("GET", "/metrics", "/metrics", 200),
]

#: Answers that need the values to have aged: max_age_ms=1 once they are older than 1 ms.
STALE_CASES: list[tuple[str, str]] = [
    ("/api/v1/ltp", "/api/v1/ltp?max_age_ms=1"),
    ("/api/v1/tokens", "/api/v1/tokens?max_age_ms=1"),
    ("/api/v1/tokens/{token_id}", "/api/v1/tokens/bitcoin?max_age_ms=1"),
    ("/api/v1/tokens/{token_id}/velocity", "/api/v1/tokens/bitcoin/velocity?max_age_ms=1"),
]

STREAMS = [
    ("/api/v1/ltp/live", "/api/v1/ltp/live?pair=BTC/USD"),
    ("/api/v1/tokens/live", "/api/v1/tokens/live?ids=bitcoin"),
    ("/api/v1/tokens/{token_id}/live", "/api/v1/tokens/bitcoin/live"),
]


@pytest.fixture(scope="module")
def http(live_app: LiveApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_app.base_url, timeout=10) as client:
        yield client


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, found in item.items():
            yield method.upper(), path, found


@pytest.mark.parametrize(("method", "template", "url", "status"), CASES)
def test_each_documented_case_answers_as_documented(
    http: httpx.Client,
    openapi_document: dict[str, Any],
    method: str,
    template: str,
    url: str,
    status: int,
) -> None:
    response = http.request(method, url)
    assert response.status_code == status, response.text
    assert problems(openapi_document, method, template, response) == []


@pytest.mark.parametrize(("template", "url"), STALE_CASES)
def test_stale_data_is_a_documented_503_with_retry_after(
    http: httpx.Client, openapi_document: dict[str, Any], template: str, url: str
) -> None:
    deadline = time.monotonic() + 5
    response = http.get(url)
    while response.status_code != 503 and time.monotonic() < deadline:
        response = http.get(url)  # a heartbeat may just have made the value current
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert (error if isinstance(error, str) else error["code"]) == "STALE_DATA"
    assert int(response.headers["retry-after"]) >= 1
    assert problems(openapi_document, "GET", template, response) == []
    documented = operation(openapi_document, "GET", template)["responses"]["503"]
    assert "Retry-After" in documented["headers"]


@pytest.mark.parametrize(("template", "url"), STREAMS)
def test_a_stream_opens_as_documented(
    http: httpx.Client, openapi_document: dict[str, Any], template: str, url: str
) -> None:
    with http.stream("GET", url) as response:
        assert response.status_code == 200
        media = response.headers["content-type"].split(";")[0]
        documented = operation(openapi_document, "GET", template)["responses"]["200"]
        assert media in documented["content"]


def test_the_edge_answers_401_and_429_as_documented_on_every_api_operation(
    tmp_path_factory: pytest.TempPathFactory, openapi_document: dict[str, Any]
) -> None:
    settings = live_settings(
        tmp_path_factory.mktemp("edge"),
        auth_enabled="true",
        auth_api_key=KEY,
        rate_limit_capacity=1,
        rate_limit_refill_rate=0.001,
    )
    api = [(m, p) for m, p, _ in operations(openapi_document) if p.startswith("/api/")]
    assert len(api) >= 12
    found: list[str] = []
    with LiveApp(settings) as app, httpx.Client(base_url=app.base_url, timeout=10) as http:
        secured = http.get("/openapi.json").json()
        for method, template in api:
            url = template.replace("{token_id}", "bitcoin")
            response = http.request(method, url)
            assert response.status_code == 401, f"{method} {url}: {response.text}"
            found += problems(secured, method, template, response)
        assert http.get("/api/v1/pairs", headers={"X-API-Key": KEY}).status_code == 200
        for method, template in api:
            url = template.replace("{token_id}", "bitcoin")
            response = http.request(method, url, headers={"X-API-Key": KEY})
            assert response.status_code == 429, f"{method} {url}: {response.text}"
            assert "retry-after" in response.headers
            found += problems(secured, method, template, response)
    assert found == []


def test_the_document_states_the_contract(openapi_document: dict[str, Any]) -> None:
    assert '"422"' not in str(openapi_document).replace("'", '"')
    ids = [found["operationId"] for _, _, found in operations(openapi_document)]
    assert len(ids) == len(set(ids)) >= 15
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", i) for i in ids), ids
    assert {"getLtp", "listTokens", "getToken", "streamTokens", "getHealth"} <= set(ids)
    schemes = openapi_document["components"]["securitySchemes"]
    assert {(s.get("in"), s.get("name") or s.get("scheme")) for s in schemes.values()} == {
        ("header", "X-API-Key"),
        ("query", "api_key"),
        (None, "bearer"),
        ("query", "token"),
    }
    models = set(openapi_document["components"]["schemas"])
    assert {"Token", "Pagination", "Trend", "Velocity", "HistoryPoint", "LtpEntry"} <= models
    assert {"ErrorResponse", "FlatError"} <= models
    for method, path, found in operations(openapi_document):
        responses = found["responses"]
        if path.startswith("/api/"):
            assert {"401", "403", "429"} <= set(responses), f"{method} {path}"
            assert found["security"], f"{method} {path}"
        for status, answer in responses.items():
            assert "X-Request-ID" in answer["headers"], f"{method} {path} {status}"
            for media, body in answer.get("content", {}).items():
                ref = body.get("schema", {}).get("$ref", "")
                model = openapi_document["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
                has_example = "example" in body or "examples" in body or "example" in model
                assert has_example, f"{method} {path} {status} {media}: no example"
        flat = path.startswith("/api/v1/ltp")
        shape = "FlatError" if flat else "ErrorResponse"
        for status in ("401", "403", "429"):
            if status in responses:
                schema = responses[status]["content"]["application/json"]["schema"]
                assert schema["$ref"].endswith(shape), f"{method} {path} {status}"
