"""The fast raw-ASGI routes (``api/edge.py``) keep the contract the OpenAPI document states.

``GET /api/v1/ltp``, ``/api/v1/tokens`` and ``/health`` are answered by the edge before
FastAPI; FastAPI still declares them, with their response models and parameters, for the
documentation. Nothing but this test ties the two together, so it checks that:

* every fast route is a documented route (same path and method);
* what the fast route sends validates against the documented response model, and names
  no top-level field the document does not;
* the same request (every documented parameter, with a good and a bad value) gets the same
  status and the same body from the fast route and from the documentation route, apart
  from what depends on the moment of asking and the wording of error messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from tests.api.conftest import PAIRS, recorded_snapshots
from tests.helpers import asgi_client, build_app, container_of, in_memory_settings, wait_for
from tokenpulse.api import schemas
from tokenpulse.api.edge import EdgeMiddleware

FAST_ROUTES = [("GET", "/api/v1/ltp"), ("GET", "/api/v1/tokens"), ("GET", "/health")]
#: Fields whose value depends on the moment of asking (or on which of two calls came first),
#: and the wording of error messages (the two validators word them differently; the status,
#: the error code and the named parameter must agree). The replay re-bases provider times
#: (``as_of``) to each app's own start, and the two apps start a moment apart.
MOMENTARY = {"timestamp", "received_at", "age_ms", "uptime_seconds", "processing_time_ms", "cache"}
NOT_COMPARED = MOMENTARY | {"message", "request_id", "as_of"}


def documentation_app(app: Any) -> FastAPI:
    """The FastAPI app inside the edge (behind CORS and Socket.IO, whichever are there)."""
    seen: Any = app
    for _ in range(10):
        if isinstance(seen, FastAPI):
            return seen
        seen = getattr(seen, "other_asgi_app", None) or getattr(seen, "app", None)
    raise AssertionError("no FastAPI app inside the edge")


def without_fast_routes(edge: EdgeMiddleware) -> EdgeMiddleware:
    """The same app and edge with the fast path off: every request goes to FastAPI."""
    return EdgeMiddleware(
        edge.app,
        metrics=edge.metrics,
        authenticator=edge.authenticator,
        limiter=None,
        client_ip=edge.client_ip,
        fast_routes={},
        route_of=edge.route_of,
    )


@pytest.fixture
async def idle_app() -> AsyncIterator[Any]:
    """An app that is never started (its container is closed afterwards)."""
    app = build_app(in_memory_settings())
    yield app
    await app.runtime.stop()


@pytest.fixture
def openapi(idle_app: Any) -> dict[str, Any]:
    """The OpenAPI document of the app."""
    document: dict[str, Any] = documentation_app(idle_app).openapi()
    return document


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """(fast, documentation): two clients on one started app, with and without fast routes."""
    app = build_app(
        in_memory_settings(
            replay_path=str(recorded_snapshots(tmp_path)),
            rate_limit_enabled=False,
            replay_speed=1,  # recorded time barely moves: two answers show one moment
        )
    )
    container = container_of(app)
    async with asgi_client(app) as fast:
        await wait_for(
            lambda: len(container.prices.views()) == len(PAIRS) and len(container.tokens) > 0,
            10,
            message="every pair and some tokens served",
        )
        transport = httpx.ASGITransport(app=without_fast_routes(app))
        async with httpx.AsyncClient(transport=transport, base_url=fast.base_url) as slow:
            yield fast, slow


def test_the_edge_serves_exactly_these_fast_routes(idle_app: Any) -> None:
    assert sorted(idle_app.fast_routes) == sorted(FAST_ROUTES)


@pytest.mark.parametrize(("method", "path"), FAST_ROUTES)
def test_every_fast_route_is_documented(openapi: dict[str, Any], method: str, path: str) -> None:
    assert method.lower() in openapi["paths"].get(path, {})


def response_model(openapi: dict[str, Any], path: str, status: int) -> type[BaseModel]:
    """The model of ``schemas`` the document names for ``path``'s answer ``status``."""
    answers = openapi["paths"][path]["get"]["responses"]
    content = answers[str(status)]["content"]["application/json"]
    name = content["schema"]["$ref"].rsplit("/", 1)[-1]
    model = getattr(schemas, name, None)
    assert isinstance(model, type), f"{path} {status}: {name} is not in tokenpulse.api.schemas"
    assert issubclass(model, BaseModel)
    return model


def documented_fields(openapi: dict[str, Any], model: type[BaseModel]) -> set[str]:
    schema = openapi["components"]["schemas"][model.__name__]
    return set(schema.get("properties", {}))


UNDOCUMENTED_TOP_LEVEL_FIELDS: dict[str, set[str]] = {}


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/ltp", {}),
        ("/api/v1/ltp", {"pair": "BTC/USD"}),
        ("/api/v1/ltp", {"pairs": "ETH/USD,XRP/USD", "max_age_ms": "60000"}),
        ("/api/v1/tokens", {}),
        ("/api/v1/tokens", {"limit": "2", "detail": "basic"}),
        ("/health", {}),
    ],
)
async def test_fast_answers_validate_against_the_documented_model(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    openapi: dict[str, Any],
    path: str,
    query: dict[str, str],
) -> None:
    fast, _ = clients
    response = await fast.get(path, params=query)

    assert response.status_code == 200, response.text
    model = response_model(openapi, path, 200)
    model.model_validate_json(response.content)
    sent = set(orjson.loads(response.content))
    undocumented = sent - documented_fields(openapi, model)
    assert undocumented == UNDOCUMENTED_TOP_LEVEL_FIELDS.get(path, set())


def values_for(parameter: dict[str, Any]) -> Iterator[str]:
    """A good and a bad value of a documented query parameter, from its schema."""
    schema = parameter.get("schema", {})
    choices = schema.get("enum") or next(
        (option["enum"] for option in schema.get("anyOf", []) if "enum" in option), None
    )
    kinds = {schema.get("type")} | {option.get("type") for option in schema.get("anyOf", [])}
    name = parameter["name"]
    if choices:
        yield from (str(choices[0]), "no-such-choice")
    elif name == "max_age_ms":  # a bound far from the values' age: the answer must not race
        yield from ("3600000", "-1", "not-a-number")
    elif "integer" in kinds or "number" in kinds:
        low = schema.get("minimum", 1)
        yield from (str(low), str(low - 1), "not-a-number")
    elif name in {"pair", "pairs"}:
        yield from ("BTC/USD", "BTC/USD,DOGE/MOON", "DOGE/MOON", "")
    elif name == "symbols":
        yield from ("BTC,ETH", "NO-SUCH-SYMBOL")
    elif name == "cursor":
        yield from ("not-a-cursor",)
    else:
        yield "x"


def documented_queries(openapi: dict[str, Any], path: str) -> list[dict[str, str]]:
    queries: list[dict[str, str]] = [{}]
    for parameter in openapi["paths"][path]["get"].get("parameters", []):
        if parameter["in"] == "query":
            queries += [{parameter["name"]: value} for value in values_for(parameter)]
    return queries


def steady(value: Any) -> Any:
    """``value`` without the fields that depend on the moment of asking."""
    if isinstance(value, dict):
        return {k: steady(v) for k, v in value.items() if k not in NOT_COMPARED}
    if isinstance(value, list):
        return [steady(item) for item in value]
    return value


@pytest.mark.parametrize("path", [path for _, path in FAST_ROUTES])
async def test_fast_and_documentation_routes_answer_alike(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], openapi: dict[str, Any], path: str
) -> None:
    fast, documentation = clients
    differences = []
    for query in documented_queries(openapi, path):
        quick = await fast.get(path, params=query)
        documented = await documentation.get(path, params=query)
        if quick.status_code != documented.status_code or steady(quick.json()) != steady(
            documented.json()
        ):
            differences.append(
                f"{path}?{httpx.QueryParams(query)}: fast {quick.status_code} {quick.text[:200]}"
                f" / documented {documented.status_code} {documented.text[:200]}"
            )
    assert not differences, "\n".join(differences)
