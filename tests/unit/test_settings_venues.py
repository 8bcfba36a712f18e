"""Settings of the exchange venues: LTP_PRIMARY/LTP_FALLBACK, QUOTE_EQUIVALENTS, pairs."""

from __future__ import annotations

import pytest

from tokenpulse.settings import ConfigError, load_settings


def problems(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ)
    return caught.value.problems


def test_defaults() -> None:
    settings = load_settings(None, {}).settings
    assert settings.ltp_primary == "kraken"
    assert settings.ltp_fallback == "aggregate"
    assert settings.quote_equivalents == []
    assert settings.venue_disagree_bps == 50.0
    assert settings.pair_lists_dir == "data/pairs"


def test_the_primary_must_be_an_enabled_venue() -> None:
    [line] = problems({"SOURCES": "coinbase,binance"})
    assert line.startswith("LTP_PRIMARY: 'kraken' is not enabled in SOURCES")
    assert "coinbase, binance" in line
    ok = load_settings(None, {"SOURCES": "coinbase,binance", "LTP_PRIMARY": "aggregate"})
    assert ok.settings.ltp_primary == "aggregate"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LTP_FALLBACK": "binance"}, "LTP_FALLBACK: 'binance' is not enabled"),
        ({"LTP_FALLBACK": "kraken"}, "LTP_FALLBACK: 'kraken' is the primary venue itself"),
        ({"LTP_PRIMARY": "bitstamp"}, "LTP_PRIMARY='bitstamp': must be one of"),
        ({"QUOTE_EQUIVALENTS": "USDT"}, "is not ALIAS=QUOTE such as USDT=USD"),
        ({"VENUE_DISAGREE_BPS": "-1"}, "VENUE_DISAGREE_BPS"),
        ({"BINANCE_MAX_CONNECTION_AGE": "25h"}, "BINANCE_MAX_CONNECTION_AGE"),
    ],
)
def test_bad_venue_settings_are_refused(environ: dict[str, str], expected: str) -> None:
    assert any(expected in line for line in problems(environ))


def test_usdt_serves_usd_only_when_configured() -> None:
    base = {"SOURCES": "binance", "LTP_PRIMARY": "binance", "PAIR_LISTS_DIR": "/nonexistent"}
    settings = load_settings(None, {**base, "QUOTE_EQUIVALENTS": "usdt=usd"}).settings
    assert settings.quote_equivalents == ["USDT=USD"]


def test_sol_usd_validates_offline_against_the_bundled_kraken_list() -> None:
    environ = {"SUPPORTED_PAIRS": "BTC/USD,SOL/USD,avaxusd", "PAIR_LISTS_DIR": "/nonexistent"}
    settings = load_settings(None, environ).settings
    assert settings.supported_pairs == ["BTC/USD", "SOL/USD", "AVAX/USD"]


def test_an_unlisted_pair_names_the_lists_and_their_age() -> None:
    environ = {
        "SOURCES": "kraken,coinbase",
        "SUPPORTED_PAIRS": "BTC/USD,DOGE/MOON",
        "PAIR_LISTS_DIR": "/nonexistent",
    }
    [line] = problems(environ)
    assert "DOGE/MOON is not a pair Kraken, Coinbase lists" in line
    assert "the bundled Kraken list of 2026-02-14" in line
    assert "the bundled Coinbase list of 2021-04-17" in line
    assert "tokenpulse pairs --refresh" in line
