"""Token replay: the bundled recordings through the real parsers, history rows and their quirks."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import FakeClock, wait_for
from tokenpulse.data import data_path
from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.tokens import TokenQuote
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources.coingecko.client import parse_markets
from tokenpulse.sources.replay.tokens import (
    HISTORY_FILES,
    MarketReplaySource,
    history_coin_ids,
    history_rows,
    parse_history_csv,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
# The recorded fixture set, where a checkout has it beside the repository (CI does).
SHARED = Path(__file__).resolve().parents[3] / "shared" / "fixtures"


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --------------------------------------------------------------------------- history rows


def test_bitcoin_history_keeps_digits_and_quirks() -> None:
    rows = history_rows("bitcoin")

    assert len(rows) == 3867
    first, second = rows[0], rows[1]
    assert first.at == day("2013-04-28")
    assert (str(first.price), str(first.market_cap), str(first.volume)) == (
        "135.3",
        "1500517590",
        "0",
    )
    assert str(second.market_cap) == "1575032004.0"
    assert str(second.volume) == "0.0"  # "0" and "0.0" stay as written
    by_time = {row.at: row for row in rows}
    assert by_time[day("2017-04-02")].market_cap is None  # the empty cell
    assert str(by_time[day("2017-04-02")].price) == "1098.0679999999998"
    assert day("2017-06-06T23:29:55") in by_time  # stamped off midnight, kept as is
    assert day("2013-06-04") not in by_time  # a missing day stays missing
    assert rows[-1].at == day("2023-11-30")
    assert str(rows[-1].price) == "37810.34641654128"


def test_every_coin_has_history_and_unknown_coins_have_none() -> None:
    assert history_coin_ids() == sorted(HISTORY_FILES)
    for coin in HISTORY_FILES:
        rows = history_rows(coin)
        assert rows, coin
        assert rows[-1].at == day("2023-11-30")
    assert history_rows("dogecoin") == []
    rows = history_rows("ethereum")
    rows.clear()  # a caller's copy: the cache is not touched
    assert history_rows("ethereum")


def test_history_csv_quirks_and_bad_lines() -> None:
    lines = [
        "snapped_at,price,market_cap,total_volume",
        "2015-04-26 00:00:00 UTC,1.3954418147213393e-06,,0",
        "2018-01-30 00:05:18 UTC,11095.2106891266,186776632503.01822,2321424679.531806",
        "",
        "yesterday,1,2,3",
        "2018-02-01 00:00:00 UTC,,2,3",
        "2018-02-02 00:00:00 UTC,1,2",
        "2018-02-03 00:00:00 UTC,abc,2,3",
    ]

    rows, errors = parse_history_csv(lines, name="x.csv")

    assert [row.at for row in rows] == [day("2015-04-26"), day("2018-01-30T00:05:18")]
    assert rows[0].price == Decimal("1.3954418147213393e-06")
    assert rows[0].market_cap is None
    assert [error.kind for error in errors] == [
        "history_time",
        "history_row",
        "history_row",
        "history_number",
    ]
    assert "x.csv:5" in str(errors[0])


def test_history_csv_with_a_wrong_header_is_refused() -> None:
    with pytest.raises(ParseError) as caught:
        parse_history_csv(["date,close", "2020-01-01,1"], name="other.csv")
    assert caught.value.kind == "history_header"


@pytest.mark.skipif(not SHARED.exists(), reason="shared fixture set not mounted")
def test_bundled_files_are_unchanged_copies() -> None:
    pairs = [
        ("coins_markets_usd_2021-06-24_top100.json", "coingecko"),
        ("listings_latest_2021-08-31_top100.json", "coinmarketcap"),
    ]
    for name, folder in pairs:
        assert (data_path("replay") / name).read_bytes() == (SHARED / folder / name).read_bytes()
    for name in HISTORY_FILES.values():
        shared = SHARED / "history" / "coingecko_export_until_2023-11-30" / name
        assert (data_path("replay") / "history" / name).read_bytes() == shared.read_bytes()


# --------------------------------------------------------------------------- the replay


@pytest.fixture(scope="module")
def loaded() -> MarketReplaySource:
    source = MarketReplaySource(
        sink=lambda quotes: None, interval=60, speed=60, metrics=None, now=lambda: NOW
    )
    source.load()
    return source


@pytest.fixture
def replay(loaded: MarketReplaySource) -> MarketReplaySource:
    loaded.batches = 0
    return loaded


def by_symbol(quotes: list[TokenQuote]) -> dict[str, TokenQuote]:
    return {quote.symbol: quote for quote in quotes}


def test_a_batch_is_the_coingecko_top_100_plus_cmc_only_coins(replay: MarketReplaySource) -> None:
    quotes = replay.next_batch()

    assert len(quotes) == 113
    symbols = [quote.symbol for quote in quotes]
    assert len(set(symbols)) == 113  # no coin twice
    assert {quote.source for quote in quotes} == {"replay"}
    assert {quote.received_at for quote in quotes} == {NOW}
    extras = [quote for quote in quotes if quote.cmc_id is not None]
    assert sorted(quote.symbol for quote in extras) == [
        "AR", "AUDIO", "AXS", "BTCB", "CELO", "CRV", "FLOW", "KCS", "ONT", "PERP", "REV", "RVN",
        "SC",
    ]  # fmt: skip
    assert all(quote.coingecko_id is None for quote in extras)


def test_coins_without_history_are_exactly_what_the_parser_reads(
    replay: MarketReplaySource,
) -> None:
    payload = json.loads(
        (data_path("replay") / "coins_markets_usd_2021-06-24_top100.json").read_text(),
        parse_float=Decimal,
    )
    parsed = by_symbol(parse_markets(payload, received_at=NOW, source="replay").quotes)

    first, second = by_symbol(replay.next_batch()), by_symbol(replay.next_batch())

    for symbol in ("USDT", "DOGE", "DOT", "UNI"):
        assert first[symbol] == parsed[symbol] == second[symbol]
    assert first["USDT"].as_of == datetime(2021, 6, 24, 3, 5, 22, 478000, tzinfo=UTC)


def test_history_coins_walk_through_recorded_days(replay: MarketReplaySource) -> None:
    btc_rows = {row.at: row for row in history_rows("bitcoin")}

    batches = [by_symbol(replay.next_batch()) for _ in range(3)]

    for offset, batch in enumerate(batches):
        btc = batch["BTC"]
        at = datetime(2022, 12, 1 + offset, tzinfo=UTC)
        assert btc.as_of == at
        assert btc.price_usd == btc_rows[at].price
        assert btc.market_cap_usd == btc_rows[at].market_cap
        assert btc.volume_24h_usd == btc_rows[at].volume
        assert btc.percent_change_1h is None
        assert btc.coingecko_id == "bitcoin"
        assert btc.circulating_supply == Decimal("18741512.0")  # still the recorded supply
    assert str(batches[0]["BTC"].price_usd) == "17186.502572066118"
    # (17186.502572066118 / 16441.979978419113 - 1) * 100, from the recorded prices
    assert batches[0]["BTC"].percent_change_24h == Decimal("4.52818088")
    assert batches[1]["BTC"].percent_change_24h == Decimal("-1.24381625")
    assert batches[0]["SOL"].as_of == datetime(2022, 12, 1, tzinfo=UTC)
    assert batches[0]["XRP"].coingecko_id == "ripple"
    assert batches[0]["XRP"].price_usd != batches[1]["XRP"].price_usd


def test_the_replay_loops_after_the_last_recorded_day(replay: MarketReplaySource) -> None:
    replay.batches = 364
    last = by_symbol(replay.next_batch())
    again = by_symbol(replay.next_batch())

    assert last["ETH"].as_of == datetime(2023, 11, 30, tzinfo=UTC)
    assert again["ETH"].as_of == datetime(2022, 12, 1, tzinfo=UTC)
    assert replay.state()["next_recorded_day"] == "2022-12-02"


async def test_run_emits_a_batch_every_interval_over_speed(metrics: Metrics) -> None:
    clock = FakeClock(0.0)
    sleeps: list[float] = []
    batches: list[list[TokenQuote]] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)
        await asyncio.sleep(0)

    source = MarketReplaySource(
        sink=batches.append,
        interval=60,
        speed=30,
        metrics=metrics,
        clock=clock,
        sleep=sleep,
        now=lambda: NOW,
    )
    task = asyncio.create_task(source.run())
    try:
        await wait_for(lambda: len(batches) >= 4, message="four batches")
        assert source.health.state == "connected"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    assert sleeps[:3] == [2.0, 2.0, 2.0]  # 60 s / 30x
    assert [batch[0].as_of for batch in batches[:2]] == [
        datetime(2022, 12, 1, tzinfo=UTC),
        datetime(2022, 12, 2, tzinfo=UTC),
    ]
    messages = metrics.registry.get_sample_value(
        "tokenpulse_source_messages_total", {"source": "replay_tokens", "kind": "markets"}
    )
    assert messages is not None
    assert messages >= 4
    assert source.health.state == "idle"


def test_replay_needs_a_positive_period() -> None:
    with pytest.raises(ValueError, match="positive"):
        MarketReplaySource(sink=lambda quotes: None, interval=60, speed=0, metrics=None)


async def test_a_replay_behind_its_schedule_still_yields_to_the_event_loop(
    metrics: Metrics,
) -> None:
    """Parsing a batch takes longer than a period (a fast replay on a loaded machine): the
    source must still let other coroutines run, or the whole service freezes."""
    clock = FakeClock(0.0)
    batches: list[list[TokenQuote]] = []

    def slow_sink(quotes: list[TokenQuote]) -> None:
        batches.append(quotes)
        clock.advance(5.0)  # each batch "takes" 5 s against a 2 s period: always behind

    async def never_called(seconds: float) -> None:
        raise AssertionError(f"a source behind schedule slept {seconds}s")

    source = MarketReplaySource(
        sink=slow_sink,
        interval=60,
        speed=30,
        metrics=metrics,
        clock=clock,
        sleep=never_called,
        now=lambda: NOW,
    )
    source.load()
    task = asyncio.create_task(source.run())
    try:
        # This coroutine only gets here again if the source yields between batches.
        await wait_for(lambda: len(batches) >= 3, message="batches while the loop stays live")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
