"""The two error shapes (SPEC §6): the standard model, and the Go service's flat one kept by the
LTP paths. ``api/errors.py`` writes them; these models document them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class FlatError(BaseModel):
    """The Go "BTC LTP Service" error shape, kept by ``/api/v1/ltp*`` (additive fields allowed)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "error": "UNSUPPORTED_PAIR",
                "message": "no supported pair requested; supported pairs: BTC/USD, ETH/USD",
            }
        }
    )

    error: str = Field(description="The error code, e.g. UNSUPPORTED_PAIR or RATE_LIMIT_EXCEEDED")
    message: str
    details: dict[str, Any] | None = Field(
        None, description="Context: the parameter at fault, the rejected pairs"
    )


class ErrorDetail(BaseModel):
    """What went wrong, and what to do about it."""

    code: str = Field(description="INVALID_PARAMETER, TOKEN_NOT_FOUND, STALE_DATA, …")
    message: str
    details: dict[str, Any] = Field(
        default_factory=dict, description="Context: the parameter at fault, the token id"
    )
    remediation: str | None = Field(None, description="What the caller can do about it")


class ErrorResponse(BaseModel):
    """The standard error model of every endpoint but the LTP ones."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "status": "error",
                "error": {
                    "code": "TOKEN_NOT_FOUND",
                    "message": "unknown token 'nosuchcoin'",
                    "details": {"token_id": "nosuchcoin"},
                    "remediation": None,
                },
                "timestamp": "2026-02-14T10:21:07.123Z",
                "request_id": "65d2e083c2b0000000000001",
            }
        }
    )

    status: Literal["error"] = "error"
    error: ErrorDetail
    timestamp: str
    request_id: str | None = Field(description="The X-Request-ID of this request")


def standard_example(
    code: str, message: str, details: dict[str, Any] | None = None, remediation: str | None = None
) -> dict[str, Any]:
    """An example body in the standard error shape."""
    return {
        "status": "error",
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "remediation": remediation,
        },
        "timestamp": "2026-02-14T10:21:07.123Z",
        "request_id": "65d2e083c2b0000000000001",
    }


def flat_example(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """An example body in the Go service's flat error shape."""
    return {"error": code, "message": message, **extra}


#: The code, an example message and a description of each error status the API answers.
ERROR_CASES: dict[int, tuple[str, str, str]] = {
    400: (
        "INVALID_PARAMETER",
        "invalid value for parameter 'limit': Input should be less than or equal to 500",
        "A malformed parameter (INVALID_PARAMETER), named in the error's details.parameter",
    ),
    401: (
        "UNAUTHORIZED",
        "missing API key: send it in the X-API-Key header",
        "Missing or invalid API key (when AUTH_ENABLED)",
    ),
    403: (
        "FORBIDDEN",
        "this key's role 'reader' may not call /api/v1/admin/keys: it needs role 'admin'",
        "FORBIDDEN: a valid key whose role (or allowed IPs) does not allow this call",
    ),
    404: (
        "TOKEN_NOT_FOUND",
        "unknown token 'nosuchcoin'",
        "TOKEN_NOT_FOUND: no token has this id, CMC id, CoinGecko id or symbol",
    ),
    409: (
        "AMBIGUOUS_TOKEN",
        "symbol 'HOT' names several tokens",
        "AMBIGUOUS_TOKEN: the symbol names several tokens; details list the candidates",
    ),
    413: (
        "PAYLOAD_TOO_LARGE",
        "request body exceeds 65536 bytes",
        "The request body is too large",
    ),
    429: (
        "RATE_LIMIT_EXCEEDED",
        "rate limit exceeded; retry in 2s",
        "RATE_LIMIT_EXCEEDED: the caller's token bucket is empty; see Retry-After",
    ),
    500: (
        "CACHE_ERROR",
        "database (postgresql): connection refused",
        "CACHE_ERROR: the history store failed",
    ),
    503: (
        "STALE_DATA",
        "the data of bitcoin is older than max_age_ms=1000",
        "STALE_DATA: the data is older than the max_age_ms the caller asked for; see Retry-After",
    ),
}


def documented_error(status: int, *, flat: bool = False, description: str = "") -> dict[str, Any]:
    """The OpenAPI ``responses`` entry of an error ``status``, with its model and an example."""
    code, message, default_description = ERROR_CASES[status]
    example = flat_example(code, message) if flat else standard_example(code, message)
    return {
        "description": description or default_description,
        "model": FlatError if flat else ErrorResponse,
        "content": {"application/json": {"example": example}},
    }


def store_unavailable_error() -> dict[str, Any]:
    """The OpenAPI entry of 503 STORE_UNAVAILABLE (a store the answer needs is down)."""
    return {
        "description": "STORE_UNAVAILABLE: the history store is unreachable; see Retry-After "
        "(the answer names no driver or host)",
        "model": ErrorResponse,
        "headers": {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
        },
        "content": {
            "application/json": {
                "example": standard_example(
                    "STORE_UNAVAILABLE", "the history store is unavailable; try again shortly"
                )
            }
        },
    }


def documented_errors(*statuses: int, flat: bool = False) -> dict[int | str, dict[str, Any]]:
    """``responses`` entries for several error statuses."""
    return {status: documented_error(status, flat=flat) for status in statuses}
