"""The client's exception tree, one class per thing a caller may want to handle::

TokenpulseError
├── TransportError         the service could not be reached (connect, timeout, reset)
├── StreamError            a stream cannot go on (refused credentials or subscription)
└── APIError               the service answered with an error (status, code, message)
    ├── BadRequest         400 INVALID_PARAMETER, UNSUPPORTED_PAIR
    ├── Unauthorized       401
    ├── Forbidden          403
    ├── NotFound           404 TOKEN_NOT_FOUND
    ├── AmbiguousToken     409 AMBIGUOUS_TOKEN (``candidates``)
    ├── RateLimited        429 (``retry_after`` seconds)
    └── ServerError        5xx
        ├── UpstreamError  502 PRICE_FETCH_ERROR
        └── Unavailable    503 (``retry_after``)
            └── StaleData  503 STALE_DATA: older than the ``max_age_ms`` asked for
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class TokenpulseError(Exception):
    """Root of every error the client raises."""


class TransportError(TokenpulseError):
    """The service could not be reached or did not answer in time."""


class StreamError(TokenpulseError):
    """A stream cannot go on: the service refused the subscription or the credentials."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class APIError(TokenpulseError):
    """The service answered with an error: ``status``, ``code`` (e.g. ``UNSUPPORTED_PAIR``)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        self.headers: Mapping[str, str] = dict(headers or {})
        self.request_id = self.headers.get("x-request-id")

    @property
    def retry_after(self) -> float | None:
        """Seconds the service asked to wait (``Retry-After``), when it said."""
        value = self.headers.get("retry-after")
        try:
            return max(0.0, float(value)) if value is not None else None
        except ValueError:
            return None


class BadRequest(APIError):
    """400: a parameter is malformed or names an unsupported pair."""


class Unauthorized(APIError):
    """401: missing or unknown API key."""


class Forbidden(APIError):
    """403: the key may not call this."""


class NotFound(APIError):
    """404: no such token."""


class AmbiguousToken(APIError):
    """409: a symbol names several tokens; ``candidates`` lists their ids."""

    @property
    def candidates(self) -> list[str]:
        """The token ids the symbol could mean."""
        error = self.body.get("error") if isinstance(self.body, Mapping) else None
        details = error.get("details") if isinstance(error, Mapping) else None
        found = details.get("candidates") if isinstance(details, Mapping) else None
        if not isinstance(found, list):
            return []
        return [str(c.get("id") if isinstance(c, Mapping) else c) for c in found]


class RateLimited(APIError):
    """429: the token bucket is empty; wait ``retry_after`` seconds."""


class ServerError(APIError):
    """5xx."""


class UpstreamError(ServerError):
    """502: the provider call (e.g. a forced refresh) failed."""


class Unavailable(ServerError):
    """503: no value to serve (or a dependency is down); ``retry_after`` when known."""


class StaleData(Unavailable):
    """503 STALE_DATA: the value is older than the ``max_age_ms`` asked for."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: AmbiguousToken,
    429: RateLimited,
    502: UpstreamError,
    503: Unavailable,
}


def error_for(
    status: int, code: str, message: str, body: Any, headers: Mapping[str, str]
) -> APIError:
    """The most specific :class:`APIError` for an answer."""
    if code == "STALE_DATA":
        cls: type[APIError] = StaleData
    else:
        cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    return cls(status, code, message, body, headers)


__all__ = [
    "APIError",
    "AmbiguousToken",
    "BadRequest",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "ServerError",
    "StaleData",
    "StreamError",
    "TokenpulseError",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "UpstreamError",
    "error_for",
]
