"""The Python client (clients/python, ``tokenpulse_client``) against the app on a real port:
every call returns typed values (Decimal, aware datetime), errors are typed, pagination,
``numbers="string"``, retries honouring ``Retry-After``, pandas frames and an SSE stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_ltp_api import kraken
from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.helpers import wait_for
from tests.server import RunningApp, app_settings, running_app
from tokenpulse_client import (
    AsyncTokenpulseClient,
    BadRequest,
    History,
    NotFound,
    RateLimited,
    StaleData,
    TokenpulseClient,
    Unauthorized,
    Update,
    UpstreamError,
)

DEADLINE = 15.0
KEY = "tp_test_key_0123456789"
# Kraken on a closed port: the app starts and answers, with no market data (auth, limits).
OFFLINE = {"kraken_ws_url": "ws://127.0.0.1:1/v2", "kraken_rest_url": "http://127.0.0.1:1"}


def replay_settings(tmp_path: Path, **overrides: Any) -> Any:
    """The bundled replay, its history in a file of this test's own."""
    return app_settings(
        sources="replay",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'history.db'}",
        **overrides,
    )


@pytest.fixture
async def replay_app(tmp_path: Path) -> AsyncIterator[RunningApp]:
    async with running_app(replay_settings(tmp_path)) as app:
        await wait_for(app.container.tokens.views, DEADLINE, message="replayed token metrics")
        await wait_for(app.container.prices.views, DEADLINE, message="replayed prices")
        yield app


async def test_every_read_call_returns_typed_values(replay_app: RunningApp) -> None:
    async with AsyncTokenpulseClient(replay_app.base_url) as tp:
        health = await tp.health()
        assert health.status == "healthy"
        assert health.timestamp is not None
        assert health.timestamp.tzinfo is not None
        readiness = await tp.ready()
        assert readiness.ready is True
        assert readiness.services["cache"] == "ready"

        prices = await tp.ltp(["btc-usd"])
        btc = prices["BTC/USD"]
        assert isinstance(btc.amount, Decimal)
        assert btc.amount > 0
        assert btc.source == "replay"
        assert btc.received_at is not None
        assert btc.received_at.tzinfo is not None
        assert btc.raw["amount"] == btc.amount  # JSON numbers are read as Decimal
        assert "BTC/USD" in {p.pair for p in (await tp.cached()).prices}

        pairs = await tp.pairs()
        assert [p.pair for p in pairs][:1] == ["BTC/USD"]
        assert pairs[0].providers["kraken"]["rest"] == "XXBTZUSD"
        assert "replay" in {s["name"] for s in (await tp.sources())["sources"]}

        page = await tp.tokens(limit=3, sort="market_cap", order="desc")
        assert [t.id for t in page.tokens][:1] == ["bitcoin"]
        assert page.limit == 3
        assert page.next is not None
        bitcoin = await tp.token("BTC")
        assert bitcoin.id == "bitcoin"
        assert isinstance(bitcoin.market_cap_usd, Decimal)
        assert isinstance(bitcoin.velocity, Decimal)
        assert bitcoin.as_of is not None

        velocity = await tp.velocity("bitcoin")
        assert velocity.velocity == bitcoin.velocity or velocity.velocity is not None
        assert set(velocity.trends) == {"1h", "4h", "12h", "7d"}
        assert velocity.formula == "volume_24h_usd / market_cap_usd"

        now = datetime.now(UTC)
        month = {"start": now - timedelta(days=30), "end": now, "granularity": "1d"}
        found: list[History] = []

        async def backfilled() -> bool:  # the replay's recorded daily history, written at start
            found.append(await tp.history("bitcoin", **month))  # type: ignore[arg-type]
            return bool(found[-1].points)

        await wait_for(backfilled, DEADLINE, message="backfilled history")
        history = found[-1]
        assert history.granularity == "1d"
        assert history.start == month["start"].replace(microsecond=now.microsecond // 1000 * 1000)
        assert all(p.t.tzinfo is not None for p in history.points)
        assert all(isinstance(p.close, Decimal) for p in history.points)
        assert [p.t for p in history.points] == sorted(p.t for p in history.points)


async def test_errors_are_typed(replay_app: RunningApp) -> None:
    async with AsyncTokenpulseClient(replay_app.base_url) as tp:
        with pytest.raises(NotFound) as missing:
            await tp.token("nosuchcoin")
        assert missing.value.code == "TOKEN_NOT_FOUND"
        assert missing.value.request_id
        with pytest.raises(BadRequest) as unsupported:
            await tp.ltp("DOGE/MOON")
        assert unsupported.value.code == "UNSUPPORTED_PAIR"
        with pytest.raises(BadRequest) as bad:
            await tp.history("bitcoin", granularity="1m", start="2020-01-01T00:00:00Z")
        assert bad.value.code == "INVALID_PARAMETER"
        with pytest.raises(UpstreamError) as refresh:  # replay has no Kraken REST to call
            await tp.refresh(["BTC/USD"])
        assert refresh.value.code == "PRICE_FETCH_ERROR"

        stale: list[StaleData] = []

        async def stale_once() -> bool:
            try:
                await tp.ltp("BTC/USD", max_age_ms=1)
            except StaleData as exc:
                stale.append(exc)
            return bool(stale)

        await wait_for(stale_once, DEADLINE, message="a price older than 1 ms")
        assert stale[0].retry_after is not None
        assert stale[0].status == 503


async def test_numbers_string_gives_the_exact_decimals(replay_app: RunningApp) -> None:
    async with AsyncTokenpulseClient(replay_app.base_url, numbers="string") as tp:
        btc = (await tp.ltp("BTC/USD"))["BTC/USD"]
        assert isinstance(btc.raw["amount"], str)
        assert btc.amount == Decimal(btc.raw["amount"])
        bitcoin = await tp.token("bitcoin")
        assert isinstance(bitcoin.raw["market_cap_usd"], str)
        assert bitcoin.market_cap_usd == Decimal(bitcoin.raw["market_cap_usd"])
    with pytest.raises(ValueError, match="numbers"):
        AsyncTokenpulseClient(replay_app.base_url, numbers="float")  # type: ignore[arg-type]


async def test_the_sync_client_pages_through_every_token_and_makes_frames(
    tmp_path: Path,
) -> None:
    # A slow replay: the ranking does not move while the client pages through it.
    async with running_app(replay_settings(tmp_path, replay_speed=0.01)) as app:
        await wait_for(app.container.tokens.views, DEADLINE, message="replayed token metrics")

        def work() -> tuple[int, list[str], Any, Any]:
            with TokenpulseClient(app.base_url) as tp:
                total = tp.tokens(limit=1).total
                ids = [t.id for t in tp.iter_tokens(page_size=25, sort="rank", order="asc")]
                frame = tp.history_frame("bitcoin", granularity="1d")
                tokens = tp.tokens_frame(page_size=50, min_market_cap=1e9)
                assert total is not None
                return total, ids, frame, tokens

        total, ids, frame, tokens = await asyncio.to_thread(work)
    assert total > 25  # more than one page
    assert len(ids) == total
    assert len(set(ids)) == total
    assert ids[0] == "bitcoin"
    assert "UTC" in str(frame.index.dtype)
    assert frame["close"].dtype == "float64"
    assert (tokens["market_cap_usd"] >= 1e9).all()
    assert tokens.loc["bitcoin", "symbol"] == "BTC"


async def test_rate_limited_calls_are_retried_after_retry_after() -> None:
    settings = app_settings(**OFFLINE, rate_limit_capacity=2, rate_limit_refill_rate=1)
    async with running_app(settings) as app:
        async with AsyncTokenpulseClient(app.base_url) as tp:

            async def exhaust() -> RateLimited:
                for _ in range(50):  # the bucket refills 1 token/s; calls take milliseconds
                    try:
                        await tp.pairs()
                    except RateLimited as exc:
                        return exc
                raise AssertionError("never rate limited")

            limited = await exhaust()
            assert limited.retry_after is not None
            assert limited.retry_after > 0
        async with AsyncTokenpulseClient(app.base_url, retries=5) as patient:
            started = time.monotonic()
            for _ in range(3):  # past the bucket: the client waits as told, then succeeds
                assert await patient.pairs()
            assert time.monotonic() - started >= 0.5


async def test_a_missing_key_is_unauthorized() -> None:
    settings = app_settings(**OFFLINE, auth_enabled="true", auth_api_key=KEY)
    async with running_app(settings) as app:
        async with AsyncTokenpulseClient(app.base_url) as anonymous:
            with pytest.raises(Unauthorized):
                await anonymous.sources()
            assert (await anonymous.health()).status == "healthy"  # stays open
        async with AsyncTokenpulseClient(app.base_url, api_key=KEY) as keyed:
            assert await keyed.sources()


async def test_refresh_returns_the_refreshed_pairs(
    kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest
) -> None:
    settings = app_settings(**kraken(kraken_ws, kraken_rest))
    async with running_app(settings) as app, AsyncTokenpulseClient(app.base_url) as tp:
        result = await tp.refresh(["ETH/USD", "BTC/USD"])
        assert result.pairs == ["ETH/USD", "BTC/USD"]
        assert result.message == "Prices refreshed successfully"


async def test_the_sse_stream_needs_only_httpx(replay_app: RunningApp) -> None:
    updates: list[Update] = []
    async with AsyncTokenpulseClient(replay_app.base_url) as tp:
        stream = tp.stream(pairs=["BTC/USD"], tokens=["bitcoin"], transport="sse")

        async def consume() -> None:
            async for update in stream:
                updates.append(update)

        consumer = asyncio.create_task(consume())
        try:
            kinds: Callable[[], set[str]] = lambda: {u.kind for u in updates}  # noqa: E731
            await wait_for(lambda: kinds() == {"pair", "token"}, DEADLINE)
        finally:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
    pair = next(u for u in updates if u.kind == "pair")
    assert (pair.id, pair.type) == ("BTC/USD", "snapshot")
    assert pair.state["amount"] > 0
