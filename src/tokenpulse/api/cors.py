"""CORS, once, for every HTTP route: the edge's fast routes, the FastAPI routes, SSE and
Socket.IO long-polling (SPEC §8.5).

``CORS_ORIGINS`` lists the origins a browser page may call from; ``*`` (allowed only with auth
on, see settings) allows any. A preflight (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method``) is answered here, before auth and the rate limiter, so it
never needs a key. Responses to an allowed origin carry ``Access-Control-Allow-Origin`` and the
headers a client may read; a disallowed origin gets no CORS headers, which the browser enforces.
No cookies are used, so credentials are never allowed.
"""

from __future__ import annotations

from collections.abc import Iterable

ALLOW_METHODS = b"GET, POST, OPTIONS"
ALLOW_HEADERS = (b"x-api-key", b"x-request-id", b"content-type", b"last-event-id")
EXPOSE_HEADERS = b"X-Request-ID, X-RateLimit-Limit, X-RateLimit-Remaining, Retry-After"
MAX_AGE = b"600"
Headers = list[tuple[bytes, bytes]]


class CorsPolicy:
    """Which origins may call, and the headers that say so."""

    def __init__(self, origins: Iterable[str]) -> None:
        listed = [origin.strip().rstrip("/") for origin in origins if origin.strip()]
        self.any_origin = "*" in listed
        self.origins = frozenset(origin.encode() for origin in listed if origin != "*")

    def allows(self, origin: bytes) -> bool:
        """Whether a page served from ``origin`` may read our answers."""
        return self.any_origin or origin in self.origins

    def response_headers(self, origin: bytes) -> Headers:
        """Headers for a response to a request from ``origin`` (none when not allowed)."""
        if self.any_origin:
            return [
                (b"access-control-allow-origin", b"*"),
                (b"access-control-expose-headers", EXPOSE_HEADERS),
            ]
        if origin in self.origins:
            return [
                (b"access-control-allow-origin", origin),
                (b"access-control-expose-headers", EXPOSE_HEADERS),
                (b"vary", b"Origin"),
            ]
        return [(b"vary", b"Origin")]

    def preflight(self, origin: bytes, method: bytes, requested: bytes | None) -> Headers | None:
        """Headers approving a preflight, or None when the origin, method or a requested
        header is not allowed."""
        if not self.allows(origin) or method.upper() not in (b"GET", b"POST", b"OPTIONS"):
            return None
        if requested:
            names = [name.strip().lower() for name in requested.split(b",") if name.strip()]
            if any(name not in ALLOW_HEADERS for name in names):
                return None
        return [
            (b"access-control-allow-origin", b"*" if self.any_origin else origin),
            (b"access-control-allow-methods", ALLOW_METHODS),
            (b"access-control-allow-headers", b", ".join(ALLOW_HEADERS)),
            (b"access-control-max-age", MAX_AGE),
            (b"vary", b"Origin"),
        ]


def without_cors(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """``headers`` minus any ``Access-Control-*`` an inner app (Engine.IO) set itself: the
    edge's are the only ones, so a browser never sees two."""
    return [(name, value) for name, value in headers if not name.lower().startswith(b"access-")]
