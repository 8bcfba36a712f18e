"""Golden tests for the sans-I/O Kraken REST Trades parser (the per-second backfill's input)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tokenpulse.data import kraken_pair_registry
from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.pairs import Pair
from tokenpulse.sources.kraken.trades import parse_trades_response

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kraken" / "rest"
BTC_USD = Pair("BTC", "USD")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_the_docs_example_gives_exact_prices_times_and_the_next_cursor() -> None:
    result = parse_trades_response(
        load("rest_trades_xxbtzusd_docs_example.json"),
        registry=kraken_pair_registry(),
        pair=BTC_USD,
    )
    assert [t.price for t in result.trades] == [Decimal("3535.50000"), Decimal("3535.40000")]
    assert [t.volume for t in result.trades] == [Decimal("0.00300000"), Decimal("0.09670735")]
    assert result.trades[0].time == datetime(2019, 1, 21, 23, 2, 31, 555600, tzinfo=UTC)
    assert result.last == 1548121745957099006
    assert result.bad_entries == []


def test_a_second_is_filed_with_its_last_trade_and_a_second_without_trade_gets_none() -> None:
    payload = {
        "error": [],
        "result": {
            "XXBTZUSD": [
                ["100.1", "1", 1700000000.2, "b", "m", "", 1],
                ["100.3", "1", 1700000000.9, "s", "l", "", 2],
                ["100.7", "1", 1700000002.5, "b", "m", "", 3],
            ],
            "last": "1700000002500000000",
        },
    }
    result = parse_trades_response(payload, registry=kraken_pair_registry(), pair=BTC_USD)
    assert result.last_price_per_second() == [
        (datetime.fromtimestamp(1700000000, UTC), Decimal("100.3")),
        (datetime.fromtimestamp(1700000002, UTC), Decimal("100.7")),
    ]  # nothing for 1700000001: no trade, no sample


def test_a_malformed_trade_is_skipped_and_recorded() -> None:
    payload = {
        "error": [],
        "result": {
            "XXBTZUSD": [["abc", "1", 1700000000.2, "b", "m", ""], ["1.5", "1", 1700000001.0]],
            "last": "0",
        },
    }
    result = parse_trades_response(payload, registry=kraken_pair_registry(), pair=BTC_USD)
    assert [t.price for t in result.trades] == [Decimal("1.5")]
    assert len(result.bad_entries) == 1


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"error": []},
        {"error": [], "result": {"XETHZUSD": [], "last": "0"}},
        {"error": [], "result": {"XXBTZUSD": {}, "last": "0"}},
    ],
)
def test_a_body_that_is_not_a_trades_answer_for_the_pair_is_refused(payload: object) -> None:
    with pytest.raises(ParseError):
        parse_trades_response(payload, registry=kraken_pair_registry(), pair=BTC_USD)
