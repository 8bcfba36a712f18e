"""The one exception tree of tokenpulse; ``api/errors.py`` alone maps it to HTTP.

    TokenpulseError                      INTERNAL_ERROR
    ├── InvalidParameter                 INVALID_PARAMETER
    │   └── UnsupportedPair              UNSUPPORTED_PAIR
    ├── TokenNotFound                    TOKEN_NOT_FOUND
    ├── AmbiguousToken                   AMBIGUOUS_TOKEN
    ├── Unauthorized                     UNAUTHORIZED
    ├── Forbidden                        FORBIDDEN               (a valid key, not allowed)
    ├── RateLimited(retry_after)         RATE_LIMIT_EXCEEDED     (a caller's bucket is empty)
    ├── LimitExceeded                    LIMIT_EXCEEDED          (a streaming limit)
    ├── StaleData(retry_after)           STALE_DATA
    ├── UpstreamError                    PRICE_FETCH_ERROR       (a provider failed)
    │   ├── ProviderRejected             PRICE_FETCH_ERROR       (bad key, plan: no retry)
    │   ├── ProviderRateLimited          PRICE_FETCH_ERROR       (the provider said slow down)
    │   ├── BudgetExhausted              PRICE_FETCH_ERROR       (CMC credits spent this month)
    │   └── UnknownCoin                  PRICE_FETCH_ERROR       (CoinGecko has no such coin)
    └── StoreError                       CACHE_ERROR             (cache or history store failed)
        └── StoreUnavailable(retry_after) STORE_UNAVAILABLE      (what a client sees of it)

    ParseError (a ValueError)            a malformed provider frame; never reaches a client
    ConfigError                          invalid settings: the CLI prints them and exits 2
    └── StoreModeConflict                live start on a replay store, or the reverse

Every error carries a stable ``code`` and, where one helps, a ``remediation``; messages are
written for the client and never contain secrets, SQL or stack traces. No HTTP status lives
here: the domain does not know it is served over HTTP.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tokenpulse.domain.time import from_epoch, isoformat_z


class TokenpulseError(Exception):
    """Root of every error tokenpulse raises on purpose."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    remediation: ClassVar[str | None] = None

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


class InvalidParameter(TokenpulseError):
    """A request parameter is malformed; ``details['parameter']`` names it."""

    code = "INVALID_PARAMETER"
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
    """No token answers to the id, symbol or provider id asked for."""

    code = "TOKEN_NOT_FOUND"


class AmbiguousToken(TokenpulseError):
    """A symbol shared by several tokens; ``details`` lists the candidates."""

    code = "AMBIGUOUS_TOKEN"


class Unauthorized(TokenpulseError):
    """No API key, or not the right one."""

    code = "UNAUTHORIZED"
    remediation = "Send a valid API key in the X-API-Key header."


class Forbidden(TokenpulseError):
    """A valid key whose role (or tier, or allowed origins/IPs) does not allow this call."""

    code = "FORBIDDEN"
    remediation = "Use a key with the role named in the message, or ask an admin."


class RateLimited(TokenpulseError):
    """The caller's token bucket is empty; retry after ``retry_after`` seconds."""

    code = "RATE_LIMIT_EXCEEDED"
    remediation = "Wait for Retry-After seconds, or use an API key with a higher tier."

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class LimitExceeded(TokenpulseError):
    """A per-connection or per-instance streaming limit was reached."""

    code = "LIMIT_EXCEEDED"


class StaleData(TokenpulseError):
    """The freshest value is older than the caller's ``max_age_ms``."""

    code = "STALE_DATA"

    def __init__(
        self, message: str, *, retry_after: float, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class UpstreamError(TokenpulseError):
    """A provider could not be reached or answered with an error."""

    code = "PRICE_FETCH_ERROR"


class ProviderRejected(UpstreamError):
    """The provider refused us (bad key, plan not authorised): retrying will not help."""


class ProviderRateLimited(UpstreamError):
    """The provider told us to slow down; ask again after ``retry_after`` seconds."""

    def __init__(
        self, message: str, *, retry_after: float, source: str, error_code: int | None = None
    ) -> None:
        details = {"source": source, "retry_after": retry_after, "error_code": error_code}
        super().__init__(message, details=details)
        self.retry_after = retry_after
        self.source = source
        self.error_code = error_code


class BudgetExhausted(UpstreamError):
    """This month's CMC credits are spent; no call until ``resumes_at`` (unix seconds)."""

    def __init__(self, message: str, *, resumes_at: float) -> None:
        super().__init__(message, details={"resumes_at": isoformat_z(from_epoch(resumes_at))})
        self.resumes_at = resumes_at


class UnknownCoin(UpstreamError):
    """CoinGecko has no coin with this id (HTTP 404)."""


class StoreError(TokenpulseError):
    """The cache or the history store failed."""

    code = "CACHE_ERROR"


class StoreUnavailable(StoreError):
    """A store an answer needs is unreachable; retry after ``retry_after`` seconds.

    The message is what a client sees: it names no driver, host or statement (the
    :class:`StoreError` it stands for is logged instead).
    """

    code = "STORE_UNAVAILABLE"
    remediation = "Retry after Retry-After seconds; GET /ready shows which store is down."

    def __init__(
        self, message: str, *, retry_after: float, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class ParseError(ValueError):
    """A provider frame that does not have the shape we expect.

    Not a ``TokenpulseError``: it never reaches a client. ``kind`` groups errors for the
    parse-error metric and for logging one sample per kind.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class ConfigError(Exception):
    """Invalid configuration: ``problems`` holds one human-readable line per problem.

    Not a ``TokenpulseError``: it stops the process before anything is served.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class StoreModeConflict(ConfigError):
    """The history store holds the other kind of data (replay vs live): start refused."""
