"""The Go "BTC LTP Service" README, run against tokenpulse unchanged (issue #8, item 7).

Everything comes from ``tests/fixtures/go_reference/`` (copies of the Go service's README and
configuration files; the folder's README names the sources): each curl example is sent as
written to a ``tokenpulse serve`` process (fake Kraken WS/REST on loopback) and must answer
the status and JSON shape the README documents; the configuration table's variables, the
precedence demo and the Go YAML files give the documented effective values through
``tokenpulse config check``; the error codes table is provoked code by code.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.helpers import wait_for
from tokenpulse.settings import load_settings

GO = Path(__file__).resolve().parent.parent / "fixtures" / "go_reference"
README = (GO / "go_readme_excerpt.md").read_text(encoding="utf-8")
GO_BASE = "http://localhost:8080"

# Error codes of the README's table that no request against a healthy service can provoke.
NOT_PROVOKED = {
    "CACHE_ERROR": "needs a failing cache",
    "ENCODING_ERROR": "tokenpulse encodes from typed values and has no encoding failure",
    "PRICE_FETCH_ERROR": "needs a supported pair without a price while another has one",
    "ALL_PRICES_FAILED": "needs every requested pair without a price",
}


# --------------------------------------------------------------------- reading the README


def fenced(language: str, text: str = README) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def table(heading: str) -> list[list[str]]:
    """The rows of the first Markdown table after ``heading`` (cells without backticks)."""
    section = README.split(heading, 1)[1]
    rows = []
    for line in section.splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if not set("".join(cells)) <= set("-"):
            rows.append(cells)
    return rows[1:]  # without the header row


@dataclass(frozen=True)
class Curl:
    method: str
    url: str
    headers: dict[str, str]


def curl_examples(text: str) -> list[Curl]:
    examples = []
    for block in fenced("bash", text):
        for line in block.splitlines():
            if not line.startswith("curl "):
                continue
            words = shlex.split(line)[1:]
            method, headers, url = "GET", {}, ""
            while words:
                word = words.pop(0)
                if word == "-X":
                    method = words.pop(0)
                elif word == "-H":
                    name, _, value = words.pop(0).partition(":")
                    headers[name.strip()] = value.strip()
                else:
                    url = word
            examples.append(Curl(method, url, headers))
    return examples


def documented_answers() -> dict[tuple[str, str], dict[int, Any]]:
    """(method, path) -> {status: example body} from the "API Endpoints" section."""
    answers: dict[tuple[str, str], dict[int, Any]] = {}
    for section in README.split("\n### ")[1:]:
        head = section.splitlines()[0]
        if not re.match(r"(GET|POST) /", head):
            continue
        method, target = head.split()
        bodies = re.findall(r"\((\d{3}) [^)]*\):\s*```json\n(.*?)```", section, flags=re.DOTALL)
        answers[(method, urlsplit(target).path)] = {int(s): json.loads(b) for s, b in bodies}
    return answers


def conforms(example: Any, actual: Any, key: str = "") -> list[str]:
    """Where ``actual`` does not have the documented shape (keys, JSON types, fixed words)."""
    if isinstance(example, dict):
        if not isinstance(actual, dict):
            return [f"{key or 'body'}: expected an object, got {actual!r}"]
        return [p for k, v in example.items() for p in conforms(v, actual.get(k), k)]
    if isinstance(example, list):
        if not isinstance(actual, list) or not actual:
            return [f"{key}: expected a non-empty list, got {actual!r}"]
        return [p for item in actual for p in conforms(example[0], item, key)] if example else []
    if isinstance(example, bool):
        return [] if isinstance(actual, bool) else [f"{key}: expected true/false, got {actual!r}"]
    if isinstance(example, int | float):
        number = isinstance(actual, int | float) and not isinstance(actual, bool)
        return [] if number else [f"{key}: expected a JSON number, got {actual!r}"]
    if key in {"status", "service", "cache"}:  # the fixed words probes rely on
        return [] if actual == example else [f"{key}: expected {example!r}, got {actual!r}"]
    return [] if isinstance(actual, str) else [f"{key}: expected a string, got {actual!r}"]


TABLE_DEFAULTS = {row[0]: row[1] for row in table("### Environment Variables")}
SUPPORTED = TABLE_DEFAULTS["SUPPORTED_PAIRS"].split(",")


# --------------------------------------------------------------------- the service


def _base_env() -> dict[str, str]:
    """PATH, and PYTHONPATH when set (a source tree run before the installed package)."""
    keep = ("PATH", "PYTHONPATH")
    return {"PATH": "/usr/bin:/bin"} | {k: os.environ[k] for k in keep if k in os.environ}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tokenpulse", *args],
        capture_output=True,
        text=True,
        env={**_base_env(), **env},
        cwd=cwd,
        timeout=60,
        check=False,
    )


def effective(result: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str]]:
    """NAME -> (value, origin) from ``tokenpulse config check``'s table."""
    assert result.returncode == 0, result.stderr
    rows = {}
    for line in result.stdout.splitlines()[1:]:
        match = re.fullmatch(r"(\S+)\s+(.*?)\s+\((.*)\)", line)
        assert match, line
        rows[match[1]] = (match[2], match[3])
    return rows


@asynccontextmanager
async def serve(tmp_path: Path, env: dict[str, str]) -> AsyncIterator[str]:
    """``tokenpulse serve`` as a process; yields its base URL once /ready answers 200."""
    port = _free_port()
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: ASYNC220 (starting it does not block)
            [sys.executable, "-m", "tokenpulse", "serve"],
            env={**_base_env(), "PORT": str(port), **env},
            cwd=tmp_path,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(timeout=2) as client:

                async def ready() -> bool:
                    assert process.poll() is None, log_path.read_text(errors="replace")
                    with suppress(httpx.TransportError):
                        return (await client.get(f"{base}/ready")).status_code == 200
                    return False

                await wait_for(ready, 30, message="the service answers /ready with 200")
            yield base
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, str]]:
    """Kraken on loopback, and the environment that points tokenpulse at it."""
    async with FakeKrakenWs(heartbeat_interval=0.2) as ws, FakeKrakenRest() as rest:
        yield {"SOURCES": "kraken", "KRAKEN_WS_URL": ws.url, "KRAKEN_REST_URL": rest.base_url}


def go_request(client: httpx.AsyncClient, base: str, curl: Curl) -> Any:
    return client.request(curl.method, curl.url.replace(GO_BASE, base), headers=curl.headers)


def expected_status(curl: Curl) -> int:
    asked = parse_qs(urlsplit(curl.url).query).get("pair", [""])[0]
    return 206 if any(p not in SUPPORTED for p in asked.split(",") if p) else 200


# --------------------------------------------------------------------- the tests


async def test_every_curl_example_answers_as_documented(
    tmp_path: Path, fakes: dict[str, str]
) -> None:
    """The table's defaults as environment, every curl example (auth block aside) as written."""
    answers = documented_answers()
    rest = README.split("## API Endpoints", 1)[1]
    examples = curl_examples(rest)
    assert len(examples) >= 10
    env = {**TABLE_DEFAULTS, **fakes}
    env.pop("PORT")
    async with serve(tmp_path, env) as base, httpx.AsyncClient(timeout=10) as client:
        for curl in examples:
            response = await go_request(client, base, curl)
            path = urlsplit(curl.url).path
            if path == "/metrics":
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/plain")
                continue
            status = expected_status(curl)
            assert response.status_code == status, (curl, response.text)
            body = response.json()
            assert conforms(answers[(curl.method, path)][status], body) == [], (curl, body)
            if path == "/api/v1/ltp":
                requested = parse_qs(urlsplit(curl.url).query).get("pair", [",".join(SUPPORTED)])
                served = {entry["pair"] for entry in body["ltp"]}
                assert served == set(requested[0].split(",")) & set(SUPPORTED)

        # The error codes table, code by code (the 500s need a broken service: see NOT_PROVOKED).
        codes = {row[0]: int(row[2]) for row in table("## Error Codes")}
        assert set(codes) - set(NOT_PROVOKED) == {
            "INVALID_PARAMETER",
            "UNSUPPORTED_PAIR",
            "RATE_LIMIT_EXCEEDED",
        }
        for code, query in (
            ("INVALID_PARAMETER", "pair=,"),
            ("UNSUPPORTED_PAIR", "pair=DOGE/MOON"),
        ):
            response = await client.get(f"{base}/api/v1/ltp?{query}")
            assert response.status_code == codes[code], response.text
            assert response.json()["error"] == code  # the Go service's flat error shape
        capacity = int(TABLE_DEFAULTS["RATE_LIMIT_CAPACITY"])
        # Drain the bucket in concurrent batches: one request at a time on a busy machine lets
        # the refill keep up. A 429 must come once about `capacity` requests are in.
        statuses: list[int] = []
        limited = None
        while limited is None and len(statuses) < 5 * capacity:
            batch = await asyncio.gather(*(client.get(f"{base}/api/v1/ltp") for _ in range(20)))
            statuses += [r.status_code for r in batch]
            limited = next((r for r in batch if r.status_code == 429), None)
        assert statuses[0] == 200
        assert limited is not None, f"no 429 in {len(statuses)} requests"
        assert statuses.index(429) >= capacity // 2  # the bucket held about `capacity`
        assert limited.status_code == codes["RATE_LIMIT_EXCEEDED"]
        assert limited.json()["error"] == "RATE_LIMIT_EXCEEDED"


async def test_authentication_example(tmp_path: Path, fakes: dict[str, str]) -> None:
    """The README's ``export`` lines turn auth on; its three curl lines answer 200."""
    block = README.split("## Authentication", 1)[1].split("## API Endpoints", 1)[0]
    exports = dict(re.findall(r"^export (\w+)=(\S+)", block, flags=re.MULTILINE))
    assert exports.keys() == {"AUTH_ENABLED", "AUTH_API_KEY"}
    async with serve(tmp_path, {**exports, **fakes}) as base, httpx.AsyncClient() as client:
        for curl in curl_examples(block):
            response = await go_request(client, base, curl)
            assert response.status_code == 200, (curl, response.text)
        keyless = await client.get(f"{base}/api/v1/ltp?pair=BTC/USD")
        assert keyless.status_code == 401


def test_configuration_table_is_accepted_as_written(tmp_path: Path) -> None:
    """Each variable of the Go table, set to its documented default, is taken from env."""
    rows = effective(cli("config", "check", env=TABLE_DEFAULTS, cwd=tmp_path))
    for name, documented in TABLE_DEFAULTS.items():
        value, origin = rows[name]
        assert origin == "env", name
        numeric = documented.replace(".", "", 1).isdigit()
        assert (
            (float(value) == float(documented)) if numeric else value.lower() == documented.lower()
        ), name
    levels = re.search(r"Log level: ([a-z, ]+[a-z])", README)
    assert levels is not None
    for level in levels[1].split(", "):
        for spelling in (level, level.upper()):
            setting = load_settings(None, {"LOG_LEVEL": spelling}).settings.log_level
            assert setting.startswith(level)  # warn is tokenpulse's warning


def test_precedence_demo_gives_the_documented_result(tmp_path: Path) -> None:
    """The README's demo YAML and exports, with the Go flag form ``-config FILE``."""
    demo_yaml = fenced("yaml")[0]
    demo_bash = next(block for block in fenced("bash") if "# Result:" in block)
    path_line, *_ = demo_yaml.splitlines()
    config = tmp_path / path_line.removeprefix("# ")
    config.parent.mkdir(parents=True)
    config.write_text(demo_yaml, encoding="utf-8")
    exports = dict(re.findall(r"^export (\w+)=(\S+)", demo_bash, flags=re.MULTILINE))
    flag = re.search(r"main\.go (-config \S+)", demo_bash)
    assert flag is not None
    rows = effective(cli("config", "check", *flag[1].split(), env=exports, cwd=tmp_path))
    result = re.search(r"# Result: Uses (.*)", demo_bash)
    assert result is not None
    names = {"port": "PORT", "backend": "CACHE_BACKEND", "ttl": "CACHE_TTL", "level": "LOG_LEVEL"}
    for item in result[1].split(", "):
        key, value = item.split("=")
        assert rows[names[key]] == (value, "env")
    # Without the exports the file's values apply, each named by its Go key.
    rows = effective(cli("config", "check", *flag[1].split(), env={}, cwd=tmp_path))
    assert rows["PORT"] == ("9000", f"{flag[1].split()[1]} (server.port)")
    assert rows["LOG_LEVEL"] == ("debug", f"{flag[1].split()[1]} (logging.level)")


@pytest.fixture
def go_configs(tmp_path: Path) -> Path:
    for name in ("config.yaml", "config.production.yaml", "config.demo-precedence.yaml"):
        (tmp_path / name).write_bytes((GO / "configs" / name).read_bytes())
    return tmp_path


def test_go_configuration_files_load_unchanged(go_configs: Path) -> None:
    """The Go service's own YAML files, base plus ENVIRONMENT=production."""
    base = load_settings(go_configs / "config.yaml", {})
    s = base.settings
    assert (s.port, s.cache_ttl, s.log_level, s.rate_limit_capacity) == (8080, 30.0, "info", 100)
    assert s.supported_pairs == ["BTC/USD", "ETH/USD", "LTC/USD", "XRP/USD", "BTC/EUR", "ETH/EUR"]
    assert (s.kraken_rest_url, s.kraken_ws_url) == (
        "https://api.kraken.com",
        "wss://ws.kraken.com/v2",
    )
    assert s.redis_key_prefix == "price:"
    assert base.origins["kraken_fallback_timeout"].endswith("(exchange.kraken.fallback_timeout)")
    production = load_settings(
        go_configs / "config.yaml", {"ENVIRONMENT": "Production", "AUTH_ENABLED": "false"}
    )
    p = production.settings
    assert (p.environment, p.log_level, p.cache_backend, p.cache_ttl) == (
        "production",
        "warning",
        "redis",
        300.0,
    )
    assert p.effective_redis_url == "redis://redis-cluster:6379/0"
    assert production.origins["log_level"].endswith("config.production.yaml (logging.level)")
    demo = load_settings(go_configs / "config.demo-precedence.yaml", {}).settings
    assert (demo.rate_limit_enabled, demo.kraken_max_retries, demo.shutdown_timeout) == (
        False,
        2,
        45.0,
    )
