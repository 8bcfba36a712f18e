"""The value types of :class:`~tokenpulse.settings.Settings` and how their problems read.

Ranges and choices are pydantic's own constraints (``Field(ge=…, le=…)``, ``Literal[…]``);
what is ours is the text: :func:`describe_problems` turns each pydantic error into one line
``KEY='value': reason`` that names the valid range or choices, the way ``tokenpulse config
check`` prints them. Durations are written with a unit (``30s``) and held in seconds.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

import annotated_types
from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo
from pydantic.fields import FieldInfo

from tokenpulse._pair_lists import check_listed, offline_pair_list, registry_of
from tokenpulse.domain.durations import parse_duration
from tokenpulse.domain.errors import InvalidParameter
from tokenpulse.domain.pairs import parse_quote_equivalents, split_pair

KNOWN_SOURCES = ("kraken", "coinbase", "binance", "coinmarketcap", "coingecko", "replay")
SECRET_FIELDS = frozenset(
    {"auth_api_key", "auth_key_pepper", "redis_password", "cmc_api_key", "coingecko_api_key"}
)
URL_FIELDS_WITH_CREDENTIALS = frozenset({"redis_url", "database_url"})
_RANGE = "valid_range"  # json_schema_extra key of a duration: its range as written
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")  # one label of a DNS host name
ENVIRONMENTS = ("development", "testing", "staging", "production")


def parse_duration_value(value: object) -> float:
    """Seconds in a duration written with a unit; a bare number is refused (which unit?)."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("missing unit: write a duration such as 30s")
    return parse_duration(value)


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _log_level(value: object) -> object:
    """Lower-case; the Go service's ``warn`` (any case) is our ``warning``."""
    lowered = _lower(value)
    return "warning" if lowered == "warn" else lowered


def split_list(value: object) -> list[str]:
    """A comma-separated string (or a YAML list) as a list of non-empty items."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list | tuple):
        return [str(item).strip() for item in value if str(item).strip()]
    raise ValueError("must be a comma-separated list")


Seconds = Annotated[float, BeforeValidator(parse_duration_value)]
StrList = Annotated[list[str], BeforeValidator(split_list)]
LogLevel = Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_log_level)]
LogFormat = Annotated[Literal["json", "text"], BeforeValidator(_lower)]
Role = Annotated[Literal["all", "api", "ingest"], BeforeValidator(_lower)]
CacheBackend = Annotated[Literal["memory", "redis"], BeforeValidator(_lower)]
HttpServer = Annotated[Literal["granian", "uvicorn"], BeforeValidator(_lower)]


def duration(default: str, minimum: str, maximum: str) -> Any:
    """A :data:`Seconds` field's default and pydantic range, bounds written with units."""
    return Field(
        default,
        validate_default=True,
        ge=parse_duration(minimum),
        le=parse_duration(maximum),
        json_schema_extra={_RANGE: f"{minimum}..{maximum}"},
    )


def is_duration(info: FieldInfo) -> bool:
    """Whether a settings field holds seconds written as a duration."""
    return isinstance(info.json_schema_extra, dict) and _RANGE in info.json_schema_extra


# --------------------------------------------------------------------------- checks


def check_sources(values: list[str]) -> list[str]:
    lowered = [value.lower() for value in values]
    unknown = [value for value in lowered if value not in KNOWN_SOURCES]
    if unknown:
        raise ValueError(
            f"unknown source {', '.join(unknown)}; valid sources: {', '.join(KNOWN_SOURCES)}"
        )
    if not lowered:
        raise ValueError(f"needs at least one source of: {', '.join(KNOWN_SOURCES)}")
    return list(dict.fromkeys(lowered))


def check_pairs(values: list[str], info: ValidationInfo) -> list[str]:
    """Canonical pairs, each listed by an enabled venue (its cached or bundled list)."""
    enabled = info.data.get("sources") or ["kraken"]
    venues = [v for v in enabled if v in ("kraken", "coinbase", "binance")] or ["kraken"]
    cache_dir = info.data.get("pair_lists_dir", "data/pairs")
    lists = {v: offline_pair_list(v, cache_dir) for v in venues}
    # a venue with no list at all (Binance, offline, never cached) may list any pair: the
    # start decides, with its fetched list
    vouching = {v: pl for v, pl in lists.items() if pl.origin != "none"}
    if len(vouching) < len(lists):
        vouching = {}
    registry = registry_of({v: pl for v, pl in lists.items() if pl.origin != "none"})
    listed = frozenset().union(*(pl.pairs for pl in lists.values()))
    equivalents = parse_quote_equivalents(info.data.get("quote_equivalents") or [])
    canonical: list[str] = []
    problems: list[str] = []
    for value in values:
        try:
            pair = registry.resolve(value)
        except InvalidParameter:
            pair = _safe_split(value)
            if pair is None:
                problems.append(f"{value} is not a pair (BASE/QUOTE such as BTC/USD)")
                continue
        unlisted = check_listed([pair], vouching, equivalents=equivalents) if vouching else []
        if unlisted:
            candidates = registry.suggestions(pair, limit=len(registry))
            near = ", ".join([str(p) for p in candidates if p in listed][:8])
            hint = f" (known pairs with {pair.base} or {pair.quote}: {near})" if near else ""
            problems.append(unlisted[0].replace(str(pair), value, 1) + hint)
            continue
        canonical.append(str(pair))
    if problems:
        raise ValueError(
            "; ".join(problems)
            + f"; {len(listed)} pairs are listed, `tokenpulse pairs` lists them"
            + " (`tokenpulse pairs --refresh` fetches the venues' current lists)"
        )
    if not canonical:
        raise ValueError("needs at least one pair, e.g. BTC/USD")
    return list(dict.fromkeys(canonical))


def _safe_split(value: str) -> Any:
    try:
        return split_pair(value)
    except InvalidParameter:
        return None


def check_host(value: str) -> str:
    """A listen address: an IP address, or a DNS host name (RFC 1123 labels)."""
    text = value.strip()
    try:
        ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        return text
    labels = text.rstrip(".").split(".")
    looks_numeric = all(label.isdigit() for label in labels)
    if not text or looks_numeric or len(text) > 253 or not all(map(_HOST_LABEL.fullmatch, labels)):
        raise ValueError("must be an IP address (127.0.0.1, 0.0.0.0, ::) or a host name")
    return text


def check_url(value: str, schemes: tuple[str, ...], example: str) -> str:
    """A URL with one of ``schemes`` and a host (and, if given, a valid port)."""
    spelled = " or ".join(f"{scheme}://" for scheme in schemes)
    reason = f"must be a {spelled} URL with a host, e.g. {example}"
    try:
        parts = urlsplit(value.strip())
        port = parts.port  # raises on a port that is not a number from 0 to 65535
    except ValueError:
        raise ValueError(reason) from None
    if parts.scheme.lower() not in schemes or not parts.hostname or port == 0:
        raise ValueError(reason)
    return value.strip()


def check_address(value: str) -> str:
    """The Go service's ``REDIS_ADDR``: ``host:port`` (empty: not used)."""
    if not value:
        return value
    host, _, port = value.rpartition(":")
    try:
        check_host(host.strip("[]"))
        valid = port.isdigit() and 1 <= int(port) <= 65535
    except ValueError:
        valid = False
    if not valid:
        raise ValueError("must be host:port, e.g. localhost:6379")
    return value


def check_ip_networks(values: list[str]) -> list[str]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR network") from None
    return values


# --------------------------------------------------------------------------- problems


def describe_problems(
    exc: ValidationError, merged: Mapping[str, Any], fields: Mapping[str, FieldInfo]
) -> list[str]:
    """One line per problem: ``KEY='value': reason`` (secrets masked)."""
    lines: list[str] = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = error.get("loc") or ()
        if not loc:  # a cross-field check already names its keys
            lines.extend(part.strip() for part in message.split("; "))
            continue
        key = str(loc[0])
        if error["type"] == "extra_forbidden":
            lines.append(f"{key.upper()}: unknown setting")
            continue
        info = fields.get(key)
        reason = message if info is None else _reason(error["type"], message, info)
        value = merged.get(key, error.get("input"))
        shown = "***" if key in SECRET_FIELDS else value
        lines.append(f"{key.upper()}={shown!r}: {reason}")
    return lines


def _reason(kind: str, message: str, info: FieldInfo) -> str:
    """The reader's reason for a pydantic error of type ``kind`` on the field ``info``."""
    if kind == "value_error" and not is_duration(info):
        return message  # our own check said it
    if kind == "literal_error":
        return f"must be one of: {', '.join(str(c) for c in get_args(info.annotation))}"
    if kind.startswith("bool_"):
        return "must be true or false"
    if is_duration(info):
        assert isinstance(info.json_schema_extra, dict)
        spelled = str(info.json_schema_extra[_RANGE])
        low, high = spelled.split("..")
        if kind == "greater_than_equal":
            return f"below the minimum of {low} (valid range {spelled})"
        if kind == "less_than_equal":
            return f"above the maximum of {high} (valid range {spelled})"
        return f"{message} (valid range {spelled})"
    low_bound, high_bound = _bounds(info)
    if low_bound is None or high_bound is None:
        return message
    if int in (info.annotation, *get_args(info.annotation)):
        return f"must be a whole number from {low_bound} to {high_bound}"
    return f"must be a number from {low_bound:g} to {high_bound:g}"


def _bounds(info: FieldInfo) -> tuple[Any, Any]:
    low = next((m.ge for m in info.metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in info.metadata if isinstance(m, annotated_types.Le)), None)
    return low, high


def mask(name: str, value: Any) -> Any:
    """A setting's value fit to print: secrets masked, URL passwords hidden."""
    if name in SECRET_FIELDS:
        return "***" if value else ""
    if name in URL_FIELDS_WITH_CREDENTIALS and isinstance(value, str):
        parts = urlsplit(value)
        if parts.password:
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
            user = parts.username or ""
            return urlunsplit((parts.scheme, f"{user}:***@{host}{port}", parts.path, "", ""))
    return value
