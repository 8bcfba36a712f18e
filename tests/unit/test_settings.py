"""Settings: precedence chain, fail-fast messages, masking, and the CLI's exit code 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from tokenpulse.api.app import create_app
from tokenpulse.runtime import create_runtime
from tokenpulse.settings import ConfigError, describe_settings, load_settings


def problems(environ: dict[str, str], config: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ)
    return caught.value.problems


def test_defaults_match_the_spec() -> None:
    settings = load_settings(None, {}).settings
    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.sources == ["kraken", "coingecko"]
    assert settings.supported_pairs == ["BTC/USD", "ETH/USD", "LTC/USD", "XRP/USD"]
    assert settings.cache_backend == "memory"
    assert settings.cache_ttl == 30.0
    assert settings.kraken_timeout == 10.0
    assert settings.kraken_request_timeout == 3.0
    assert settings.kraken_fallback_timeout == 15.0
    assert settings.kraken_max_retries == 3
    assert settings.stale_after == 60.0
    assert settings.rate_limit_capacity == 100
    assert settings.rate_limit_refill_rate == 10.0
    assert settings.auth_enabled is False


@pytest.mark.parametrize(
    ("environ", "key", "fragment"),
    [
        ({"CACHE_TTL": "50ms"}, "CACHE_TTL='50ms'", "minimum of 100ms"),
        ({"CACHE_TTL": "25h"}, "CACHE_TTL='25h'", "maximum of 24h"),
        ({"CACHE_TTL": "30"}, "CACHE_TTL='30'", "missing unit"),
        ({"PORT": "0"}, "PORT='0'", "from 1 to 65535"),
        ({"PORT": "abc"}, "PORT='abc'", "from 1 to 65535"),
        ({"SUPPORTED_PAIRS": "BTC/USD,DOGE/MOON"}, "SUPPORTED_PAIRS=", "DOGE/USD"),
        ({"CACHE_BACKEND": "memcached"}, "CACHE_BACKEND='memcached'", "memory, redis"),
        ({"SOURCES": "nosuch"}, "SOURCES='nosuch'", "kraken, coinbase, binance"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml'", "json, text"),
        ({"RATE_LIMIT_CAPACITY": "-1"}, "RATE_LIMIT_CAPACITY='-1'", "from 1 to"),
        ({"FORWARDED_ALLOW_IPS": "not-an-ip"}, "FORWARDED_ALLOW_IPS=", "not an IP"),
        ({"AUTH_ENABLED": "maybe"}, "AUTH_ENABLED='maybe'", "true or false"),
    ],
)
def test_invalid_values_fail_with_one_clear_line(
    environ: dict[str, str], key: str, fragment: str
) -> None:
    lines = problems(environ)
    assert len(lines) == 1, lines
    assert lines[0].startswith(key)
    assert fragment in lines[0]


def test_each_provider_has_its_own_timeout_retries_and_request_interval() -> None:
    settings = load_settings(None, {}).settings
    assert settings.kraken_min_request_interval == 1.0
    assert (
        settings.cmc_request_timeout,
        settings.cmc_max_retries,
        settings.cmc_min_request_interval,
    ) == (10.0, 3, 2.0)
    assert (
        settings.coingecko_request_timeout,
        settings.coingecko_max_retries,
        settings.coingecko_min_request_interval,
    ) == (10.0, 3, 2.5)
    tuned = load_settings(
        None,
        {"CMC_MAX_RETRIES": "0", "COINGECKO_MIN_REQUEST_INTERVAL": "6s", "KRAKEN_MAX_RETRIES": "5"},
    ).settings
    assert (tuned.cmc_max_retries, tuned.coingecko_max_retries) == (0, 3)
    assert tuned.coingecko_min_request_interval == 6.0
    assert tuned.kraken_max_retries == 5
    (line,) = problems({"CMC_MAX_RETRIES": "21"})
    assert line.startswith("CMC_MAX_RETRIES='21'")


def test_every_problem_is_reported_at_once() -> None:
    lines = problems({"PORT": "0", "CACHE_TTL": "30", "SOURCES": "nosuch"})
    assert len(lines) == 3
    assert {line.split("=")[0] for line in lines} == {"PORT", "CACHE_TTL", "SOURCES"}


def test_unknown_pair_lists_known_alternatives() -> None:
    (line,) = problems({"SUPPORTED_PAIRS": "BTC/USD,DOGE/MOON"})
    assert "DOGE/MOON is not a pair Kraken lists" in line
    assert "tokenpulse pairs" in line


def test_pair_aliases_are_canonicalised() -> None:
    settings = load_settings(None, {"SUPPORTED_PAIRS": "xbtusd, XXBTZUSD,eth-usd,XDG/USD"}).settings
    assert settings.supported_pairs == ["BTC/USD", "ETH/USD", "DOGE/USD"]


def test_production_refuses_implicit_auth_off() -> None:
    (line,) = problems({"ENVIRONMENT": "production"})
    assert line.startswith("AUTH_ENABLED")
    explicit = load_settings(None, {"ENVIRONMENT": "production", "AUTH_ENABLED": "false"})
    assert explicit.settings.auth_enabled is False
    on = load_settings(
        None, {"ENVIRONMENT": "production", "AUTH_ENABLED": "true", "AUTH_API_KEY": "k"}
    )
    assert on.settings.auth_enabled is True


def test_auth_needs_a_key_and_wildcard_cors_needs_auth() -> None:
    assert problems({"AUTH_ENABLED": "true"}) == ["AUTH_API_KEY: required when AUTH_ENABLED=true"]
    (line,) = problems({"CORS_ORIGINS": "*"})
    assert line.startswith("CORS_ORIGINS")


def test_precedence_defaults_file_env_file_env(tmp_path: Path) -> None:
    base = tmp_path / "config.yaml"
    base.write_text(
        "port: 9000\ncache:\n  ttl: 10s\n  backend: memory\nenvironment: staging\n"
        "rate_limit:\n  capacity: 7\n",
        encoding="utf-8",
    )
    (tmp_path / "config.staging.yaml").write_text("cache:\n  ttl: 20s\n", encoding="utf-8")
    loaded = load_settings(base, {"RATE_LIMIT_CAPACITY": "9"})
    s = loaded.settings
    assert (s.port, loaded.origins["port"]) == (9000, str(base))
    assert s.cache_ttl == 20.0
    assert loaded.origins["cache_ttl"].endswith("config.staging.yaml")
    assert (s.rate_limit_capacity, loaded.origins["rate_limit_capacity"]) == (9, "env")
    assert (s.host, loaded.origins["host"]) == ("127.0.0.1", "default")


def test_environment_variable_selects_the_env_file(tmp_path: Path) -> None:
    base = tmp_path / "config.yaml"
    base.write_text("port: 9000\n", encoding="utf-8")
    (tmp_path / "config.production.yaml").write_text(
        "port: 9100\nauth:\n  enabled: false\n", encoding="utf-8"
    )
    assert load_settings(base, {"ENVIRONMENT": "production"}).settings.port == 9100


def test_unknown_yaml_keys_and_bad_yaml_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("cache:\n  ttll: 10s\n", encoding="utf-8")
    assert any("unknown key 'cache_ttll'" in line for line in problems({}, path))
    path.write_text("port: [\n", encoding="utf-8")
    assert any("cannot read configuration file" in line for line in problems({}, path))
    assert problems({}, tmp_path / "missing.yaml") == [
        f"{tmp_path / 'missing.yaml'}: configuration file not found"
    ]


def test_go_service_redis_variables_build_the_url() -> None:
    s = load_settings(
        None, {"REDIS_ADDR": "cache:6380", "REDIS_PASSWORD": "p@ss", "REDIS_DB": "2"}
    ).settings
    assert s.effective_redis_url == "redis://:p%40ss@cache:6380/2"


def test_describe_masks_secrets_and_names_origins() -> None:
    loaded = load_settings(
        None,
        {
            "AUTH_ENABLED": "true",
            "AUTH_API_KEY": "super-secret",
            "REDIS_URL": "redis://user:hunter2@localhost:6379/0",
        },
    )
    rows = {name: (value, origin) for name, value, origin in describe_settings(loaded)}
    assert rows["AUTH_API_KEY"] == ("***", "env")
    assert "hunter2" not in str(rows["REDIS_URL"][0])
    assert rows["CACHE_TTL"] == ("30s", "default")
    assert "super-secret" not in repr(rows)


def _pythonpath() -> dict[str, str]:
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokenpulse", *args],
        capture_output=True,
        text=True,
        # PYTHONPATH passes through so a source tree is tested, not an installed copy.
        env={"PATH": "/usr/bin:/bin", **_pythonpath(), **env},
        timeout=60,
        check=False,
    )


def test_cli_config_check_exits_2_with_one_line_per_problem() -> None:
    result = _cli("config", "check", env={"CACHE_TTL": "50ms", "PORT": "abc"})
    assert result.returncode == 2
    lines = [line.strip() for line in result.stderr.splitlines()]
    assert "CACHE_TTL='50ms': below the minimum of 100ms (valid range 100ms..24h)" in lines
    assert any(line.startswith("PORT='abc'") for line in lines)


def test_cli_config_check_prints_effective_values() -> None:
    result = _cli("config", "check", env={"AUTH_ENABLED": "true", "AUTH_API_KEY": "s3cret-key"})
    assert result.returncode == 0, result.stderr
    assert "s3cret-key" not in result.stdout
    rows = [line.split()[:3] for line in result.stdout.splitlines()]
    assert ["AUTH_API_KEY", "***", "(env)"] in rows
    assert ["PORT", "8080", "(default)"] in rows


def test_cli_serve_refuses_bad_config_with_exit_2() -> None:
    result = _cli("serve", env={"SOURCES": "nosuch"})
    assert result.returncode == 2
    assert "SOURCES='nosuch'" in result.stderr


# --------------------------------------------------------------------- start-up validation


@pytest.mark.parametrize("spelling", ["Production", " production ", "PRODUCTION\t"])
def test_environment_is_trimmed_and_case_insensitive_so_the_production_guard_applies(
    spelling: str,
) -> None:
    (line,) = problems({"ENVIRONMENT": spelling})
    assert line.startswith("AUTH_ENABLED: ENVIRONMENT=production refuses")
    explicit = load_settings(None, {"ENVIRONMENT": spelling, "AUTH_ENABLED": "false"})
    assert explicit.settings.environment == "production"


def test_unknown_environment_is_refused_unless_it_has_its_own_file(tmp_path: Path) -> None:
    (line,) = problems({"ENVIRONMENT": "prodution"})
    assert line.startswith("ENVIRONMENT='prodution': must be one of development, testing")
    assert "did you mean production?" in line
    base = tmp_path / "config.yaml"
    base.write_text("port: 9000\n", encoding="utf-8")
    (tmp_path / "config.demo.yaml").write_text("port: 9200\n", encoding="utf-8")
    loaded = load_settings(base, {"ENVIRONMENT": " Demo"})
    assert (loaded.settings.environment, loaded.settings.port) == ("demo", 9200)


@pytest.mark.parametrize(
    ("key", "bad", "good", "fragment"),
    [
        ("HOST", "999.1.1.1", "0.0.0.0", "must be an IP address"),
        ("HOST", "bad_host!", "api.internal", "or a host name"),
        ("KRAKEN_WS_URL", "http://x", "ws://127.0.0.1:9000/v2", "ws:// or wss://"),
        ("COINBASE_WS_URL", "wss://", "wss://ws-feed.exchange.coinbase.com", "with a host"),
        ("KRAKEN_REST_URL", "ws://x", "http://127.0.0.1:9001", "http:// or https://"),
        ("COINGECKO_BASE_URL", "api.coingecko.com", "https://api.coingecko.com", "http://"),
        ("REDIS_URL", "notaurl", "rediss://cache:6380/1", "redis:// or rediss://"),
        ("REDIS_URL", "redis://host:99999/0", "redis://host:6379/0", "redis://"),
        ("REDIS_ADDR", "localhost", "localhost:6379", "host:port"),
    ],
)
def test_hosts_urls_and_schemes_are_validated(key: str, bad: str, good: str, fragment: str) -> None:
    (line,) = problems({key: bad})
    assert line.startswith(f"{key}={bad!r}: ")
    assert fragment in line
    load_settings(None, {key: good})  # the right kind of value passes


@pytest.mark.parametrize("spelling", ["warn", "WARN", "Warn", " warning "])
def test_log_level_accepts_the_go_services_warn(spelling: str) -> None:
    assert load_settings(None, {"LOG_LEVEL": spelling}).settings.log_level == "warning"


def test_go_layout_conflicts_and_unimplemented_auth_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("port: 9000\nserver:\n  port: 9100\n", encoding="utf-8")
    assert problems({}, path) == [f"{path}: server.port and port both set PORT; keep one"]
    path.write_text("auth:\n  header_name: X-Token\n  unauth_paths: [/health]\n", encoding="utf-8")
    lines = problems({}, path)
    assert len(lines) == 2
    assert "auth.header_name='X-Token'" in lines[0]
    assert "auth.unauth_paths=['/health']" in lines[1]
    path.write_text(
        "auth:\n  header_name: X-API-Key\n"
        "  unauth_paths: [/health, /ready, /metrics, /swagger/, /docs]\n",
        encoding="utf-8",
    )
    load_settings(path, {})  # the Go defaults are what tokenpulse does: accepted


def test_cli_takes_the_go_flag_form(tmp_path: Path) -> None:
    config = tmp_path / "go.yaml"
    config.write_text("server:\n  port: 9300\nlogging:\n  level: WARN\n", encoding="utf-8")
    result = _cli("config", "check", "-config", str(config), env={})
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["PORT", "9300", f"({config}", "(server.port))"] in rows
    assert ["LOG_LEVEL", "warning", f"({config}", "(logging.level))"] in rows


async def test_unknown_tracked_tokens_are_warned_at_start_and_listed_in_sources() -> None:
    settings = load_settings(
        None, {"TRACKED_TOKENS": "btc, NOSUCHCOIN,sol,nosuchcoin", "SOURCES": "replay"}
    ).settings
    with capture_logs() as logs:
        runtime = create_runtime(settings)
    container = runtime.container
    warned = [e for e in logs if e["log_level"] == "warning" and "tracked" in e["event"]]
    assert [e["symbols"] for e in warned] == [["NOSUCHCOIN"]]
    transport = httpx.ASGITransport(app=create_app(container, lifecycle=runtime))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://tokenpulse") as client:
            body = (await client.get("/api/v1/sources")).json()
    finally:
        await container.http.aclose()
    assert body["data"]["unknown_tracked_tokens"] == ["NOSUCHCOIN"]


# --------------------------------------------------------------------- secrets stay out


ROOT = Path(__file__).resolve().parents[2]


def test_env_files_are_ignored_by_git_and_docker_but_the_example() -> None:
    names = [".env", ".env.local", ".env.production", ".env.example"]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.split() == [".env", ".env.local", ".env.production"]
    docker = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {".env", ".env.*", "!.env.example"} <= set(docker)
    assert docker.index("!.env.example") > docker.index(".env.*")  # the exception comes last


def test_env_example_lists_every_variable_compose_reads_with_a_comment() -> None:
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{(\w+)", compose))
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    listed = {}
    for number, line in enumerate(lines):
        if re.match(r"\w+=", line):
            name, _, value = line.partition("=")
            listed[name] = value
            assert lines[number - 1].startswith("#"), f"{name} has no comment"
    assert set(listed) == used
    assert all(value and "secret" not in value.lower() for value in listed.values())


def test_endpoint_costs_are_set_per_tier_and_bad_ones_refused(tmp_path: Path) -> None:
    from tokenpulse.domain.access import DEFAULT_COSTS
    from tokenpulse.settings import ConfigError, load_settings

    tiers = load_settings(None, {}).settings.tier_limits()
    assert all(dict(tiers[t].costs) == dict(DEFAULT_COSTS) for t in ("free", "pro", "enterprise"))
    config = tmp_path / "config.yaml"
    config.write_text("tier:\n  free:\n    cost:\n      tokens: 5\n", encoding="utf-8")
    tiers = load_settings(config, {"TIER_PRO_COST_LTP_REFRESH": "0.5"}).settings.tier_limits()
    assert tiers["free"].costs["tokens"] == 5
    assert tiers["pro"].costs["ltp_refresh"] == 0.5
    assert tiers["enterprise"].costs["tokens"] == DEFAULT_COSTS["tokens"]
    for environ, text in (
        (
            {"TIER_PRO_COST_HISTORY": "3"},
            "unknown tier setting TIER_PRO_COST_HISTORY (did you mean TIER_PRO_COST_OTHER?); "
            "tiers: free, pro, enterprise; endpoint classes (TIER_<TIER>_COST_<CLASS>): "
            "ltp_refresh, ltp_cached, tokens, other",
        ),
        ({"TIER_GOLD_CAPACITY": "3"}, "unknown tier setting TIER_GOLD_CAPACITY"),
        ({"TIER_FREE_COST_TOKENS": "-1"}, "TIER_FREE_COST_TOKENS='-1'"),
        ({"TIER_FREE_COST_TOKENS": "cheap"}, "TIER_FREE_COST_TOKENS='cheap'"),
        ({"TIER_FREE_COST_TOKENS": "nan"}, "TIER_FREE_COST_TOKENS='nan'"),
    ):
        with pytest.raises(ConfigError) as raised:
            load_settings(None, environ)
        assert any(text in problem for problem in raised.value.problems), raised.value.problems
    config.write_text("tier:\n  pro:\n    cost:\n      history: 5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(config, {})
    assert any("tier_pro_cost_history" in problem for problem in raised.value.problems)


def test_access_settings_are_validated_and_shape_the_tiers() -> None:
    from tokenpulse.settings import ConfigError, load_settings

    loaded = load_settings(
        None, {"TIER_PRO_CAPACITY": "500", "TIER_FREE_HISTORY_DEPTH": "2d", "AUTH_BLOCK_FOR": "1h"}
    ).settings
    tiers = loaded.tier_limits()
    assert tiers["pro"].capacity == 500
    assert tiers["free"].history_seconds == 2 * 86400
    assert loaded.auth_block_for == 3600
    assert loaded.auth_stream_slot_ttl == 15
    for environ, text in (
        ({"AUTH_KEY_PEPPER": "short"}, "AUTH_KEY_PEPPER: must be at least 16 characters"),
        ({"TIER_FREE_CAPACITY": "0"}, "TIER_FREE_CAPACITY='0'"),
        ({"AUTH_SESSION_TTL": "2d"}, "AUTH_SESSION_TTL='2d'"),
        ({"AUTH_STREAM_SLOT_TTL": "1s"}, "AUTH_STREAM_SLOT_TTL='1s'"),
        (
            {"AUTH_KEY_PEPPER": "p" * 20, "HISTORY_ENABLED": "false"},
            "AUTH_KEY_PEPPER: stored API keys live in the history database",
        ),
    ):
        with pytest.raises(ConfigError) as raised:
            load_settings(None, environ)
        assert any(text in problem for problem in raised.value.problems), raised.value.problems
