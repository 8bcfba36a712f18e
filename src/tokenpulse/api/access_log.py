"""The access log (SPEC §9): one ``info`` line per HTTP request, like the Go service's
"HTTP request processed", and one at the open and the close of each stream.

Fields: ``request_id``, ``method``, ``route`` (the template, never the raw path), ``status``,
``duration_ms``, ``bytes`` (response body), ``key_id`` when a key authenticated the request
else ``client_ip``, and ``cache`` (``hit``/``miss``/``partial``) where the answer knows it.
``ACCESS_LOG=false`` turns it off; so does a ``LOG_LEVEL`` above ``info``. No key, query
string or header value is ever logged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from tokenpulse.api.clientip import ClientIpResolver
from tokenpulse.observability.logging import HotLogger, hot_logger
from tokenpulse.settings import Settings

REQUEST_EVENT = "HTTP request processed"
STREAM_OPENED = "stream opened"
LOGGER_NAME = "tokenpulse.access"


def access_logged(settings: Settings) -> bool:
    """Whether access lines are written: ACCESS_LOG on and LOG_LEVEL at ``info`` or below.

    Decided once at start-up, so a level that drops the lines also skips building them.
    """
    level = logging.getLevelName(settings.log_level.upper())
    return settings.access_log and isinstance(level, int) and level <= logging.INFO


class AccessLog:
    """Writes the access lines; the edge calls it once per request (twice per stream)."""

    def __init__(self, client_ip: ClientIpResolver, logger: HotLogger | None = None) -> None:
        self.client_ip = client_ip
        self.logger = logger or hot_logger(LOGGER_NAME)

    def _caller(self, scope: Any, forwarded: bytes | None) -> tuple[str, str]:
        principal = scope["state"].get("principal")
        if principal is not None:
            return "key_id", principal.key_id
        client = scope.get("client")
        return "client_ip", self.client_ip.resolve(client[0] if client else None, forwarded)

    def request(
        self,
        scope: Any,
        route: str,
        status: int,
        started: float,
        size: int,
        forwarded: bytes | None,
        stream: str | None = None,
    ) -> None:
        """The line for a finished request (for a stream: its close)."""
        state = scope["state"]
        who, caller = self._caller(scope, forwarded)
        fields: dict[str, Any] = {
            "request_id": state["request_id"].decode(),
            "method": scope.get("method", "GET"),
            "route": route,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "bytes": size,
            who: caller,
        }
        cache = state.get("cache")
        if cache is not None:
            fields["cache"] = cache
        if stream is not None:
            fields["stream"] = stream
        self.logger.info(REQUEST_EVENT, **fields)

    def stream_opened(self, scope: Any, route: str, stream: str, forwarded: bytes | None) -> None:
        """The line when a stream (SSE response or WebSocket) starts."""
        who, caller = self._caller(scope, forwarded)
        self.logger.info(
            STREAM_OPENED,
            request_id=scope["state"]["request_id"].decode(),
            route=route,
            stream=stream,
            **{who: caller},
        )
