#!/usr/bin/env python3
"""Build the bundled replay recording ``src/tokenpulse/data/replay_kraken_ws_v2.jsonl``.

Usage::

    python scripts/build_replay_data.py /path/to/shared/fixtures [--out FILE]

It writes Kraken WebSocket v2-shaped ticker frames from recorded real CoinGecko daily prices
(``history/coingecko_export_until_2023-11-30/{btc,eth,ltc,xrp}-usd-max.csv``): a ``status``
frame and one ``snapshot`` per pair (2022-11-30), then one ``update`` per pair per day
(2022-12-01 .. 2023-11-30, 365 days), pairs interleaved, a ``heartbeat`` after every two
tickers. Only ``symbol``, ``last`` (the CSV price, same digits; prices with more than 15
significant digits rounded to 10) and ``timestamp`` (the recorded day) are written: the
export has no bid, ask or base-currency volume, and none is invented. Each recorded day
becomes one minute of ``recv_ts`` (six frames 10 s apart), so at ``REPLAY_SPEED=60`` every
pair updates about once a second. The output is deterministic; re-running it gives the same
bytes. See ``src/tokenpulse/data/README.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "src" / "tokenpulse" / "data" / "replay_kraken_ws_v2.jsonl"
EXPORT_DIR = Path("history") / "coingecko_export_until_2023-11-30"

#: (WS v2 symbol, CoinGecko export file)
COINS = (
    ("BTC/USD", "btc-usd-max.csv"),
    ("ETH/USD", "eth-usd-max.csv"),
    ("LTC/USD", "ltc-usd-max.csv"),
    ("XRP/USD", "xrp-usd-max.csv"),
)
SNAPSHOT_DAY = date(2022, 11, 30)
FIRST_DAY = date(2022, 12, 1)
LAST_DAY = date(2023, 11, 30)

FLOAT_SAFE_DIGITS = 15  # a float64 keeps up to 15 significant digits exactly
ROUNDED_DIGITS = 10
DAY_SECONDS = 60.0  # one recorded day = one minute of recv_ts
SLOT_SECONDS = 10.0  # six frames per day: BTC, ETH, heartbeat, LTC, XRP, heartbeat
HEARTBEAT_EVERY = 2  # tickers between heartbeats
FEED = "kraken_ws_v2"

# The status frame Kraken sends on connect, as in docs.kraken.com/api/docs/websocket-v2/status.
STATUS_FRAME = (
    '{"channel":"status","data":[{"api_version":"v2","connection_id":13834774380200032777,'
    '"system":"online","version":"2.0.0"}],"type":"update"}'
)
HEARTBEAT_FRAME = '{"channel":"heartbeat"}'


def exact_price(text: str) -> tuple[str, bool]:
    """The CSV price as a JSON number with its digits; rounded to 10 significant digits
    (and flagged) only when it has more than a float64 can carry."""
    value = Decimal(text.strip())
    if not value.is_finite() or value <= 0:
        raise ValueError(f"not a positive price: {text!r}")
    if len(value.as_tuple().digits) <= FLOAT_SAFE_DIGITS:
        plain = text.strip() if "e" not in text.lower() else format(value, "f")
        return plain, False
    quantum = Decimal(1).scaleb(value.adjusted() - ROUNDED_DIGITS + 1)
    rounded = format(value.quantize(quantum, rounding=ROUND_HALF_EVEN), "f")
    if "." in rounded:
        rounded = rounded.rstrip("0").rstrip(".")
    return rounded, True


def read_prices(path: Path) -> dict[date, str]:
    """Recorded day -> price text, for midnight rows of a CoinGecko export."""
    prices: dict[date, str] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            stamp = datetime.strptime(row["snapped_at"], "%Y-%m-%d %H:%M:%S UTC").replace(
                tzinfo=UTC
            )
            if (stamp.hour, stamp.minute, stamp.second) != (0, 0, 0):
                continue  # an off-midnight snapshot is not that day's price
            if row["price"].strip():
                prices.setdefault(stamp.date(), row["price"].strip())
    return prices


def ticker_frame(kind: str, symbol: str, last: str, day: date) -> str:
    """A v2 ticker frame with only the fields the recording has."""
    timestamp = datetime(day.year, day.month, day.day, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    frame = (
        f'{{"channel":"ticker","type":"{kind}","data":[{{"symbol":{json.dumps(symbol)},'
        f'"last":{last},"timestamp":"{timestamp}"}}]}}'
    )
    check = json.loads(frame, parse_float=Decimal)["data"][0]["last"]
    if check != Decimal(last):
        raise AssertionError(f"{symbol} {day}: {last} did not survive as a JSON number")
    return frame


def envelope(recv_ts: float, frame: str) -> str:
    """One line of the replay file."""
    return json.dumps({"recv_ts": recv_ts, "feed": FEED, "frame": frame}, separators=(",", ":"))


def day_ts(day: date) -> float:
    """The recv_ts at which a recorded day starts: one minute per day from FIRST_DAY."""
    base = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC).timestamp()
    return base + (day - FIRST_DAY).days * DAY_SECONDS


def build(fixtures: Path) -> tuple[list[str], dict[str, int]]:
    """The replay lines and counts (frames per kind, prices rounded)."""
    prices = {symbol: read_prices(fixtures / EXPORT_DIR / name) for symbol, name in COINS}
    stats = {"status": 0, "snapshot": 0, "update": 0, "heartbeat": 0, "rounded": 0, "missing": 0}
    lines = [
        "# tokenpulse replay: Kraken WS v2-shaped frames written from recorded real CoinGecko "
        f"daily USD prices {SNAPSHOT_DAY}..{LAST_DAY}; see README.md. "
        "Built by scripts/build_replay_data.py.",
    ]

    def price(symbol: str, day: date) -> str | None:
        text = prices[symbol].get(day)
        if text is None:
            stats["missing"] += 1
            return None
        last, rounded = exact_price(text)
        stats["rounded"] += rounded
        return last

    def add(ts: float, frame: str, kind: str) -> None:
        lines.append(envelope(ts, frame))
        stats[kind] += 1

    # Preamble, the minute before FIRST_DAY: status, then a snapshot per pair.
    start = day_ts(FIRST_DAY) - DAY_SECONDS
    add(start, STATUS_FRAME, "status")
    for index, (symbol, _) in enumerate(COINS, start=1):
        last = price(symbol, SNAPSHOT_DAY)
        if last is None:
            raise SystemExit(f"{symbol}: no price for the snapshot day {SNAPSHOT_DAY}")
        add(
            start + index * SLOT_SECONDS,
            ticker_frame("snapshot", symbol, last, SNAPSHOT_DAY),
            "snapshot",
        )
    add(start + (len(COINS) + 1) * SLOT_SECONDS, HEARTBEAT_FRAME, "heartbeat")

    day = FIRST_DAY
    while day <= LAST_DAY:
        ts = day_ts(day)
        slot = 0
        for index, (symbol, _) in enumerate(COINS, start=1):
            last = price(symbol, day)
            if last is not None:  # a day the export lacks is left out, not filled in
                add(ts + slot * SLOT_SECONDS, ticker_frame("update", symbol, last, day), "update")
            slot += 1
            if index % HEARTBEAT_EVERY == 0:
                add(ts + slot * SLOT_SECONDS, HEARTBEAT_FRAME, "heartbeat")
                slot += 1
        day += timedelta(days=1)
    return lines, stats


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fixtures", type=Path, help="the shared recorded-fixtures directory")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output JSONL file")
    args = parser.parse_args(argv)
    lines, stats = build(args.fixtures)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = ", ".join(f"{key} {value}" for key, value in stats.items())
    sys.stdout.write(f"wrote {len(lines)} lines to {args.out}: {summary}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
