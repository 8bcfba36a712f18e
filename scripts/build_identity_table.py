#!/usr/bin/env python3
"""Build ``src/tokenpulse/data/token_identities.json`` from the recorded listings.

Usage::

    python scripts/build_identity_table.py /path/to/shared/fixtures
    python scripts/build_identity_table.py --extract CMC_MAP_JSON CG_MARKETS_JSON

The second form re-cuts the two copied listings in ``tests/fixtures/`` from the full recorded
files (see "Top 200" below); the first builds the table.

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

Top 200: two more recordings, copied (as subsets) into ``tests/fixtures/``:

* ``coinmarketcap/map_2021-02-26_subset.json``: CMC ``/v1/cryptocurrency/map`` (id, name,
  symbol, slug, rank of every active coin);
* ``coingecko/markets_order_2021-09-14_subset.json``: id, name, symbol of every CoinGecko coin
  in ``/coins/markets`` market-cap order.

Each subset keeps every entry whose symbol is one of the coins considered (CMC rank <= 300,
CoinGecko's first 250, the replay's 2023 answer), so a symbol's whole set of namesakes is
there and the result is the one the full files give. A CMC coin and a CoinGecko coin are one
coin when their symbols are equal and either their normalised names are equal or the CoinGecko
id is the CMC slug, and that pairing is unique from both sides (two namesakes on either side:
no row); a few coins the two name differently are paired by hand (``SAME_COIN_RENAMED``). A
pair becomes a row when the CMC rank is <= 300, the CoinGecko position <= 250 or
the coin is in the replay's answer, unless its CMC id, CoinGecko id or slug is already a
row's (the existing rows win; conflicts are printed).
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
TEST_FIXTURES = REPO / "tests" / "fixtures"
CMC_MAP = TEST_FIXTURES / "coinmarketcap" / "map_2021-02-26_subset.json"
CG_ORDER = TEST_FIXTURES / "coingecko" / "markets_order_2021-09-14_subset.json"
CMC_TOP = 300
CG_TOP = 250

#: CMC id -> CoinGecko id of coins the rule above misses because the two providers name them
#: differently (a suffix, a rebrand), checked by hand: the symbol is the same in both
#: recordings and that CoinGecko coin is the only one the recording has with it.
SAME_COIN_RENAMED = {
    3964: "reserve-rights-token",  # RSR: "Reserve Rights" / "Reserve Rights Token"
    7232: "alpha-finance",  # ALPHA: "Alpha Finance Lab" / "Alpha Finance"
    8210: "btc-standard-hashrate-token",  # BTCST: "Bitcoin Standard ..." / "BTC Standard ..."
    5026: "orchid-protocol",  # OXT: "Orchid" / "Orchid Protocol"
    7501: "woo-network",  # WOO: "Wootrade", renamed "WOO Network" in 2021
    6951: "reef-finance",  # REEF: "Reef" / "Reef Finance"
    5601: "xdai-stake",  # STAKE: "xDai" (the chain's staking token) / "xDAI Stake"
}


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
    rows.extend(top_rows(rows))
    return {
        "description": (
            "Coins whose CoinMarketCap id and slug and CoinGecko id the recordings name, "
            "reconciled to one tokenpulse id. See README.md, section token_identities.json."
        ),
        "tokens": rows,
    }


def unique_by_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CoinGecko rows without repeats (the recording lists some coins twice), first kept."""
    seen: set[str] = set()
    kept: list[dict[str, Any]] = []
    for row in rows:
        if row["id"] not in seen:
            seen.add(row["id"])
            kept.append(row)
    return kept


def same_coin(cmc: dict[str, Any], cg: dict[str, Any]) -> bool:
    """Same symbol, and the same normalised name or the CoinGecko id equal to the CMC slug."""
    return str(cmc["symbol"]).upper() == str(cg["symbol"]).upper() and (
        normalised(cmc["name"]) == normalised(cg["name"]) or cg["id"] == cmc["slug"]
    )


def pairs(cmc_map: list[dict[str, Any]], cg_order: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    """(CMC coin, CoinGecko coin) pairs that are unique from both sides, in CMC rank order."""
    cg_by_symbol = by_symbol(cg_order)
    cmc_by_symbol: dict[str, list[dict[str, Any]]] = {}
    for coin in cmc_map:
        cmc_by_symbol.setdefault(str(coin["symbol"]).upper(), []).append(coin)
    found = []
    for coin in sorted(cmc_map, key=lambda c: int(c["rank"])):
        symbol = str(coin["symbol"]).upper()
        renamed = SAME_COIN_RENAMED.get(int(coin["id"]))
        if renamed is not None:
            named = [cg for cg in cg_by_symbol.get(symbol, []) if cg["id"] == renamed]
            if len({cg["id"] for cg in cg_by_symbol.get(symbol, [])}) == 1 and named:
                found.append((coin, named[0]))
            continue
        matches = [cg for cg in cg_by_symbol.get(symbol, []) if same_coin(coin, cg)]
        if len(matches) != 1:
            continue
        back = [other for other in cmc_by_symbol[symbol] if same_coin(other, matches[0])]
        if len(back) == 1:
            found.append((coin, matches[0]))
    return found


def top_rows(existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for the CMC top 300, CoinGecko's first 250 and the replay's coins (docstring)."""
    cmc_map = json.loads(CMC_MAP.read_text(encoding="utf-8"))["data"]
    cg_order = unique_by_id(json.loads(CG_ORDER.read_text(encoding="utf-8")))
    position = {row["id"]: index + 1 for index, row in enumerate(cg_order)}
    replay = {row["id"] for row in json.loads(CG_2023.read_text(encoding="utf-8"))["data"]}
    taken_cmc = {row["cmc_id"] for row in existing}
    taken_names = {
        name for row in existing for name in (row["id"], row["coingecko_id"], *row["cmc_slugs"])
    }
    rows = []
    for coin, cg in pairs(cmc_map, cg_order):
        wanted = coin["rank"] <= CMC_TOP or position[cg["id"]] <= CG_TOP or cg["id"] in replay
        if not wanted or coin["id"] in taken_cmc:
            continue
        names = {coin["slug"], cg["id"]}
        if names & taken_names:
            sys.stdout.write(f"skipped {coin['id']} {coin['slug']} / {cg['id']}: name taken\n")
            continue
        taken_cmc.add(coin["id"])
        taken_names |= names
        rows.append(
            {
                "id": coin["slug"],
                "symbol": str(coin["symbol"]).upper(),
                "name": coin["name"],
                "cmc_id": coin["id"],
                "cmc_slugs": [coin["slug"]],
                "coingecko_id": cg["id"],
                "coingecko_name": cg["name"],
            }
        )
    return rows


def extract(cmc_map_path: Path, cg_order_path: Path) -> None:
    """Write the two subsets of ``tests/fixtures/`` from the full recorded files."""
    cmc_answer = json.loads(cmc_map_path.read_text(encoding="utf-8"))
    cg_rows = json.loads(cg_order_path.read_text(encoding="utf-8"))
    replay = json.loads(CG_2023.read_text(encoding="utf-8"))["data"]
    symbols = {str(c["symbol"]).upper() for c in cmc_answer["data"] if c["rank"] <= CMC_TOP}
    symbols |= {str(c["symbol"]).upper() for c in unique_by_id(cg_rows)[:CG_TOP]}
    symbols |= {str(c["symbol"]).upper() for c in replay}
    subset = dict(cmc_answer)
    subset["data"] = [c for c in cmc_answer["data"] if str(c["symbol"]).upper() in symbols]
    CMC_MAP.write_text(json.dumps(subset, separators=(",", ":")) + "\n", encoding="utf-8")
    kept = [c for c in cg_rows if str(c["symbol"]).upper() in symbols]
    CG_ORDER.write_text(json.dumps(kept, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(f"kept {len(subset['data'])} CMC and {len(kept)} CoinGecko entries\n")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fixtures", type=Path, nargs="?", help="the shared fixtures directory")
    parser.add_argument("--extract", nargs=2, type=Path, metavar=("CMC_MAP", "CG_MARKETS_ORDER"))
    args = parser.parse_args(argv)
    if args.extract:
        extract(*args.extract)
        return 0
    if args.fixtures is None:
        parser.error("the shared fixtures directory is required")
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
