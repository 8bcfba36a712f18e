"""Typed settings: defaults in code < config.yaml < config.{ENVIRONMENT}.yaml < environment.

One :class:`Settings` object, validated at start. Nothing else in tokenpulse reads
``os.environ``. YAML files use the same keys as the environment variables, lower-case, and may
nest them by section (``cache: {ttl: 30s}`` is ``CACHE_TTL``). Invalid configuration raises
:class:`ConfigError`, which carries one clear line per problem; the CLI exits with code 2.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import yaml
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tokenpulse.data import kraken_pair_registry
from tokenpulse.domain.durations import format_duration, parse_duration
from tokenpulse.domain.errors import InvalidParameter
from tokenpulse.domain.pairs import split_pair

KNOWN_SOURCES = ("kraken", "coinbase", "binance", "coinmarketcap", "coingecko", "replay")
SECRET_FIELDS = frozenset({"auth_api_key", "redis_password", "cmc_api_key", "coingecko_api_key"})
URL_FIELDS_WITH_CREDENTIALS = frozenset({"redis_url", "database_url"})

DEFAULT_PAIRS = ("BTC/USD", "ETH/USD", "LTC/USD", "XRP/USD")


class ConfigError(Exception):
    """Invalid configuration: ``problems`` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --------------------------------------------------------------------------- value types


def _duration(minimum: str, maximum: str) -> Any:
    low, high = parse_duration(minimum), parse_duration(maximum)

    def parse(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, str):
            raise ValueError(f"missing unit: write a duration such as 30s ({minimum}..{maximum})")
        seconds = parse_duration(value)
        if seconds < low:
            raise ValueError(f"below the minimum of {minimum} (valid range {minimum}..{maximum})")
        if seconds > high:
            raise ValueError(f"above the maximum of {maximum} (valid range {minimum}..{maximum})")
        return seconds

    return Annotated[float, BeforeValidator(parse)]


def _int_range(minimum: int, maximum: int) -> Any:
    def parse(value: object) -> int:
        text = str(value).strip()
        if isinstance(value, bool) or not text.lstrip("-").isdigit():
            raise ValueError(f"must be a whole number from {minimum} to {maximum}")
        number = int(text)
        if not minimum <= number <= maximum:
            raise ValueError(f"must be a whole number from {minimum} to {maximum}")
        return number

    return Annotated[int, BeforeValidator(parse)]


def _float_range(minimum: float, maximum: float) -> Any:
    def parse(value: object) -> float:
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(f"must be a number from {minimum:g} to {maximum:g}") from None
        if isinstance(value, bool) or not minimum <= number <= maximum:
            raise ValueError(f"must be a number from {minimum:g} to {maximum:g}")
        return number

    return Annotated[float, BeforeValidator(parse)]


def _choice(*choices: str) -> Any:
    def parse(value: object) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"must be one of: {', '.join(choices)}")
        return text

    return Annotated[str, BeforeValidator(parse)]


def _split_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list | tuple):
        return [str(item).strip() for item in value if str(item).strip()]
    raise ValueError("must be a comma-separated list")


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _check_sources(values: list[str]) -> list[str]:
    lowered = [value.lower() for value in values]
    unknown = [value for value in lowered if value not in KNOWN_SOURCES]
    if unknown:
        raise ValueError(
            f"unknown source {', '.join(unknown)}; valid sources: {', '.join(KNOWN_SOURCES)}"
        )
    if not lowered:
        raise ValueError(f"needs at least one source of: {', '.join(KNOWN_SOURCES)}")
    return list(dict.fromkeys(lowered))


def _check_pairs(values: list[str]) -> list[str]:
    registry = kraken_pair_registry()
    canonical: list[str] = []
    problems: list[str] = []
    for value in values:
        try:
            pair = registry.resolve(value)
        except InvalidParameter:
            split = _safe_split(value)
            hint = ""
            if split is not None:
                near = ", ".join(str(p) for p in registry.suggestions(split))
                hint = f" (known pairs with {split.base} or {split.quote}: {near})" if near else ""
            problems.append(f"{value} is not a pair Kraken lists{hint}")
            continue
        canonical.append(str(pair))
    if problems:
        raise ValueError(
            "; ".join(problems)
            + f"; {len(registry)} pairs are known, `tokenpulse pairs` lists them"
        )
    if not canonical:
        raise ValueError("needs at least one pair, e.g. BTC/USD")
    return list(dict.fromkeys(canonical))


def _safe_split(value: str) -> Any:
    try:
        return split_pair(value)
    except InvalidParameter:
        return None


def _check_ip_networks(values: list[str]) -> list[str]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR network") from None
    return values


Duration = Any  # readability alias for the annotated duration types below
Bool = Annotated[bool, BeforeValidator(_bool)]
StrList = Annotated[list[str], BeforeValidator(_split_list)]


# --------------------------------------------------------------------------- the settings


class Settings(BaseSettings):
    """Every setting of tokenpulse. Field ``foo_bar`` is env ``FOO_BAR`` and YAML ``foo.bar``."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", validate_default=True)

    host: str = "127.0.0.1"
    port: _int_range(1, 65535) = 8080  # type: ignore[valid-type]
    environment: str = "development"
    shutdown_timeout: _duration("1s", "10m") = "30s"  # type: ignore[valid-type]
    log_level: _choice("debug", "info", "warning", "error") = "info"  # type: ignore[valid-type]
    log_format: _choice("json", "text") = "json"  # type: ignore[valid-type]
    role: _choice("all", "api", "ingest") = "all"  # type: ignore[valid-type]

    sources: Annotated[list[str], BeforeValidator(_split_list), AfterValidator(_check_sources)] = (
        Field(default_factory=lambda: ["kraken", "coingecko"])
    )
    supported_pairs: Annotated[
        list[str], BeforeValidator(_split_list), AfterValidator(_check_pairs)
    ] = Field(default_factory=lambda: list(DEFAULT_PAIRS))

    kraken_ws_url: str = "wss://ws.kraken.com/v2"
    kraken_rest_url: str = "https://api.kraken.com"
    kraken_timeout: _duration("100ms", "5m") = "10s"  # type: ignore[valid-type]
    kraken_request_timeout: _duration("100ms", "1m") = "3s"  # type: ignore[valid-type]
    kraken_fallback_timeout: _duration("100ms", "10m") = "15s"  # type: ignore[valid-type]
    kraken_max_retries: _int_range(0, 20) = 3  # type: ignore[valid-type]
    kraken_min_request_interval: _duration("0ms", "1m") = "1s"  # type: ignore[valid-type]
    kraken_ws_max_pairs_per_connection: _int_range(1, 1000) = 50  # type: ignore[valid-type]
    kraken_subscribe_batch_size: _int_range(1, 500) = 20  # type: ignore[valid-type]
    rest_poll_interval: _duration("500ms", "10m") = "5s"  # type: ignore[valid-type]
    ws_idle_timeout: _duration("100ms", "10m") = "10s"  # type: ignore[valid-type]
    backoff_initial: _duration("10ms", "1m") = "500ms"  # type: ignore[valid-type]
    backoff_max: _duration("100ms", "10m") = "30s"  # type: ignore[valid-type]
    stale_after: _duration("100ms", "7d") = "60s"  # type: ignore[valid-type]
    coinbase_ws_url: str = "wss://ws-feed.exchange.coinbase.com"
    binance_ws_url: str = "wss://stream.binance.com:9443/stream"

    replay_path: str = ""
    replay_speed: _float_range(0.01, 100000) = 60.0  # type: ignore[valid-type]

    cache_backend: _choice("memory", "redis") = "memory"  # type: ignore[valid-type]
    cache_ttl: _duration("100ms", "24h") = "30s"  # type: ignore[valid-type]
    cache_max_entries: _int_range(1, 10_000_000) = 100_000  # type: ignore[valid-type]
    redis_url: str = "redis://localhost:6379/0"
    redis_addr: str = ""
    redis_password: str = ""
    redis_db: _int_range(0, 15) | None = None  # type: ignore[valid-type]
    redis_key_prefix: str = "tokenpulse:"
    database_url: str = "sqlite+aiosqlite:///data/tokenpulse.db"

    auth_enabled: Bool = False
    auth_api_key: str = ""
    rate_limit_enabled: Bool = True
    rate_limit_capacity: _int_range(1, 1_000_000_000) = 100  # type: ignore[valid-type]
    rate_limit_refill_rate: _float_range(0.001, 1_000_000_000) = 10.0  # type: ignore[valid-type]
    forwarded_allow_ips: Annotated[
        list[str], BeforeValidator(_split_list), AfterValidator(_check_ip_networks)
    ] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    cors_origins: StrList = Field(default_factory=list)

    # token market data (SPEC §3.4, §3.5): CoinMarketCap primary when keyed, CoinGecko fallback
    cmc_base_url: str = "https://pro-api.coinmarketcap.com"
    cmc_api_key: str = ""
    cmc_monthly_credits: _int_range(1, 1_000_000_000) = 10_000  # type: ignore[valid-type]
    cmc_request_timeout: _duration("100ms", "1m") = "10s"  # type: ignore[valid-type]
    cmc_max_retries: _int_range(0, 20) = 3  # type: ignore[valid-type]
    cmc_min_request_interval: _duration("0ms", "1m") = "2s"  # type: ignore[valid-type]
    coingecko_base_url: str = "https://api.coingecko.com"
    coingecko_api_key: str = ""
    coingecko_request_timeout: _duration("100ms", "1m") = "10s"  # type: ignore[valid-type]
    coingecko_max_retries: _int_range(0, 20) = 3  # type: ignore[valid-type]
    coingecko_min_request_interval: _duration("0ms", "1m") = "2500ms"  # type: ignore[valid-type]
    market_poll_interval: _duration("1s", "1h") = "60s"  # type: ignore[valid-type]
    tracked_tokens: StrList = Field(default_factory=list)
    track_top_n: _int_range(1, 5000) = 100  # type: ignore[valid-type]

    # velocity, quality and history (SPEC §4.4, §4.5, §5)
    min_market_cap_usd: _float_range(0, 1e15) = 100_000.0  # type: ignore[valid-type]
    velocity_outlier: _float_range(0, 1e9) = 10.0  # type: ignore[valid-type]
    trend_stable_band: _float_range(0, 100) = 1.0  # type: ignore[valid-type]
    price_outlier_fraction: _float_range(0, 100) = 0.2  # type: ignore[valid-type]
    history_raw_retention: _duration("1h", "3650d") = "7d"  # type: ignore[valid-type]
    history_rollup_retention: _duration("1d", "36500d") = "365d"  # type: ignore[valid-type]
    history_enabled: Bool = True

    # scale-out (SPEC §10): the ingest lock's TTL; a dead leader is replaced within it
    leader_ttl: _duration("500ms", "5m") = "10s"  # type: ignore[valid-type]

    # streams (SPEC §7)
    bulk_interval: _duration("100ms", "1m") = "1s"  # type: ignore[valid-type]
    sse_heartbeat: _duration("1s", "5m") = "15s"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        problems: list[str] = []
        if self.backoff_initial > self.backoff_max:
            problems.append("BACKOFF_INITIAL: must not exceed BACKOFF_MAX")
        if self.auth_enabled and not self.auth_api_key:
            problems.append("AUTH_API_KEY: required when AUTH_ENABLED=true")
        if self.history_raw_retention > self.history_rollup_retention:
            problems.append("HISTORY_RAW_RETENTION: must not exceed HISTORY_ROLLUP_RETENTION")
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            problems.append(
                "DATABASE_URL: must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        if self.role == "api" and self.cache_backend != "redis":
            problems.append(
                "ROLE: api instances read what the ingest instance publishes through Redis; "
                "set CACHE_BACKEND=redis (or ROLE=all for one process)"
            )
        if "*" in self.cors_origins and not self.auth_enabled:
            problems.append("CORS_ORIGINS: '*' is allowed only with AUTH_ENABLED=true")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # ------------------------------------------------------------------ derived values

    @property
    def effective_redis_url(self) -> str:
        """REDIS_URL, or one built from the Go service's REDIS_ADDR/PASSWORD/DB."""
        if not self.redis_addr and not self.redis_password and self.redis_db is None:
            return self.redis_url
        parts = urlsplit(self.redis_url)
        netloc = self.redis_addr or (parts.hostname or "localhost") + (
            f":{parts.port}" if parts.port else ""
        )
        if self.redis_password:
            netloc = f":{quote(self.redis_password, safe='')}@{netloc}"
        elif parts.password:
            netloc = f"{parts.username or ''}:{parts.password}@{netloc}"
        path = f"/{self.redis_db}" if self.redis_db is not None else parts.path
        return urlunsplit((parts.scheme or "redis", netloc, path, parts.query, ""))

    @property
    def ingests(self) -> bool:
        """Whether this instance may run sources (``all`` or ``ingest``)."""
        return self.role in {"all", "ingest"}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() merges defaults < yaml < env-yaml < env itself, so it can record
        # where every value came from; the object is built from that merge alone.
        return (init_settings,)


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class LoadedSettings:
    """Settings plus where each value came from (``default``, a file name, or ``env``)."""

    settings: Settings
    origins: dict[str, str] = field(default_factory=dict)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{str(key).lower()}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}_"))
        else:
            flat[name] = value
    return flat


def _read_yaml(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(f"{path}: cannot read configuration file: {exc}")
        return {}
    if loaded is None:
        return {}
    if not isinstance(loaded, Mapping):
        problems.append(f"{path}: must be a mapping of settings")
        return {}
    flat = _flatten(loaded)
    fields = Settings.model_fields
    for key in [key for key in flat if key not in fields]:
        problems.append(f"{path}: unknown key {key!r}")
        del flat[key]
    return flat


def load_settings(
    config_file: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
) -> LoadedSettings:
    """Build Settings from the whole precedence chain; raises ConfigError listing every problem.

    ``environ`` defaults to the process environment; ``overrides`` (highest precedence) are
    for tests and the CLI's own flags.
    """
    env = dict(os.environ if environ is None else environ)
    problems: list[str] = []
    layers: list[tuple[str, dict[str, Any]]] = []

    explicit = config_file is not None or "CONFIG_FILE" in env
    base_path = Path(config_file or env.get("CONFIG_FILE") or "config.yaml")
    if base_path.exists():
        layers.append((str(base_path), _read_yaml(base_path, problems)))
    elif explicit:
        problems.append(f"{base_path}: configuration file not found")

    env_values = {name: env[name.upper()] for name in Settings.model_fields if name.upper() in env}
    environment = str(
        env_values.get("environment") or _last(layers, "environment") or "development"
    )
    env_path = base_path.with_name(f"config.{environment}.yaml")
    if env_path.exists():
        layers.append((str(env_path), _read_yaml(env_path, problems)))
    layers.append(("env", env_values))
    if overrides:
        layers.append(("override", dict(overrides)))

    merged: dict[str, Any] = {}
    origins: dict[str, str] = dict.fromkeys(Settings.model_fields, "default")
    for origin, values in layers:
        for key, value in values.items():
            merged[key] = value
            origins[key] = origin

    if environment == "production" and origins.get("auth_enabled") == "default":
        problems.append(
            "AUTH_ENABLED: ENVIRONMENT=production refuses to start with auth disabled; "
            "set AUTH_ENABLED=true with AUTH_API_KEY, or AUTH_ENABLED=false explicitly"
        )
    settings: Settings | None = None
    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        problems.extend(_describe(exc, merged))
    if problems or settings is None:
        raise ConfigError(problems)
    return LoadedSettings(settings=settings, origins=origins)


def _last(layers: list[tuple[str, dict[str, Any]]], key: str) -> Any:
    for _, values in reversed(layers):
        if key in values:
            return values[key]
    return None


def _describe(exc: ValidationError, merged: Mapping[str, Any]) -> list[str]:
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
        value = merged.get(key, error.get("input"))
        shown = "***" if key in SECRET_FIELDS else value
        lines.append(f"{key.upper()}={shown!r}: {message}")
    return lines


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


def describe_settings(loaded: LoadedSettings) -> list[tuple[str, Any, str]]:
    """(ENV_NAME, printable value, origin) for every setting, secrets masked."""
    rows: list[tuple[str, Any, str]] = []
    data = loaded.settings.model_dump()
    formatters: dict[str, Callable[[Any], Any]] = {}
    for name, info in Settings.model_fields.items():
        value = data[name]
        if _is_duration(info.metadata) and isinstance(value, float):
            formatters[name] = format_duration
        shown = formatters.get(name, lambda v: v)(value)
        if isinstance(shown, list):
            shown = ",".join(str(item) for item in shown)
        rows.append((name.upper(), mask(name, shown), loaded.origins.get(name, "default")))
    return rows


def _is_duration(metadata: list[Any]) -> bool:
    return any(
        isinstance(item, BeforeValidator)
        and getattr(item.func, "__qualname__", "").startswith("_duration")
        for item in metadata
    )


Role = Literal["all", "api", "ingest"]
