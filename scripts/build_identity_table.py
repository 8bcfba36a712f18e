#!/usr/bin/env python3
"""Build ``src/tokenpulse/data/token_identities.json`` from the recorded listings.

Usage::

    python scripts/build_identity_table.py /path/to/shared/fixtures

One row per coin for which the recordings name both a CoinMarketCap id and a CoinGecko id,
so either provider's ids, slugs and symbols resolve to the same tokenpulse id whichever
provider serves the coin. Read (all recorded, see ``src/tokenpulse/data/README.md``):

* ``<fixtures>/coinmarketcap/listings_latest_2021-08-31_top100.json`` (CMC ids, slugs);
* ``<fixtures>/coingecko/coins_markets_usd_2021-06-24_top100.json`` and the replay's
  ``data/replay/coins_markets_usd_2023-10-08_top100.json`` (CoinGecko ids);
* the current table: its rows (checked by hand, some with a slug no recording has) are kept
  exactly as they are, so no id already given changes.

A CMC coin is matched to the CoinGecko coin of the 2021 answer with the same symbol (the one
with that symbol); failing that, to the 2023 answer's coin with the same symbol and the same
name (letters and digits, lower-case). ``id`` is the CMC slug. Coins only one provider lists
get no row: the registry's own rules name them, and a one-sided row would stop a later quote
of the other provider from joining them. Deterministic: re-running gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "src" / "tokenpulse" / "data"
TABLE = DATA / "token_identities.json"
CMC = Path("coinmarketcap") / "listings_latest_2021-08-31_top100.json"
CG_2021 = Path("coingecko") / "coins_markets_usd_2021-06-24_top100.json"
CG_2023 = DATA / "replay" / "coins_markets_usd_2023-10-08_top100.json"


def normalised(name: str) -> str:
    """Letters and digits, lower-case."""
    return re.sub(r"[^a-z0-9]+", "", name.lower())


def by_symbol(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """CoinGecko rows grouped by upper-case symbol."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(str(row["symbol"]).upper(), []).append(row)
    return grouped


def build(fixtures: Path) -> dict[str, Any]:
    """The table document."""
    current = json.loads(TABLE.read_text(encoding="utf-8"))
    kept = {row["cmc_id"]: row for row in current["tokens"]}
    listing = json.loads((fixtures / CMC).read_text(encoding="utf-8"))["data"]
    cg_2021 = by_symbol(json.loads((fixtures / CG_2021).read_text(encoding="utf-8")))
    cg_2023 = by_symbol(json.loads(CG_2023.read_text(encoding="utf-8"))["data"])
    rows: list[dict[str, Any]] = []
    for coin in listing:  # CMC rank order
        if coin["id"] in kept:
            rows.append(kept[coin["id"]])
            continue
        symbol = str(coin["symbol"]).upper()
        match = cg_2021.get(symbol, [])
        if len(match) != 1:
            match = [
                row
                for row in cg_2023.get(symbol, [])
                if normalised(row["name"]) == normalised(coin["name"])
            ]
        if len(match) != 1:
            continue
        rows.append(
            {
                "id": coin["slug"],
                "symbol": symbol,
                "name": coin["name"],
                "cmc_id": coin["id"],
                "cmc_slugs": [coin["slug"]],
                "coingecko_id": match[0]["id"],
                "coingecko_name": match[0]["name"],
            }
        )
    return {
        "description": (
            "Coins whose CoinMarketCap id and slug and CoinGecko id the recordings name, "
            "reconciled to one tokenpulse id. See README.md, section token_identities.json."
        ),
        "tokens": rows,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fixtures", type=Path, help="the shared recorded-fixtures directory")
    args = parser.parse_args(argv)
    table = build(args.fixtures)
    lines = [json.dumps(row, ensure_ascii=False) for row in table["tokens"]]
    text = (
        "{\n"
        f'  "description": {json.dumps(table["description"])},\n'
        '  "tokens": [\n    ' + ",\n    ".join(lines) + "\n  ]\n}\n"
    )
    TABLE.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {len(lines)} rows to {TABLE}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
