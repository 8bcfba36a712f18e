"""Kraken WS v2 load for the ingestion benchmark: a pair list of N pairs and ticker frames.

The pairs are Kraken's own (the bundled ``AssetPairs`` capture, every listed pair), topped
up with ``BNCH<n>/USD`` entries in the same ``AssetPairs`` shape when N is larger than the
list, so the service under test resolves every symbol through its real registry. Each pair
gets the recorded ticker values of one of the five recorded pairs (``tests/fixtures/kraken``,
cycling), and the ``update`` frames carry those fields with a moving ``last`` — the frames
Kraken sends with ``event_trigger: "trades"`` (one symbol a frame).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tokenpulse.data import bundled_kraken_asset_pairs
from tokenpulse.domain.pairs import PairRegistry

ROOT = Path(__file__).resolve().parent.parent
RECORDED_V2_FRAMES = (
    ROOT / "tests" / "fixtures" / "kraken" / "ws_v2_ticker_from_recorded_values.jsonl"
)
FIELDS = ("bid", "bid_qty", "ask", "ask_qty", "volume", "vwap", "low", "high", "change")


def asset_pairs(count: int) -> tuple[dict[str, Any], list[str]]:
    """An ``AssetPairs`` body listing at least ``count`` pairs, and ``count`` WS v2 symbols.

    The recorded pairs come first (BTC/USD, ETH/USD, … are always among them).
    """
    payload = copy.deepcopy(bundled_kraken_asset_pairs())
    result: dict[str, Any] = payload["result"]
    recorded = list(recorded_values())
    registry = PairRegistry.from_kraken_asset_pairs(payload)
    listed = sorted(
        registry.info(pair).ws_v2_symbol
        for pair in registry.kraken
        if str(pair).replace("/", "").isalnum()  # not ETH2.S/ETH: SUPPORTED_PAIRS refuses it
    )
    symbols = [s for s in recorded if s in listed] + [s for s in listed if s not in recorded]
    number = 0
    while len(symbols) < count:
        number += 1
        base = f"BNCH{number:03d}"
        result[base + "USD"] = {
            "altname": base + "USD",
            "wsname": f"{base}/USD",
            "base": base,
            "quote": "ZUSD",
        }
        symbols.append(f"{base}/USD")
    return payload, symbols[:count]


def recorded_values() -> dict[str, dict[str, Decimal | str]]:
    """Symbol -> the fields of its recorded ``snapshot`` entry (numbers as Decimal)."""
    values: dict[str, dict[str, Decimal | str]] = {}
    for line in RECORDED_V2_FRAMES.read_text(encoding="utf-8").splitlines():
        frame = json.loads(line, parse_float=Decimal)
        if frame.get("type") == "snapshot":
            for entry in frame["data"]:
                values[entry["symbol"]] = dict(entry)
    return values


def ticker_values(symbols: list[str]) -> dict[str, dict[str, Any]]:
    """Each symbol's ticker fields: the recorded values of one recorded pair, cycling."""
    recorded = list(recorded_values().values())
    table = {}
    for index, symbol in enumerate(symbols):
        entry = dict(recorded[index % len(recorded)])
        entry["symbol"] = symbol
        table[symbol] = entry
    return table


def update_frame(entry: dict[str, Any], last: Decimal, moment: datetime) -> str:
    """One ticker ``update`` frame for ``entry``'s symbol, numbers with exactly their digits."""
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = ",".join(f'"{name}":{entry[name]}' for name in FIELDS if name in entry)
    return (
        '{"channel":"ticker","type":"update","data":[{"symbol":"'
        + str(entry["symbol"])
        + f'",{fields},"last":{last},"change_pct":{entry.get("change_pct", 0)},'
        + f'"timestamp":"{stamp}"'
        + "}]}"
    )


def frame_file(symbols: list[str], count: int, start: datetime) -> Iterator[tuple[str, str]]:
    """``count`` (symbol, frame) update frames rotating over ``symbols``, prices moving."""
    values = ticker_values(symbols)
    for index in range(count):
        symbol = symbols[index % len(symbols)]
        entry = values[symbol]
        step = Decimal(index // len(symbols) % 50) * Decimal("0.0001")
        last = Decimal(entry["last"]) * (1 + step)
        moment = start + timedelta(microseconds=index)
        yield symbol, update_frame(entry, last.quantize(Decimal(entry["last"])), moment)
