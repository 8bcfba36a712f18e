"""Errors to HTTP, in one place.

Two shapes (SPEC §6): the standard error model
``{"status":"error","error":{code,message,details,remediation},"timestamp","request_id"}``,
and the Go "BTC LTP Service" flat shape ``{"error":"<CODE>","message":"…"}`` kept by the LTP
paths (and their 401/429 answers) so that service's clients switch without change.
The exception tree (``domain/errors.py``) carries no HTTP status: :data:`STATUSES` maps its
classes to statuses here, and :func:`status_for` is what every responder asks.
No stack trace, SQL or secret ever reaches a response.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tokenpulse.domain.errors import (
    AmbiguousToken,
    Forbidden,
    InvalidParameter,
    LimitExceeded,
    RateLimited,
    StaleData,
    StoreError,
    StoreUnavailable,
    TokenNotFound,
    TokenpulseError,
    Unauthorized,
    UpstreamError,
)
from tokenpulse.domain.time import isoformat_z, utcnow

log = structlog.get_logger(__name__)

LTP_PATH_PREFIX = "/api/v1/ltp"
JSON = b"application/json"

#: The HTTP status of each error class; a class not listed takes its nearest listed base's.
STATUSES: dict[type[TokenpulseError], int] = {
    TokenpulseError: 500,
    InvalidParameter: 400,  # and UnsupportedPair
    Unauthorized: 401,
    Forbidden: 403,
    TokenNotFound: 404,
    AmbiguousToken: 409,
    RateLimited: 429,
    LimitExceeded: 429,
    UpstreamError: 502,  # and every provider failure below it
    StaleData: 503,
    StoreError: 500,
    StoreUnavailable: 503,
}
#: Seconds a client is told to wait when a store is down (Retry-After).
STORE_RETRY_AFTER = 5.0


def status_for(exc: TokenpulseError) -> int:
    """The HTTP status of ``exc``: the entry of the first class in its MRO that has one."""
    for cls in type(exc).__mro__:
        status = STATUSES.get(cls)
        if status is not None:
            return status
    return 500


def uses_flat_errors(path: str) -> bool:
    """The LTP paths answer errors in the Go service's flat shape."""
    return path == LTP_PATH_PREFIX or path.startswith(LTP_PATH_PREFIX + "/")


def flat_error_body(code: str, message: str, **extra: Any) -> bytes:
    return orjson.dumps({"error": code, "message": message, **extra})


def standard_error_body(
    code: str,
    message: str,
    *,
    request_id: str | None,
    details: dict[str, Any] | None = None,
    remediation: str | None = None,
) -> bytes:
    return orjson.dumps(
        {
            "status": "error",
            "error": {
                "code": code,
                "message": message,
                "details": details or {},
                "remediation": remediation,
            },
            "timestamp": isoformat_z(utcnow()),
            "request_id": request_id,
        }
    )


def error_body(path: str, exc: TokenpulseError, request_id: str | None) -> bytes:
    """The body for ``exc`` on ``path``, in the shape that path uses."""
    if uses_flat_errors(path):
        extra: dict[str, Any] = {}
        if exc.details:
            extra["details"] = exc.details
        return flat_error_body(exc.code, exc.message, **extra)
    return standard_error_body(
        exc.code,
        exc.message,
        request_id=request_id,
        details=exc.details,
        remediation=exc.remediation,
    )


def public_error(exc: TokenpulseError) -> TokenpulseError:
    """What a client may see of ``exc``: a store failure becomes 503 STORE_UNAVAILABLE with
    no driver, host or statement in it (the original is logged)."""
    if not isinstance(exc, StoreError) or isinstance(exc, StoreUnavailable):
        return exc
    log.warning("answering 503: a store failed", error=exc.message)
    store = "history store" if "history" in exc.message else "cache"
    return StoreUnavailable(
        f"the {store} is unavailable; try again shortly", retry_after=STORE_RETRY_AFTER
    )


def error_headers(exc: TokenpulseError) -> list[tuple[bytes, bytes]]:
    """Extra headers an error implies (``Retry-After`` for 429 and the 503s)."""
    if isinstance(exc, RateLimited | StaleData | StoreUnavailable):
        return [(b"retry-after", str(max(1, math.ceil(exc.retry_after))).encode())]
    return []


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    if isinstance(value, bytes):
        return value.decode()
    return str(value) if value is not None else None


def error_response(request: Request, exc: TokenpulseError) -> Response:
    exc = public_error(exc)
    body = error_body(request.url.path, exc, _request_id(request))
    headers = {k.decode(): v.decode() for k, v in error_headers(exc)}
    status = status_for(exc)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _validation_message(errors: Sequence[Any]) -> tuple[str, str | None]:
    first = errors[0] if errors else {}
    loc = [str(part) for part in first.get("loc", ()) if part not in {"query", "path", "body"}]
    parameter = ".".join(loc) or None
    message = str(first.get("msg", "invalid request"))
    if parameter:
        return f"invalid value for parameter {parameter!r}: {message}", parameter
    return message, None


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the error model; unknown exceptions become a bare 500."""

    async def on_tokenpulse_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TokenpulseError)
        return error_response(request, exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        message, parameter = _validation_message(exc.errors())
        details = {"parameter": parameter} if parameter else {}
        body = (
            flat_error_body("INVALID_PARAMETER", message, details=details)
            if uses_flat_errors(request.url.path)
            else standard_error_body(
                "INVALID_PARAMETER",
                message,
                request_id=_request_id(request),
                details=details,
                remediation="Fix the named parameter; see /docs for the accepted values.",
            )
        )
        return Response(body, status_code=400, media_type="application/json")

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        message = {404: "no such endpoint", 405: "method not allowed"}.get(
            exc.status_code, str(exc.detail)
        )
        body = (
            flat_error_body(code, message)
            if uses_flat_errors(request.url.path)
            else standard_error_body(code, message, request_id=_request_id(request))
        )
        return Response(
            body,
            status_code=exc.status_code,
            media_type="application/json",
            headers=dict(exc.headers or {}),
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.error(
            "unhandled error",
            path=request.url.path,
            request_id=_request_id(request),
            exc_info=exc,
        )
        body = (
            flat_error_body("INTERNAL_ERROR", "internal error")
            if uses_flat_errors(request.url.path)
            else standard_error_body(
                "INTERNAL_ERROR", "internal error", request_id=_request_id(request)
            )
        )
        return Response(body, status_code=500, media_type="application/json")

    app.add_exception_handler(TokenpulseError, on_tokenpulse_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
