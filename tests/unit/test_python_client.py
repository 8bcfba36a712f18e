"""The Python client's pure parts: error mapping, retry policy, typed models, and the
``tokenpulse watch`` board (the HTTP side runs against the real app in tests/e2e)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tokenpulse.cli_watch import DOWN, UP, Board, render, split_targets
from tokenpulse_client import (
    AmbiguousToken,
    APIError,
    NotFound,
    RateLimited,
    ServerError,
    StaleData,
    Token,
    Unavailable,
    UpstreamError,
)
from tokenpulse_client._calls import decode, time_param
from tokenpulse_client._config import ClientConfig
from tokenpulse_client._token_models import History, Velocity


def error(status: int, body: bytes, headers: dict[str, str] | None = None) -> APIError:
    with pytest.raises(APIError) as raised:
        decode(status, body, headers or {}, (200,))
    return raised.value


def test_answers_map_to_the_most_specific_error() -> None:
    missing = error(404, b'{"status":"error","error":{"code":"TOKEN_NOT_FOUND","message":"x"}}')
    assert type(missing) is NotFound
    assert missing.code == "TOKEN_NOT_FOUND"
    stale = error(503, b'{"error":"STALE_DATA","message":"old"}', {"Retry-After": "2"})
    assert type(stale) is StaleData
    assert isinstance(stale, Unavailable)
    assert stale.retry_after == 2.0
    limited = error(429, b'{"error":"RATE_LIMIT_EXCEEDED","message":"slow"}', {"retry-after": "7"})
    assert type(limited) is RateLimited
    assert limited.retry_after == 7.0
    assert type(error(502, b'{"error":"PRICE_FETCH_ERROR","message":"x"}')) is UpstreamError
    assert type(error(500, b"<html>")) is ServerError
    assert type(error(418, b"")) is APIError
    ambiguous = error(
        409,
        b'{"status":"error","error":{"code":"AMBIGUOUS_TOKEN","message":"HOT",'
        b'"details":{"symbol":"HOT","candidates":[{"id":"holotoken"},{"id":"hydro-protocol"}]}}}',
    )
    assert isinstance(ambiguous, AmbiguousToken)
    assert ambiguous.candidates == ["holotoken", "hydro-protocol"]


def test_retries_wait_as_told_capped_and_only_on_429_and_503() -> None:
    config = ClientConfig("http://x", None, "number", 2, 0.5, 10.0)
    limited = error(429, b"{}", {"Retry-After": "3"})
    assert config.retry_delay(limited, 0) == 3.0
    assert config.retry_delay(limited, 2) is None  # retries used up
    assert config.retry_delay(error(429, b"{}", {"Retry-After": "120"}), 0) == 10.0
    assert config.retry_delay(error(503, b"{}"), 1) == 1.0  # no Retry-After: doubling backoff
    assert config.retry_delay(error(404, b"{}"), 0) is None
    with pytest.raises(ValueError, match="retries"):
        ClientConfig("http://x", None, "number", -1, 0.5, 10.0)


def test_models_read_decimals_exact_and_times_aware() -> None:
    data: dict[str, Any] = {
        "id": "bitcoin",
        "symbol": "BTC",
        "price_usd": "16923.38287008033",  # numbers=string
        "market_cap_usd": Decimal("326498242602.6305"),  # a JSON number read as Decimal
        "velocity": 0.0518575782184,
        "rank": 1,
        "as_of": "2022-12-04T00:00:00.000Z",
        "stale": False,
        "quality": {"flags": ["low_market_cap"]},
    }
    token = Token.from_json(data)
    assert token.price_usd == Decimal("16923.38287008033")
    assert token.market_cap_usd == Decimal("326498242602.6305")
    assert token.as_of == datetime(2022, 12, 4, tzinfo=UTC)
    assert token.flags == ("low_market_cap",)
    assert token.volume_24h_usd is None
    history = History.from_json(
        {
            "id": "bitcoin",
            "granularity": "raw",
            "points": [{"t": "2026-12-06T00:00:00.000Z", "price": 1.5, "origin": "backfill"}],
            "gaps": [{"from": "2026-12-05T00:00:00Z", "to": "2026-12-06T00:00:00Z"}],
        }
    )
    assert history.points[0].close == Decimal("1.5")
    assert history.points[0].origin == "backfill"
    assert history.gaps[0][0] == datetime(2026, 12, 5, tzinfo=UTC)
    velocity = Velocity.from_json(
        {
            "id": "bitcoin",
            "velocity": 0.05,
            "trends": {"7d": {"direction": "increasing", "change_pct": 216.1}},
            "window": {"points": [["2026-12-06T00:00:00.000Z", 0.028]]},
        }
    )
    assert velocity.trends["7d"].direction == "increasing"
    assert velocity.window[0][1] == Decimal("0.028")


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        time_param(datetime(2026, 1, 1))  # noqa: DTZ001
    assert time_param(1_700_000_000) == "1700000000"


def test_watch_splits_targets_and_draws_moves_and_staleness() -> None:
    assert split_targets(["BTC/USD", "ETH", "bitcoin", "eth-usd"]) == (
        ["BTC/USD", "eth-usd"],
        ["ETH", "bitcoin"],
    )
    board = Board("http://x", stale_after_ms=60_000)
    board.apply("pair", "BTC/USD", {"amount": 100.0, "age_ms": 5, "stale": False}, None)
    board.apply("pair", "BTC/USD", {"amount": 101.0, "age_ms": 5, "stale": False}, None)
    board.apply("token", "bitcoin", {"price_usd": 10, "velocity": 0.5, "stale": True}, None)
    board.apply("token", "bitcoin", {"price_usd": 9, "velocity": 0.4, "stale": True}, None)
    assert board.rows[("pair", "BTC/USD")].price_move == UP
    assert board.rows[("token", "bitcoin")].price_move == DOWN
    assert board.rows[("token", "bitcoin")].velocity_move == DOWN
    board.status("connected")
    board.status("reconnecting")
    assert board.reconnects == 1
    from rich.console import Console

    console = Console(width=140, record=True)
    console.print(render(board))
    text = console.export_text()
    assert "reconnecting" in text
    assert "STALE" in text  # the token the service flagged stale
    assert "101.00 ▲" in text
