"""A new user's first run: `SOURCES=replay` in a fresh directory, as a real process (issue 11).

What they see in the first 30 seconds must look like a live market: every default pair
priced with bid and ask, the LTP and the token price of bitcoin agreeing, ranks in market-cap
order, trends present, history without a jump, time only moving forward (also across the
replay's loop, played fast), and no live database written.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes._loopback import free_port

SRC = Path(__file__).resolve().parents[2] / "src"
DEFAULT_PAIRS = ["BTC/USD", "ETH/USD", "LTC/USD", "XRP/USD"]
FIRST_RUN = 30.0  # seconds: everything below is asserted within this of the start


@contextlib.contextmanager
def first_run(folder: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`python -m tokenpulse serve` with SOURCES=replay in ``folder``, nothing else set."""
    port = free_port()
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(SRC),  # the tree under test
        "SOURCES": "replay",
        "PORT": str(port),
        "LOG_LEVEL": "warning",
        "SHUTDOWN_TIMEOUT": "5s",
        **env,
    }
    log_path = folder / "server.log"
    with log_path.open("wb") as log:  # a file: an unread pipe would block the server
        process = subprocess.Popen(
            [sys.executable, "-m", "tokenpulse", "serve"],
            env=environment,
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield f"http://127.0.0.1:{port}", process
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nserver log:\n{log_path.read_text()[-3000:]}") from exc
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(15)


def poll(client: httpx.Client, deadline: float, check: Callable[[], Any], what: str) -> Any:
    """Call ``check`` until it returns something truthy (transport errors retried)."""
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            last = check()
            if last:
                return last
        time.sleep(0.1)
    raise AssertionError(f"not within {FIRST_RUN:g} s of the start: {what} (last: {last!r})")


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_what_a_new_user_sees_in_the_first_30_seconds(tmp_path: Path) -> None:
    started = time.monotonic()
    deadline = started + FIRST_RUN
    with first_run(tmp_path) as (base, process), httpx.Client(base_url=base, timeout=3) as http:

        def priced() -> list[dict[str, Any]] | None:
            response = http.get("/api/v1/ltp")
            if response.status_code != 200:
                return None
            entries: list[dict[str, Any]] = response.json()["ltp"]
            return entries if [e["pair"] for e in entries] == DEFAULT_PAIRS else None

        ltp = poll(http, deadline, priced, "every default pair priced")
        for entry in ltp:
            assert entry["bid"] is not None, entry
            assert entry["ask"] is not None, entry
            assert entry["bid"] <= entry["amount"] <= entry["ask"], entry
            assert entry["stale"] is False
            assert entry["source"] == "replay"
            assert abs(instant(entry["as_of"]) - datetime.now(UTC)) < timedelta(minutes=5)

        def with_trends() -> dict[str, Any] | None:
            token = http.get("/api/v1/tokens/bitcoin").json()["data"]
            windows = token["trends"]
            present = all(windows[w]["change_pct"] is not None for w in ("1h", "4h", "12h", "7d"))
            return token if present else None

        bitcoin = poll(http, deadline, with_trends, "bitcoin's 1h/4h/12h/7d trends")
        btc_usd = http.get("/api/v1/ltp", params={"pair": "BTC/USD"}).json()["ltp"][0]
        assert abs(btc_usd["amount"] / bitcoin["price_usd"] - 1) < 0.02
        assert abs(instant(bitcoin["as_of"]) - datetime.now(UTC)) < timedelta(minutes=5)
        assert bitcoin["stale"] is False
        # CoinMarketCap's id for bitcoin resolves although CoinGecko data serves it.
        assert http.get("/api/v1/tokens/1").json()["data"]["id"] == "bitcoin"

        tokens = http.get("/api/v1/tokens", params={"limit": 100, "sort": "rank"}).json()["data"]
        assert len(tokens) == 100
        assert [t["rank"] for t in tokens] == list(range(1, 101))
        caps = [t["market_cap_usd"] for t in tokens]
        assert caps == sorted(caps, reverse=True)

        end = datetime.now(UTC) + timedelta(minutes=1)
        history = http.get(
            "/api/v1/tokens/bitcoin/history",
            params={"from": (end - timedelta(days=7)).isoformat(), "to": end.isoformat()},
        ).json()["data"]
        prices = [p.get("close") or p.get("price") for p in history["points"]]
        assert len(prices) > 100  # seeded from the recording's earlier part, then live
        jumps = [abs(b / a - 1) for a, b in pairwise(prices)]
        assert max(jumps) <= 0.20
        assert time.monotonic() - started <= FIRST_RUN
        assert process.poll() is None

    assert (tmp_path / "data" / "replay.db").is_file()
    assert not (tmp_path / "data" / "tokenpulse.db").exists()  # the live database untouched


def test_time_only_moves_forward_across_the_loop(tmp_path: Path) -> None:
    # The recorded window (123 h) plays in under 9 s at 50 000x: a few loops in 15 s.
    deadline = time.monotonic() + FIRST_RUN
    seen: list[tuple[datetime, float]] = []
    token_times: list[datetime] = []
    with (
        first_run(tmp_path, REPLAY_SPEED="50000", RATE_LIMIT_ENABLED="false") as (base, _),
        httpx.Client(base_url=base, timeout=3) as http,
    ):
        poll(http, deadline, lambda: http.get("/health").status_code == 200, "a healthy server")

        def looped() -> bool:
            btc = http.get("/api/v1/ltp", params={"pair": "BTC/USD"})
            if btc.status_code == 200:
                entry = btc.json()["ltp"][0]
                seen.append((instant(entry["as_of"]), entry["amount"]))
            token = http.get("/api/v1/tokens/bitcoin")
            if token.status_code == 200:
                token_times.append(instant(token.json()["data"]["as_of"]))
            market = http.get("/api/v1/sources").json()["data"]["market"]
            return int(market["loop"]) >= 2

        poll(http, deadline, looped, "two loops of the recording")

    assert len(seen) > 20
    stamps = [stamp for stamp, _ in seen]
    assert stamps == sorted(stamps), "an LTP timestamp went back"
    assert token_times == sorted(token_times), "a token as_of went back"
    # Re-anchored at the loop: no jump back to the first recorded price.
    amounts = [amount for _, amount in seen]
    assert max(abs(b / a - 1) for a, b in pairwise(amounts)) < 0.05


def test_a_live_start_refuses_the_replay_database(tmp_path: Path) -> None:
    with first_run(tmp_path) as (base, _), httpx.Client(base_url=base, timeout=3) as http:
        deadline = time.monotonic() + FIRST_RUN
        poll(http, deadline, lambda: http.get("/api/v1/ltp").status_code == 200, "prices")
    replay_db = tmp_path / "data" / "replay.db"
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(SRC),
        "SOURCES": "kraken",
        "KRAKEN_WS_URL": "ws://127.0.0.1:9/v2",  # never reached: the start is refused first
        "DATABASE_URL": "sqlite+aiosqlite:///data/replay.db",
        "PORT": str(free_port()),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tokenpulse", "serve"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    last = result.stderr.decode().strip().splitlines()[-1]
    assert last.startswith("tokenpulse: DATABASE_URL: the file data/replay.db holds replayed")
    assert "leave DATABASE_URL unset for SOURCES=replay" in last
    assert replay_db.is_file()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx must talk to the local server directly, whatever the environment says."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
