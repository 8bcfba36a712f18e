"""The Kraken WS v2 parser's fast path keeps every digit, and gives way where it must.

Frames are decoded by orjson and the kept market values are read from their own digits in
the frame (``sources/_feed.exact_numbers``); a frame where that is ambiguous is decoded again
with ``parse_float=Decimal``. Either way the Decimals are those of the digits Kraken sent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenpulse.data import kraken_pair_registry
from tokenpulse.domain.events import TickerUpdated
from tokenpulse.domain.ticker import Ticker
from tokenpulse.sources._feed import decode_frame, exact_numbers, number_pattern
from tokenpulse.sources.kraken.ws_parser import parse_ws_v2

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kraken"
RECORDED = (FIXTURES / "ws_v2_ticker_from_recorded_values.jsonl").read_text("utf-8").splitlines()
REGISTRY = kraken_pair_registry()
RECEIVED_AT = datetime(2026, 2, 14, 12, 0, tzinfo=UTC)
KEYS = ("last", "bid", "ask", "volume", "vwap")


def tickers(raw: str | bytes) -> list[Ticker]:
    result = parse_ws_v2(raw, source="kraken_ws", received_at=RECEIVED_AT, registry=REGISTRY)
    assert not result.errors, result.errors
    return [m.ticker for m in result.messages if isinstance(m, TickerUpdated)]


def digits(ticker: Ticker) -> tuple[str | None, ...]:
    values = (ticker.last, ticker.bid, ticker.ask, ticker.volume_24h, ticker.vwap)
    return tuple(None if v is None else str(v) for v in values)


def written(frame: str) -> list[tuple[str | None, ...]]:
    """What the standard library reads with parse_float=Decimal: the digits as written."""
    data = json.loads(frame, parse_float=Decimal)["data"]
    return [tuple(None if entry.get(k) is None else str(entry[k]) for k in KEYS) for entry in data]


@pytest.mark.parametrize("frame", [f for f in RECORDED if '"ticker"' in f])
def test_recorded_frames_keep_every_digit(frame: str) -> None:
    assert [digits(t) for t in tickers(frame)] == written(frame)
    assert [digits(t) for t in tickers(frame.encode())] == written(frame)


def test_trailing_zeros_survive_the_fast_path() -> None:
    (ticker,) = tickers(RECORDED[0])  # BTC/USD, "last":69767.60000
    assert str(ticker.last) == "69767.60000"
    assert str(ticker.vwap) == "69514.55995"


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        pytest.param(  # a backslash: quotes may be escaped, so the frame is read exactly
            '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD",'
            '"note":"x\\"last\\":2.0","last":1.50}]}',
            ("1.50", None, None, None, None),
            id="escaped-quote",
        ),
        pytest.param(  # the key twice (nested elsewhere): read exactly
            '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD",'
            '"extra":{"last":2.0},"last":1.50}]}',
            ("1.50", None, None, None, None),
            id="nested-key",
        ),
        pytest.param(
            '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","last" : 1.50 ,'
            '"bid":\t1.4900}]}',
            ("1.50", "1.4900", None, None, None),
            id="whitespace",
        ),
        pytest.param(
            '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","last":1.5E+2,'
            '"ask":2e-3,"volume":7}]}',
            ("1.5E+2", None, "0.002", "7", None),
            id="exponents-and-integers",
        ),
        pytest.param(  # beyond a double: orjson refuses, the exact decoder reads it
            '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","last":1e400}]}',
            ("1E+400", None, None, None, None),
            id="beyond-a-double",
        ),
        pytest.param(  # more digits than a double holds
            '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD",'
            '"last":69767.600000000000000000001}]}',
            ("69767.600000000000000000001", None, None, None, None),
            id="long-digits",
        ),
    ],
)
def test_ambiguous_or_unusual_frames_give_the_written_digits(
    frame: str, expected: tuple[str | None, ...]
) -> None:
    assert [digits(t) for t in tickers(frame)] == [expected]


def test_several_entries_are_read_exactly() -> None:
    frame = (
        '{"channel":"ticker","type":"snapshot","data":['
        '{"symbol":"BTC/USD","last":69767.60000,"bid":69767.50000},'
        '{"symbol":"ETH/USD","last":2084.53000,"bid":2084.14000}]}'
    )
    assert [digits(t) for t in tickers(frame)] == written(frame)


def test_exact_numbers_reports_what_it_cannot_do() -> None:
    pattern = number_pattern(KEYS)
    frame = '{"data":[{"last":1.50,"x":{"last":1.5}}]}'
    assert exact_numbers(decode_frame(frame)["data"], frame, KEYS, pattern) is False
    frame = '{"data":[{"last":1.50}]}'
    entries = decode_frame(frame)["data"]
    assert exact_numbers(entries, frame, KEYS, pattern) is True
    assert str(entries[0]["last"]) == "1.50"


amounts = st.decimals(
    min_value=Decimal("0"), max_value=Decimal("1e12"), allow_nan=False, allow_infinity=False
)


@settings(max_examples=200, deadline=None)
@given(st.lists(amounts, min_size=5, max_size=5), st.integers(0, 6))
def test_any_written_amount_keeps_its_digits(values: list[Decimal], zeros: int) -> None:
    texts = [format(v, "f") + ("0" * zeros if "." in format(v, "f") else "") for v in values]
    fields = ",".join(f'"{k}":{t}' for k, t in zip(KEYS, texts, strict=True))
    frame = (
        '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD",'
        + fields
        + ',"timestamp":"2026-02-14T00:00:00.000000Z"}]}'
    )
    assert [digits(t) for t in tickers(frame)] == written(frame)
