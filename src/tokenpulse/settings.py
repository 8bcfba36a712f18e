"""Typed settings: defaults in code < config.yaml < config.{ENVIRONMENT}.yaml < environment.

One :class:`Settings` object, validated at start. Nothing else in tokenpulse reads
``os.environ``. YAML files use the same keys as the environment variables, lower-case, and may
nest them by section (``cache: {ttl: 30s}`` is ``CACHE_TTL``); the Go service's layout is read
too (``_settings_files``, ``_settings_go``). Invalid configuration raises
:class:`ConfigError`, which carries one clear line per problem; the CLI exits with code 2.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tokenpulse._settings_access import AccessSettings, unknown_tier_settings
from tokenpulse._settings_fields import (
    KNOWN_SOURCES,
    SECRET_FIELDS,
    CacheBackend,
    HttpServer,
    LogFormat,
    LogLevel,
    Role,
    Seconds,
    StrList,
    check_address,
    check_host,
    check_ip_networks,
    check_pairs,
    check_sources,
    check_url,
    describe_problems,
    duration,
    is_duration,
    mask,
    split_list,
)
from tokenpulse._settings_files import Layer, environment_file, read_yaml
from tokenpulse._settings_venues import (
    LtpFallback,
    LtpPrimary,
    check_quote_equivalents,
    check_venue_choice,
)
from tokenpulse.domain.durations import format_duration
from tokenpulse.domain.errors import ConfigError

__all__ = [
    "DEFAULT_PAIRS",
    "KNOWN_SOURCES",
    "SECRET_FIELDS",
    "ConfigError",
    "LoadedSettings",
    "Role",
    "Settings",
    "describe_settings",
    "load_settings",
    "mask",
]

DEFAULT_PAIRS = ("BTC/USD", "ETH/USD", "LTC/USD", "XRP/USD")
#: Replay never writes into live history (SPEC §3.6): its own default database.
REPLAY_DATABASE_URL = "sqlite+aiosqlite:///data/replay.db"


# --------------------------------------------------------------------------- the settings


class Settings(BaseSettings, AccessSettings):
    """Every setting of tokenpulse. Field ``foo_bar`` is env ``FOO_BAR`` and YAML ``foo.bar``."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", validate_default=True)

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    # the HTTP server the app runs on (SPEC §12): Granian (Rust HTTP, embedded in our event
    # loop) or uvicorn (httptools); both serve REST, SSE and Socket.IO
    server: HttpServer = "uvicorn"
    environment: str = "development"
    shutdown_timeout: Seconds = duration("30s", "1s", "10m")
    log_level: LogLevel = "info"
    log_format: LogFormat = "json"
    # request logging and limits (SPEC §8.5, §9): one access line per request; the edge
    # answers 431 past the header caps and 413 past the body cap (chunked bodies too)
    access_log: bool = True
    max_header_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 16 * 1024
    max_header_count: Annotated[int, Field(ge=8, le=1000)] = 100
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 64 * 1024
    role: Role = "all"

    sources: Annotated[list[str], BeforeValidator(split_list), AfterValidator(check_sources)] = (
        Field(default_factory=lambda: ["kraken", "coingecko"])
    )
    # pair lists (SPEC §3.3): fetched at start, cached, bundled last (_pair_lists.py); the
    # fields the SUPPORTED_PAIRS check reads come before it
    pair_lists_dir: str = "data/pairs"
    pair_lists_fetch: bool = True
    pair_lists_timeout: Seconds = duration("3s", "100ms", "1m")
    quote_equivalents: Annotated[
        list[str], BeforeValidator(split_list), AfterValidator(check_quote_equivalents)
    ] = Field(default_factory=list)
    supported_pairs: Annotated[
        list[str], BeforeValidator(split_list), AfterValidator(check_pairs)
    ] = Field(default_factory=lambda: list(DEFAULT_PAIRS))

    kraken_ws_url: str = "wss://ws.kraken.com/v2"
    kraken_rest_url: str = "https://api.kraken.com"
    kraken_timeout: Seconds = duration("10s", "100ms", "5m")
    kraken_request_timeout: Seconds = duration("3s", "100ms", "1m")
    kraken_fallback_timeout: Seconds = duration("15s", "100ms", "10m")
    kraken_max_retries: Annotated[int, Field(ge=0, le=20)] = 3
    kraken_min_request_interval: Seconds = duration("1s", "0ms", "1m")
    kraken_ws_max_pairs_per_connection: Annotated[int, Field(ge=1, le=1000)] = 50
    kraken_subscribe_batch_size: Annotated[int, Field(ge=1, le=500)] = 20
    rest_poll_interval: Seconds = duration("5s", "500ms", "10m")
    ws_idle_timeout: Seconds = duration("10s", "100ms", "10m")
    backoff_initial: Seconds = duration("500ms", "10ms", "1m")
    backoff_max: Seconds = duration("30s", "100ms", "10m")
    stale_after: Seconds = duration("60s", "100ms", "7d")
    coinbase_ws_url: str = "wss://ws-feed.exchange.coinbase.com"
    binance_ws_url: str = "wss://stream.binance.com:9443/stream"
    # other venues (SPEC §3.3) and the cross-venue aggregate (§4.2); see _settings_venues.py
    coinbase_rest_url: str = "https://api.exchange.coinbase.com"
    binance_rest_url: str = "https://api.binance.com"
    venue_ws_max_pairs_per_connection: Annotated[int, Field(ge=1, le=1024)] = 50
    binance_max_connection_age: Seconds = duration("23h", "1m", "24h")
    ltp_primary: LtpPrimary = "kraken"
    ltp_fallback: LtpFallback = "aggregate"
    venue_disagree_bps: Annotated[float, Field(ge=0, le=10_000)] = 50.0

    replay_path: str = ""
    replay_speed: Annotated[float, Field(ge=0.01, le=100000)] = 60.0

    cache_backend: CacheBackend = "memory"
    cache_ttl: Seconds = duration("30s", "100ms", "24h")
    cache_max_entries: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000
    redis_url: str = "redis://localhost:6379/0"
    redis_addr: str = ""
    redis_password: str = ""
    redis_db: int | None = Field(None, ge=0, le=15)
    redis_key_prefix: str = "tokenpulse:"
    database_url: str = "sqlite+aiosqlite:///data/tokenpulse.db"

    auth_enabled: bool = False
    auth_api_key: str = ""
    rate_limit_enabled: bool = True
    rate_limit_capacity: Annotated[int, Field(ge=1, le=1_000_000_000)] = 100
    rate_limit_refill_rate: Annotated[float, Field(ge=0.001, le=1_000_000_000)] = 10.0
    forwarded_allow_ips: Annotated[
        list[str], BeforeValidator(split_list), AfterValidator(check_ip_networks)
    ] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    cors_origins: StrList = Field(default_factory=list)

    # token market data (SPEC §3.4, §3.5): CoinMarketCap primary when keyed, CoinGecko fallback
    cmc_base_url: str = "https://pro-api.coinmarketcap.com"
    cmc_api_key: str = ""
    cmc_monthly_credits: Annotated[int, Field(ge=1, le=1_000_000_000)] = 10_000
    cmc_request_timeout: Seconds = duration("10s", "100ms", "1m")
    cmc_max_retries: Annotated[int, Field(ge=0, le=20)] = 3
    cmc_min_request_interval: Seconds = duration("2s", "0ms", "1m")
    coingecko_base_url: str = "https://api.coingecko.com"
    coingecko_api_key: str = ""
    coingecko_request_timeout: Seconds = duration("10s", "100ms", "1m")
    coingecko_max_retries: Annotated[int, Field(ge=0, le=20)] = 3
    coingecko_min_request_interval: Seconds = duration("2500ms", "0ms", "1m")
    market_poll_interval: Seconds = duration("60s", "1s", "1h")
    tracked_tokens: StrList = Field(default_factory=list)
    track_top_n: Annotated[int, Field(ge=1, le=5000)] = 100

    # velocity, quality and history (SPEC §4.4, §4.5, §5)
    min_market_cap_usd: Annotated[float, Field(ge=0, le=1e15)] = 100_000.0
    velocity_outlier: Annotated[float, Field(ge=0, le=1e9)] = 10.0
    trend_stable_band: Annotated[float, Field(ge=0, le=100)] = 1.0
    price_outlier_fraction: Annotated[float, Field(ge=0, le=100)] = 0.2
    history_raw_retention: Seconds = duration("7d", "1h", "3650d")
    history_rollup_retention: Seconds = duration("365d", "1d", "36500d")
    history_enabled: bool = True
    # rows still unwritten at shutdown go here and are replayed at the next start ("": off)
    history_spill_path: str = "data/history-spill.jsonl"

    # scale-out (SPEC §10): the ingest lock's TTL; a dead leader is replaced within it
    leader_ttl: Seconds = duration("2s", "500ms", "5m")
    # the Redis bus hears its own heartbeat this often; 3 missed ones make it unhealthy
    bus_heartbeat_interval: Seconds = duration("2s", "100ms", "1m")

    # streams (SPEC §7)
    bulk_interval: Seconds = duration("1s", "100ms", "1m")
    sse_heartbeat: Seconds = duration("15s", "1s", "5m")

    @field_validator("host")
    @classmethod
    def _valid_host(cls, value: str) -> str:
        return check_host(value)

    @field_validator("environment")
    @classmethod
    def _normalised_environment(cls, value: str) -> str:
        return value.strip().lower() or "development"  # load_settings checks the name

    @field_validator("kraken_ws_url", "coinbase_ws_url", "binance_ws_url")
    @classmethod
    def _websocket_url(cls, value: str) -> str:
        return check_url(value, ("ws", "wss"), "wss://ws.kraken.com/v2")

    @field_validator(
        "kraken_rest_url",
        "cmc_base_url",
        "coingecko_base_url",
        "coinbase_rest_url",
        "binance_rest_url",
    )
    @classmethod
    def _rest_url(cls, value: str) -> str:
        return check_url(value, ("http", "https"), "https://api.kraken.com")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        return check_url(value, ("redis", "rediss"), "redis://localhost:6379/0")

    @field_validator("redis_addr")
    @classmethod
    def _redis_addr(cls, value: str) -> str:
        return check_address(value)

    @model_validator(mode="before")
    @classmethod
    def _replay_database(cls, data: Any) -> Any:
        """With the replay source and no DATABASE_URL given, history goes to data/replay.db."""
        if isinstance(data, dict) and "database_url" not in data and "sources" in data:
            with contextlib.suppress(ValueError):
                if "replay" in [name.lower() for name in split_list(data["sources"])]:
                    return {**data, "database_url": REPLAY_DATABASE_URL}
        return data

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
        problems.extend(check_venue_choice(self.sources, self.ltp_primary, self.ltp_fallback))
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
    layers: list[Layer] = []

    explicit = config_file is not None or "CONFIG_FILE" in env
    base_path = Path(config_file or env.get("CONFIG_FILE") or "config.yaml")
    if base_path.exists():
        layers.append(read_yaml(base_path, Settings.model_fields, problems))
    elif explicit:
        problems.append(f"{base_path}: configuration file not found")

    env_values = {name: env[name.upper()] for name in Settings.model_fields if name.upper() in env}
    tier_names = [name for name in env if name.startswith("TIER_")]
    problems.extend(unknown_tier_settings(tier_names, Settings.model_fields, "environment"))
    raw_environment = env_values.get("environment") or _last(layers, "environment")
    environment, env_path = environment_file(raw_environment or "development", base_path, problems)
    if env_path.exists():
        layers.append(read_yaml(env_path, Settings.model_fields, problems))
    layers.append(Layer("env", env_values))
    if overrides:
        layers.append(Layer("override", dict(overrides)))

    merged: dict[str, Any] = {}
    origins: dict[str, str] = dict.fromkeys(Settings.model_fields, "default")
    for layer in layers:
        for key, value in layer.values.items():
            merged[key] = value
            origins[key] = layer.labels.get(key, layer.origin)

    if environment == "production" and origins.get("auth_enabled") == "default":
        problems.append(
            "AUTH_ENABLED: ENVIRONMENT=production refuses to start with auth disabled; "
            "set AUTH_ENABLED=true with AUTH_API_KEY, or AUTH_ENABLED=false explicitly"
        )
    settings: Settings | None = None
    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        problems.extend(describe_problems(exc, merged, Settings.model_fields))
    if problems or settings is None:
        raise ConfigError(problems)
    return LoadedSettings(settings=settings, origins=origins)


def _last(layers: list[Layer], key: str) -> Any:
    for layer in reversed(layers):
        if key in layer.values:
            return layer.values[key]
    return None


def describe_settings(loaded: LoadedSettings) -> list[tuple[str, Any, str]]:
    """(ENV_NAME, printable value, origin) for every setting, secrets masked."""
    rows: list[tuple[str, Any, str]] = []
    data = loaded.settings.model_dump()
    formatters: dict[str, Callable[[Any], Any]] = {}
    for name, info in Settings.model_fields.items():
        value = data[name]
        if is_duration(info) and isinstance(value, float):
            formatters[name] = format_duration
        shown = formatters.get(name, lambda v: v)(value)
        if isinstance(shown, list):
            shown = ",".join(str(item) for item in shown)
        rows.append((name.upper(), mask(name, shown), loaded.origins.get(name, "default")))
    return rows
