"""The one exception tree of tokenpulse, mapped to HTTP in one place (``api/errors.py``).

    TokenpulseError                      500 INTERNAL_ERROR
    ├── InvalidParameter                 400 INVALID_PARAMETER
    │   └── UnsupportedPair              400 UNSUPPORTED_PAIR
    ├── TokenNotFound                    404 TOKEN_NOT_FOUND
    ├── AmbiguousToken                   409 AMBIGUOUS_TOKEN
    ├── Unauthorized                     401 UNAUTHORIZED
    ├── Forbidden                        403 FORBIDDEN
    ├── RateLimited(retry_after)         429 RATE_LIMIT_EXCEEDED
    ├── StaleData(retry_after)           503 STALE_DATA
    ├── UpstreamError                    502 PRICE_FETCH_ERROR   (a provider failed)
    │   └── ProviderRejected             502 PRICE_FETCH_ERROR   (bad key, plan: no retry)
    ├── AllPricesFailed                  503 ALL_PRICES_FAILED
    ├── StoreError                       500 CACHE_ERROR         (cache or history store failed)
    └── EncodingError                    500 ENCODING_ERROR

Every error carries a stable ``code`` and an HTTP ``status``; messages are written for the
client and never contain secrets, SQL or stack traces.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TokenpulseError(Exception):
    """Root of every error tokenpulse raises on purpose."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    status: ClassVar[int] = 500
    remediation: ClassVar[str | None] = None

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


class InvalidParameter(TokenpulseError):
    """A request parameter is malformed; ``details['parameter']`` names it."""

    code = "INVALID_PARAMETER"
    status = 400
    remediation = "Fix the named parameter; see /docs for the accepted values."

    def __init__(
        self, message: str, *, parameter: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        merged = dict(details or {})
        if parameter is not None:
            merged.setdefault("parameter", parameter)
        super().__init__(message, details=merged)
        self.parameter = parameter


class UnsupportedPair(InvalidParameter):
    """A well-formed pair that this instance does not serve."""

    code = "UNSUPPORTED_PAIR"
    remediation = "GET /api/v1/pairs lists the supported pairs."


class TokenNotFound(TokenpulseError):
    code = "TOKEN_NOT_FOUND"
    status = 404


class AmbiguousToken(TokenpulseError):
    code = "AMBIGUOUS_TOKEN"
    status = 409


class Unauthorized(TokenpulseError):
    code = "UNAUTHORIZED"
    status = 401
    remediation = "Send a valid API key in the X-API-Key header."


class Forbidden(TokenpulseError):
    code = "FORBIDDEN"
    status = 403


class RateLimited(TokenpulseError):
    """The caller's token bucket is empty; retry after ``retry_after`` seconds."""

    code = "RATE_LIMIT_EXCEEDED"
    status = 429
    remediation = "Wait for Retry-After seconds, or use an API key with a higher tier."

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class StaleData(TokenpulseError):
    """The freshest value is older than the caller's ``max_age_ms``."""

    code = "STALE_DATA"
    status = 503

    def __init__(
        self, message: str, *, retry_after: float, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class UpstreamError(TokenpulseError):
    """A provider could not be reached or answered with an error."""

    code = "PRICE_FETCH_ERROR"
    status = 502


class ProviderRejected(UpstreamError):
    """The provider refused us (bad key, plan not authorised): retrying will not help."""


class AllPricesFailed(TokenpulseError):
    code = "ALL_PRICES_FAILED"
    status = 503


class StoreError(TokenpulseError):
    code = "CACHE_ERROR"
    status = 500


class EncodingError(TokenpulseError):
    code = "ENCODING_ERROR"
    status = 500


class ParseError(ValueError):
    """A provider frame that does not have the shape we expect.

    Not a ``TokenpulseError``: it never reaches a client. ``kind`` groups errors for the
    parse-error metric and for logging one sample per kind.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
