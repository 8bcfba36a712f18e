"""The OpenAPI document as the API really answers, and the docs routes around it.

FastAPI generates the document from the routes; :func:`complete_document` then states what the
routes cannot say for themselves, because the edge (``api/edge.py``) answers it before any
route runs:

* 401, 403 and 429 on every ``/api/v1`` operation, in the flat shape on the LTP paths and
  the standard shape elsewhere, with ``Retry-After`` and ``X-RateLimit-*``;
* the security schemes (SPEC §8): the ``X-API-Key`` header, a session token as
  ``Authorization: Bearer``, and for the streams the ``api_key`` and ``token`` query
  parameters (browsers' EventSource cannot set headers), so Swagger's "Authorize" works;
* 400 wherever a parameter can be malformed — the app maps validation errors to 400, so
  FastAPI's default 422 is removed everywhere, with its schemas;
* ``X-Request-ID`` on every answer; short operation ids for the stream routes.

``/docs`` and ``/redoc`` come from ``fastapi-offline`` (the Swagger UI and ReDoc files installed
with that package, never a CDN); ``/swagger/`` — the Go service's docs path — redirects there.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from tokenpulse.api.errors import uses_flat_errors
from tokenpulse.api.schemas.errors import ErrorResponse, FlatError, documented_error

API_PREFIX = "/api/"
HEADER_SCHEME = "ApiKeyHeader"
QUERY_SCHEME = "ApiKeyQuery"
BEARER_SCHEME = "SessionToken"
TOKEN_QUERY_SCHEME = "SessionTokenQuery"  # noqa: S105 - a scheme name
#: Answered without credentials: the session token in the request is the credential.
NO_KEY_PATHS = frozenset({"/api/v1/sessions/refresh"})
SCHEMA_REF = "#/components/schemas/{model}"

#: Operation ids of routes declared outside this package's route modules (the streams).
OPERATION_IDS: dict[tuple[str, str], str] = {
    ("get", "/api/v1/ltp/live"): "streamLtp",
    ("get", "/api/v1/tokens/live"): "streamTokens",
    ("get", "/api/v1/tokens/{token_id}/live"): "streamToken",
}

#: The error statuses of the SSE routes beyond the edge's (their parameters name pairs/tokens).
STREAM_ERRORS: dict[str, tuple[int, ...]] = {
    "/api/v1/ltp/live": (400,),
    "/api/v1/tokens/live": (400, 404, 409),
    "/api/v1/tokens/{token_id}/live": (400, 404, 409),
}

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id: the caller's X-Request-ID echoed, or a new one",
        "schema": {"type": "string"},
    },
    "X-RateLimit-Limit": {
        "description": "The caller's token-bucket capacity (when rate limiting is on)",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "Tokens left in the caller's bucket after this request",
        "schema": {"type": "integer"},
    },
    "Retry-After": {
        "description": "Seconds to wait before asking again",
        "schema": {"type": "integer"},
    },
}

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    HEADER_SCHEME: {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key (tp_live_…, or the bootstrap AUTH_API_KEY); needed on "
        "/api/* when AUTH_ENABLED",
    },
    BEARER_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A session token from POST /api/v1/sessions (AUTH_SESSION_TTL)",
    },
    QUERY_SCHEME: {
        "type": "apiKey",
        "in": "query",
        "name": "api_key",
        "description": "The same key as a query parameter, for EventSource (SSE) clients",
    },
    TOKEN_QUERY_SCHEME: {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "A session token as a query parameter, for EventSource (SSE) clients",
    },
}

TAGS: list[dict[str, str]] = [
    {"name": "ltp", "description": "Last traded prices: the Go BTC LTP Service's contract"},
    {"name": "tokens", "description": "Token market data, velocity, trends and history"},
    {"name": "streams", "description": "Server-Sent Events (Socket.IO is at /socket.io/)"},
    {"name": "ops", "description": "Health, readiness, metrics and sources"},
    {"name": "access", "description": "Session tokens and, for admins, API keys and IP blocks"},
]

SSE_EXAMPLE = (
    "event: token_update\nid: 1\n"
    'data: {"type":"snapshot","id":"bitcoin","seq":1,"ts":1718000000000,"data":{}}\n\n'
)


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _add_model(components: dict[str, Any], model: type[BaseModel]) -> None:
    """Put ``model`` (and the models it uses) into ``components.schemas`` if missing."""
    schemas = components.setdefault("schemas", {})
    schema = model.model_json_schema(ref_template=SCHEMA_REF)
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault(model.__name__, schema)


def _error_entry(status: int, path: str) -> dict[str, Any]:
    """A ``responses`` entry for an error the edge or the validator answers on ``path``."""
    entry = documented_error(status, flat=uses_flat_errors(path))
    model: type[BaseModel] = entry.pop("model")
    entry["content"]["application/json"]["schema"] = {
        "$ref": SCHEMA_REF.format(model=model.__name__)
    }
    return entry


def _complete_operation(
    path: str, method: str, operation: dict[str, Any], *, auth_enabled: bool
) -> None:
    operation["operationId"] = OPERATION_IDS.get((method, path), operation.get("operationId"))
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    is_stream = path in STREAM_ERRORS
    if is_stream:
        responses["200"] = {
            "description": "A Server-Sent Events stream: a snapshot per key, then deltas; "
            "a comment heartbeat every SSE_HEARTBEAT",
            "content": {
                "text/event-stream": {"schema": {"type": "string"}, "example": SSE_EXAMPLE}
            },
        }
        for status in STREAM_ERRORS[path]:
            responses.setdefault(str(status), _error_entry(status, path))
    if operation.get("parameters"):
        responses.setdefault("400", _error_entry(400, path))
    on_api = path.startswith(API_PREFIX)
    if on_api:
        for status in (401, 403, 429):
            responses.setdefault(str(status), _error_entry(status, path))
        schemes: list[dict[str, list[str]]] = [{HEADER_SCHEME: []}, {BEARER_SCHEME: []}]
        if is_stream:
            schemes += [{QUERY_SCHEME: []}, {TOKEN_QUERY_SCHEME: []}]
        if not auth_enabled or path in NO_KEY_PATHS:
            schemes.append({})  # this instance answers without a key
        operation["security"] = schemes
    for code, response in responses.items():
        headers = response.setdefault("headers", {})
        headers["X-Request-ID"] = _header("X-Request-ID")
        if on_api:
            headers["X-RateLimit-Limit"] = _header("X-RateLimit-Limit")
            headers["X-RateLimit-Remaining"] = _header("X-RateLimit-Remaining")
        if code in {"429", "503"}:
            headers["Retry-After"] = _header("Retry-After")


def complete_document(document: dict[str, Any], *, auth_enabled: bool) -> dict[str, Any]:
    """State in ``document`` (FastAPI's) what the edge and the error handlers answer."""
    components = document.setdefault("components", {})
    for model in (ErrorResponse, FlatError):
        _add_model(components, model)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.get("schemas", {}).pop(unused, None)
    components["headers"] = HEADERS
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            _complete_operation(path, method, operation, auth_enabled=auth_enabled)
    return document


docs_router = APIRouter(include_in_schema=False)


@docs_router.get("/swagger")
@docs_router.get("/swagger/")
@docs_router.get("/swagger/index.html")
async def swagger(request: Request) -> RedirectResponse:
    """The Go service's docs path: the docs are at /docs."""
    return RedirectResponse(f"{request.scope.get('root_path', '')}/docs", status_code=302)


def install_openapi(app: FastAPI, *, auth_enabled: bool) -> None:
    """Serve the completed document at ``app.openapi_url``; ``/swagger/`` redirects to /docs."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=TAGS,
            )
            app.openapi_schema = complete_document(document, auth_enabled=auth_enabled)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(docs_router)
