"""The Go "BTC LTP Service" YAML layout, read beside ours (SPEC §2, Go service compatibility).

The Go service nests its keys by section under names of its own (``server: {port}``,
``logging: {level}``, ``exchange: {kraken: {websocket_url}}``, ``business: {supported_pairs}``).
Its files are read unchanged: :func:`translate` maps each Go key onto our setting and records
where it came from (``config.yaml (server.port)``), so ``tokenpulse config check`` shows the
provenance. Keys both layouts share (``cache.backend``, ``cache.ttl``, ``rate_limit.*``,
``auth.enabled``, ``auth.api_key``) need no mapping. The Go keys that name behaviour tokenpulse
has fixed (``auth.header_name``, ``auth.unauth_paths``) are accepted only with the values
tokenpulse implements, and refused otherwise: never accepted and ignored.

Sources: the Go service's README and its ``configs/config.yaml``,
``configs/config.production.yaml`` and ``configs/config.demo-precedence.yaml``
(LeonelPerz/btc-ltp-service; copies in ``tests/fixtures/go_reference/``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["GO_KEYS", "translate"]

GO_UNAUTH_PATHS = frozenset({"/health", "/ready", "/metrics", "/swagger/", "/docs"})
KRAKEN_WS_V1 = frozenset({"wss://ws.kraken.com", "wss://ws.kraken.com/"})
KRAKEN_WS_V2 = "wss://ws.kraken.com/v2"
KRAKEN_REST_PATH = "/0/public"


def _kraken_rest_url(value: Any) -> Any:
    """The Go service names the ``/0/public`` prefix in its URL; we add it per request."""
    if isinstance(value, str):
        return value.rstrip("/").removesuffix(KRAKEN_REST_PATH)
    return value


def _kraken_ws_url(value: Any) -> Any:
    """Kraken's public WebSocket v1 endpoint (the Go service's) is served as v2 on that host."""
    if isinstance(value, str) and value.strip() in KRAKEN_WS_V1:
        return KRAKEN_WS_V2
    return value


def _same(value: Any) -> Any:
    return value


_KRAKEN = {
    "rest_url": ("kraken_rest_url", _kraken_rest_url),
    "websocket_url": ("kraken_ws_url", _kraken_ws_url),
    "timeout": ("kraken_timeout", _same),
    "request_timeout": ("kraken_request_timeout", _same),
    "fallback_timeout": ("kraken_fallback_timeout", _same),
    "max_retries": ("kraken_max_retries", _same),
}

# Go key (dotted, as written in its YAML) -> (our setting, conversion of the value)
GO_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "server.port": ("port", _same),
    "server.host": ("host", _same),
    "server.shutdown_timeout": ("shutdown_timeout", _same),
    "cache.redis.addr": ("redis_addr", _same),
    "cache.redis.password": ("redis_password", _same),
    "cache.redis.db": ("redis_db", _same),
    "logging.level": ("log_level", _same),
    "logging.format": ("log_format", _same),
    "business.supported_pairs": ("supported_pairs", _same),
    "business.cache_prefix": ("redis_key_prefix", _same),
    "rate_limiting.enabled": ("rate_limit_enabled", _same),
    "rate_limiting.capacity": ("rate_limit_capacity", _same),
    "rate_limiting.refill_rate": ("rate_limit_refill_rate", _same),
    **{f"exchange.kraken.{key}": target for key, target in _KRAKEN.items()},
    "kraken.websocket_url": _KRAKEN["websocket_url"],
}
_BY_FLAT_KEY = {dotted.replace(".", "_"): (dotted, *target) for dotted, target in GO_KEYS.items()}


def translate(flat: dict[str, Any], path: str, problems: list[str]) -> dict[str, str]:
    """Rename the Go keys of one flattened YAML file in place; their origin labels by setting.

    A setting written both ways in one file is a problem (which one was meant?).
    """
    labels: dict[str, str] = {}
    for key in [key for key in flat if key in _BY_FLAT_KEY]:
        dotted, target, convert = _BY_FLAT_KEY[key]
        value = flat.pop(key)
        if target in flat:
            problems.append(f"{path}: {dotted} and {target} both set {target.upper()}; keep one")
            continue
        flat[target] = convert(value)
        labels[target] = f"{path} ({dotted})"
    _check_fixed(flat, path, problems)
    return labels


def _check_fixed(flat: dict[str, Any], path: str, problems: list[str]) -> None:
    """The Go ``auth`` keys tokenpulse does not make configurable: the same value, or refused."""
    if "auth_header_name" in flat:
        header = flat.pop("auth_header_name")
        if str(header).strip().lower() != "x-api-key":
            problems.append(
                f"{path}: auth.header_name={header!r}: tokenpulse reads the key from "
                "X-API-Key (or ?api_key= on streams) only; remove the key or set X-API-Key"
            )
    if "auth_unauth_paths" in flat:
        paths = flat.pop("auth_unauth_paths")
        given = frozenset(str(item) for item in paths) if isinstance(paths, list) else None
        if given != GO_UNAUTH_PATHS:
            problems.append(
                f"{path}: auth.unauth_paths={paths!r}: tokenpulse leaves exactly "
                f"{', '.join(sorted(GO_UNAUTH_PATHS))} open (the Go default); "
                "remove the key or list exactly those"
            )
