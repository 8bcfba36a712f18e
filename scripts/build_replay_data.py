#!/usr/bin/env python3
"""Build the bundled replay set for one recorded period: CoinGecko data of 2023-10-03..14.

Usage::

    python scripts/build_replay_data.py /path/to/shared/fixtures

Reads (all recorded, see ``src/tokenpulse/data/README.md``):

* ``src/tokenpulse/data/replay/market_chart_bitcoin_usd_7d_hourly_2023-10-{10,14}.json``:
  bitcoin price, market cap and volume, hourly, 2023-10-03 19:00 .. 2023-10-14 00:26;
* ``src/tokenpulse/data/replay/coins_markets_usd_2023-10-08_top100.json``: the top-100 answer
  of 2023-10-08 20:12 (the play window starts at the first bitcoin point after it);
* ``<fixtures>/history/coingecko_export_until_2023-11-30/*-usd-max.csv``: daily rows, of
  which 2023-09-20 .. 2023-10-15 are copied (lines unchanged) to ``data/replay/history/``;
* ``<fixtures>/kraken/rest_ticker_16pairs_2026-02-14_a.json``: Kraken's bid/ask spread per
  pair, the only recorded Kraken spread for these four pairs;
* ``<fixtures>/coinbase/rest_exchange_ticker_btc-usdt_2024-03-13_ccxt.json``,
  ``<fixtures>/binance/rest_ticker_24hr_binanceus_btcusdt_2024-03-13_ccxt.json`` and
  ``<fixtures>/binance/ws_24hrticker_spot_2022-05-29.jsonl``: Coinbase's and Binance's
  recorded spreads and Binance's offset against Coinbase.

Writes ``data/replay_kraken_ws_v2.jsonl`` (Kraken WS v2-shaped ticker frames over the play
window, from the recorded prices), ``data/replay_coinbase_ws.jsonl`` and
``data/replay_binance_ws.jsonl`` (Coinbase ``ticker`` and Binance ``@ticker`` frames of the
same moments and prices) and ``data/replay/window.json`` (the window and the files
the replay reads). Deterministic: re-running gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "src" / "tokenpulse" / "data"
REPLAY = DATA / "replay"
EXPORT_DIR = Path("history") / "coingecko_export_until_2023-11-30"
KRAKEN_TICKER = Path("kraken") / "rest_ticker_16pairs_2026-02-14_a.json"
SNAPSHOT = "coins_markets_usd_2023-10-08_top100.json"
CHARTS = (
    "market_chart_bitcoin_usd_7d_hourly_2023-10-10.json",
    "market_chart_bitcoin_usd_7d_hourly_2023-10-14.json",
)
#: CoinGecko id -> the symbol of its daily export file
DAILY = {
    "bitcoin": "btc",
    "ethereum": "eth",
    "litecoin": "ltc",
    "ripple": "xrp",
    "cardano": "ada",
    "bitcoin-cash": "bch",
    "binancecoin": "bnb",
    "eos": "eos",
    "ethereum-classic": "etc",
    "chainlink": "link",
    "solana": "sol",
    "tron": "trx",
}
DAILY_FROM, DAILY_TO = date(2023, 9, 20), date(2023, 10, 14)
#: pair -> (CoinGecko id, Kraken REST name in the spread capture, price decimals on Kraken)
PAIRS = {
    "BTC/USD": ("bitcoin", "XXBTZUSD", 1),
    "ETH/USD": ("ethereum", "XETHZUSD", 2),
    "LTC/USD": ("litecoin", "XLTCZUSD", 2),
    "XRP/USD": ("ripple", "XXRPZUSD", 5),
}
HEARTBEAT_EVERY = 300  # recorded seconds between heartbeat frames
FEED = "kraken_ws_v2"
STATUS_FRAME = (  # docs.kraken.com/api/docs/websocket-v2/status, verbatim
    '{"channel":"status","data":[{"api_version":"v2","connection_id":13834774380200032777,'
    '"system":"online","version":"2.0.0"}],"type":"update"}'
)
HEARTBEAT_FRAME = '{"channel":"heartbeat"}'
COINBASE_TICKER = Path("coinbase") / "rest_exchange_ticker_btc-usdt_2024-03-13_ccxt.json"
BINANCE_US_TICKER = Path("binance") / "rest_ticker_24hr_binanceus_btcusdt_2024-03-13_ccxt.json"
BINANCE_WS_TICKER = Path("binance") / "ws_24hrticker_spot_2022-05-29.jsonl"
#: pair -> Coinbase product id and its quote increment (``coinbase_products.json``; XRP-USD is
#: not in that 2021 list, so Coinbase plays no XRP/USD)
COINBASE = {"BTC/USD": ("BTC-USD", 2), "ETH/USD": ("ETH-USD", 2), "LTC/USD": ("LTC-USD", 2)}
#: pair -> Binance symbol (USDT quote, played as USD) and its price decimals (not recorded)
BINANCE = {
    "BTC/USD": ("BTCUSDT", 2),
    "ETH/USD": ("ETHUSDT", 2),
    "LTC/USD": ("LTCUSDT", 2),
    "XRP/USD": ("XRPUSDT", 4),
}


def iso(moment: datetime) -> str:
    """ISO 8601 with microseconds and Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def load_chart(path: Path) -> list[tuple[int, Decimal]]:
    """(ms, price) of a market_chart file (bare or inside a ``data`` wrapper)."""
    payload = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    payload = payload.get("data", payload)
    return [(int(t), Decimal(p)) for t, p in payload["prices"]]


def bitcoin_hourly() -> list[tuple[datetime, Decimal]]:
    """The two bitcoin charts joined on their timestamps (they agree where they overlap)."""
    joined: dict[int, Decimal] = {}
    for name in CHARTS:
        for ms, price in load_chart(REPLAY / name):
            if joined.setdefault(ms, price) != price:
                raise SystemExit(f"{name}: {ms} disagrees with the other chart")
    return [(datetime.fromtimestamp(ms / 1000, UTC), joined[ms]) for ms in sorted(joined)]


def copy_daily(fixtures: Path) -> dict[str, list[tuple[datetime, Decimal]]]:
    """Copy the window's daily rows to data/replay/history; (time, price) per coin."""
    out = REPLAY / "history"
    out.mkdir(exist_ok=True)
    series: dict[str, list[tuple[datetime, Decimal]]] = {}
    for coin, symbol in DAILY.items():
        lines = (fixtures / EXPORT_DIR / f"{symbol}-usd-max.csv").read_text("utf-8").splitlines()
        kept = [lines[0]]
        rows: list[tuple[datetime, Decimal]] = []
        for line in lines[1:]:
            stamp = datetime.strptime(line.split(",")[0], "%Y-%m-%d %H:%M:%S UTC").replace(
                tzinfo=UTC
            )
            if DAILY_FROM <= stamp.date() <= DAILY_TO:
                kept.append(line)
                rows.append((stamp, Decimal(line.split(",")[1])))
        (out / f"{symbol}-usd-daily.csv").write_text("\n".join(kept) + "\n", encoding="utf-8")
        series[coin] = rows
    return series


def spreads(fixtures: Path) -> dict[str, Decimal]:
    """Kraken's recorded relative spread (ask - bid) / last per pair."""
    result = json.loads((fixtures / KRAKEN_TICKER).read_text("utf-8"))["result"]
    found = {}
    for pair, (_coin, name, _decimals) in PAIRS.items():
        entry = result[name]
        ask, bid, last = (Decimal(entry[k][0]) for k in ("a", "b", "c"))
        found[pair] = (ask - bid) / last
    return found


def ticker(kind: str, pair: str, price: Decimal, at: datetime, spread: Decimal) -> str:
    """A v2 ticker frame: last rounded to Kraken's tick, bid/ask from the recorded spread."""
    decimals = PAIRS[pair][2]
    tick = Decimal(1).scaleb(-decimals)
    last = price.quantize(tick, rounding=ROUND_HALF_EVEN)
    ticks = max(1, int((last * spread / tick).to_integral_value(ROUND_HALF_EVEN)))
    bid = (last - tick * (ticks // 2)).quantize(tick, rounding=ROUND_FLOOR)
    ask = (bid + tick * ticks).quantize(tick, rounding=ROUND_CEILING)
    entry = f'"symbol":"{pair}","bid":{bid},"ask":{ask},"last":{last},"timestamp":"{iso(at)}"'
    return f'{{"channel":"ticker","type":"{kind}","data":[{{{entry}}}]}}'


def quoted(price: Decimal, decimals: int, spread: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """``price`` on a ``decimals`` tick, with a bid/ask ``spread`` (relative; one tick at least)."""
    tick = Decimal(1).scaleb(-decimals)
    last = price.quantize(tick, rounding=ROUND_HALF_EVEN)
    ticks = max(1, int((last * spread / tick).to_integral_value(ROUND_HALF_EVEN)))
    bid = (last - tick * (ticks // 2)).quantize(tick, rounding=ROUND_FLOOR)
    return last, bid, (bid + tick * ticks).quantize(tick, rounding=ROUND_CEILING)


def venue_quirks(fixtures: Path) -> dict[str, Decimal]:
    """Recorded spreads of Coinbase and Binance and Binance's offset against Coinbase.

    Coinbase: its BTC-USDT ticker of 2024-03-13 11:10:41. Binance: the spread of its
    ETHUSDT ticker frame of 2022-05-29; the offset is Binance.US's BTCUSDT last price of
    2024-03-13 11:10:44 against Coinbase's three seconds earlier.
    """
    cb = json.loads((fixtures / COINBASE_TICKER).read_text("utf-8"))
    us = json.loads((fixtures / BINANCE_US_TICKER).read_text("utf-8"))
    ws = json.loads((fixtures / BINANCE_WS_TICKER).read_text("utf-8").splitlines()[0])["data"]
    cb_price = Decimal(cb["price"])
    return {
        "coinbase_spread": (Decimal(cb["ask"]) - Decimal(cb["bid"])) / cb_price,
        "binance_spread": (Decimal(ws["a"]) - Decimal(ws["b"])) / Decimal(ws["c"]),
        "binance_offset": Decimal(us["lastPrice"]) / cb_price - 1,
    }


def coinbase_frame(pair: str, price: Decimal, at: datetime, seq: int, spread: Decimal) -> str:
    """A Coinbase Exchange ``ticker`` message of ``pair`` (fields the parser reads, in order)."""
    product, decimals = COINBASE[pair]
    last, bid, ask = quoted(price, decimals, spread)
    return json.dumps(
        {"type": "ticker", "sequence": seq, "product_id": product, "price": str(last),
         "best_bid": str(bid), "best_ask": str(ask), "time": iso(at)},
        separators=(",", ":"),
    )  # fmt: skip


def binance_frame(pair: str, price: Decimal, at: datetime, quirks: dict[str, Decimal]) -> str:
    """A Binance combined-stream ``@ticker`` frame of ``pair`` (the 24hrTicker fields read)."""
    symbol, decimals = BINANCE[pair]
    moved = price * (1 + quirks["binance_offset"])
    last, bid, ask = quoted(moved, decimals, quirks["binance_spread"])
    ms = int(at.timestamp() * 1000)
    data = {"e": "24hrTicker", "E": ms, "s": symbol, "c": f"{last:.8f}", "b": f"{bid:.8f}",
            "a": f"{ask:.8f}"}  # fmt: skip
    return json.dumps({"stream": symbol.lower() + "@ticker", "data": data}, separators=(",", ":"))


def write_venue(name: str, feed: str, frames: list[tuple[datetime, int, str]], about: str) -> None:
    """One venue's replay file: the frames in time order, each in the replay envelope."""
    frames.sort(key=lambda item: (item[0], item[1]))
    lines = [f"# tokenpulse replay: {about}; see README.md. Built by scripts/build_replay_data.py."]
    for moment, _order, frame in frames:
        record = {"recv_ts": round(moment.timestamp(), 3), "feed": feed, "frame": frame}
        lines.append(json.dumps(record, separators=(",", ":")))
    (DATA / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_venues(
    fixtures: Path,
    series: dict[str, list[tuple[datetime, Decimal]]],
    play_from: datetime,
    play_to: datetime,
) -> dict[str, int]:
    """The Coinbase and Binance replay files, from the same prices and moments as Kraken's."""
    quirks = venue_quirks(fixtures)
    coinbase: list[tuple[datetime, int, str]] = []
    binance: list[tuple[datetime, int, str]] = []
    for order, (pair, (coin, _name, _d)) in enumerate(PAIRS.items(), start=1):
        points = [(play_from, value_at(series[coin], play_from))] + [
            (moment, price) for moment, price in series[coin] if play_from < moment <= play_to
        ]
        for seq, (moment, price) in enumerate(points, start=1):
            if pair in COINBASE:
                frame = coinbase_frame(pair, price, moment, seq, quirks["coinbase_spread"])
                coinbase.append((moment, order, frame))
            binance.append((moment, order, binance_frame(pair, price, moment, quirks)))
    span = f"{iso(play_from)} .. {iso(play_to)}"
    write_venue("replay_coinbase_ws.jsonl", "coinbase_ws", coinbase,
                f"Coinbase ticker messages from recorded CoinGecko prices of {span}")  # fmt: skip
    write_venue("replay_binance_ws.jsonl", "binance_ws", binance,
                f"Binance @ticker frames from recorded CoinGecko prices of {span}")  # fmt: skip
    return {"coinbase": len(coinbase), "binance": len(binance)}


def value_at(series: list[tuple[datetime, Decimal]], at: datetime) -> Decimal:
    """The newest recorded value at or before ``at``."""
    earlier = [price for moment, price in series if moment <= at]
    if not earlier:
        raise SystemExit(f"no recorded value at {at}")
    return earlier[-1]


def build(fixtures: Path) -> dict[str, Any]:
    """Write the frames and the window file; a summary for the log."""
    hourly = bitcoin_hourly()
    daily = copy_daily(fixtures)
    snapshot = json.loads((REPLAY / SNAPSHOT).read_text("utf-8"))["data"]
    snapshot_at = max(datetime.fromisoformat(row["last_updated"]) for row in snapshot)
    play_from = next(moment for moment, _ in hourly if moment >= snapshot_at)
    play_to = hourly[-1][0]
    series = dict(daily)
    series["bitcoin"] = [row for row in daily["bitcoin"] if row[0] < hourly[0][0]] + hourly
    spread = spreads(fixtures)
    frames: list[tuple[datetime, int, str]] = [(play_from, 0, STATUS_FRAME)]
    for order, (pair, (coin, _name, _d)) in enumerate(PAIRS.items(), start=1):
        start = value_at(series[coin], play_from)
        frames.append((play_from, order, ticker("snapshot", pair, start, play_from, spread[pair])))
        for moment, price in series[coin]:
            if play_from < moment <= play_to:
                frames.append((moment, order, ticker("update", pair, price, moment, spread[pair])))
    beat = play_from + timedelta(seconds=HEARTBEAT_EVERY)
    while beat < play_to:
        frames.append((beat, 9, HEARTBEAT_FRAME))
        beat += timedelta(seconds=HEARTBEAT_EVERY)
    frames.sort(key=lambda item: (item[0], item[1]))
    lines = [
        "# tokenpulse replay: Kraken WS v2-shaped frames from recorded CoinGecko prices of "
        f"{iso(play_from)} .. {iso(play_to)}; see README.md. Built by "
        "scripts/build_replay_data.py."
    ]
    for moment, _order, frame in frames:
        record = {"recv_ts": round(moment.timestamp(), 3), "feed": FEED, "frame": frame}
        lines.append(json.dumps(record, separators=(",", ":")))
    (DATA / "replay_kraken_ws_v2.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    window = {
        "about": "one recorded period for SOURCES=replay; see data/README.md",
        "play_from": iso(play_from),
        "play_to": iso(play_to),
        "snapshot": SNAPSHOT,
        "charts": {"bitcoin": list(CHARTS)},
        "daily": {coin: f"history/{symbol}-usd-daily.csv" for coin, symbol in DAILY.items()},
        "pairs": {pair: coin for pair, (coin, _n, _d) in PAIRS.items()},
    }
    text = json.dumps(window, indent=2) + "\n"
    (REPLAY / "window.json").write_text(text, encoding="utf-8")
    venues = build_venues(fixtures, series, play_from, play_to)
    return {"frames": len(frames), **venues, "play_from": iso(play_from), "play_to": iso(play_to)}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fixtures", type=Path, help="the shared recorded-fixtures directory")
    args = parser.parse_args(argv)
    sys.stdout.write(f"{build(args.fixtures)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
