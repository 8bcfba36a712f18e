"""Every example in examples/ runs against a replay service, prints real values and exits 0.

An example whose runtime (node, java, php, curl) is missing is skipped, unless
REQUIRE_SERVICES=1 (CI, where .ci/run installs them): then it fails."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e._replay import ReplayService, child_env, replay_service
from tests.fakes._loopback import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CHROMIUM = Path("/usr/bin/chromium")
PRICE = r"BTC/USD: \d+(\.\d+)?\b"  # a JSON number: 27842 has no decimals


@dataclass(frozen=True)
class Example:
    name: str
    runtime: str
    argv: list[str]
    expected: list[str]  # regular expressions the output must match


EXAMPLE_LIST = [
    Example("python-rest", "python", [sys.executable, "python/rest.py"], [PRICE, r"velocity"]),
    Example(
        "python-stream",
        "python",
        [sys.executable, "python/stream.py", "3"],
        [r"snapshot .* seq=\d+ price=\d"],
    ),
    Example(
        "python-history-pandas",
        "python",
        [sys.executable, "python/history_pandas.py"],
        [r"mean velocity over \d+ days: 0\.\d+"],
    ),
    Example("node-rest", "node", ["node", "javascript/rest.mjs"], [PRICE, r"#1 BTC: \$\d"]),
    Example(
        "node-stream", "node", ["node", "javascript/stream.mjs", "3"], [r"snapshot BTC/USD seq="]
    ),
    Example(
        "curl-every-endpoint", "curl", ["bash", "curl/endpoints.sh"], [r"every endpoint answered"]
    ),
    Example("java", "java", ["java", "java/Example.java"], [PRICE, r"SSE \[snapshot\]", r"done"]),
    Example("php", "php", ["php", "php/example.php"], [PRICE, r"SSE snapshot BTC/USD", r"done"]),
]


def runtime_missing(runtime: str) -> str | None:
    """Why ``runtime`` cannot run examples here, or None."""
    if runtime == "python":
        return None
    if shutil.which(runtime) is None:
        return f"{runtime} is not installed"
    if runtime == "php":
        probe = subprocess.run(
            ["php", "-r", "exit(function_exists('curl_init') ? 0 : 1);"], check=False, timeout=30
        )
        if probe.returncode != 0:
            return "php's curl extension (php-curl) is not installed"
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Not on the test's output."""


@pytest.fixture(scope="module")
def page_server() -> Iterator[str]:
    """examples/javascript over HTTP on loopback: the origin of the browser example."""
    handler = functools.partial(_QuietHandler, directory=str(EXAMPLES / "javascript"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, page_server: str) -> Iterator[ReplayService]:
    with replay_service(tmp_path_factory.mktemp("examples"), CORS_ORIGINS=page_server) as running:
        yield running


@pytest.mark.parametrize("example", EXAMPLE_LIST, ids=[e.name for e in EXAMPLE_LIST])
def test_the_example_prints_real_values(service: ReplayService, example: Example) -> None:
    missing = runtime_missing(example.runtime)
    if missing:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"{missing} (REQUIRE_SERVICES=1: .ci/run installs it)")
        pytest.skip(missing)
    result = subprocess.run(
        example.argv,
        cwd=EXAMPLES,
        env=child_env(TOKENPULSE_URL=service.base_url),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for pattern in example.expected:
        assert re.search(pattern, result.stdout), f"{pattern!r} not in:\n{output}"


def test_the_browser_page_streams_prices(service: ReplayService, page_server: str) -> None:
    if not CHROMIUM.exists():
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("Debian's chromium is not installed (.ci/run installs it)")
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{page_server}/browser.html?url={service.base_url}")
            page.wait_for_selector("#tokens li", timeout=15_000)
            row = page.locator('[id="BTC/USD"] td').nth(1)
            row.wait_for(timeout=15_000)
            first = row.inner_text()
            assert float(first) > 0
            assert page.locator("#status").inner_text() == "live"
            assert "BTC" in page.locator("#tokens").inner_text()
        finally:
            browser.close()
    assert not errors, errors
