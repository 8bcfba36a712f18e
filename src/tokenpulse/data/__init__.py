"""Package data: reference tables and the recorded market data the replay source plays.

See ``data/README.md`` for where every file comes from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from tokenpulse.domain.identity import KnownToken, parse_known_tokens
from tokenpulse.domain.pairs import PairRegistry

KNOWN_TOKENS_FILE = "token_identities.json"


def data_path(name: str) -> Path:
    """Filesystem path of a bundled data file."""
    return Path(str(files("tokenpulse.data").joinpath(name)))


#: The bundled Kraken pair list: the 2021 AssetPairs capture, then the pairs of a 2026 Ticker
#: answer it lacks (see data/README.md). The date of the newest is the list's age.
KRAKEN_PAIR_FILES = ("kraken_assetpairs.json", "kraken_pairs_2026-02-14.json")
BUNDLED_LIST_DATES = {"kraken": "2026-02-14", "coinbase": "2021-04-17"}


def bundled_kraken_asset_pairs() -> dict[str, object]:
    """The bundled Kraken lists merged into one AssetPairs body."""
    result: dict[str, object] = {}
    for name in KRAKEN_PAIR_FILES:
        payload = json.loads(data_path(name).read_text(encoding="utf-8"))
        result.update(payload["result"])
    return {"error": [], "result": result}


@lru_cache(maxsize=1)
def kraken_pair_registry() -> PairRegistry:
    """The bundled Kraken pair list as a PairRegistry."""
    return PairRegistry.from_kraken_asset_pairs(bundled_kraken_asset_pairs())


@lru_cache(maxsize=1)
def known_tokens() -> tuple[KnownToken, ...]:
    """The bundled table of known CoinMarketCap/CoinGecko differences (read once)."""
    text = data_path(KNOWN_TOKENS_FILE).read_text(encoding="utf-8")
    return parse_known_tokens(json.loads(text))


REPLAY_LISTINGS = ("replay/coins_markets_usd_2023-10-08_top100.json",)


@lru_cache(maxsize=1)
def known_token_symbols() -> frozenset[str]:
    """Upper-case symbols the bundled tables name: the identity table and the replay's
    recorded CoinGecko top 100 of 2023-10-08. A symbol outside them may still exist (a coin
    listed since); start-up warns about it, it does not refuse it."""
    symbols = {token.symbol for token in known_tokens()}
    for name in REPLAY_LISTINGS:
        payload = json.loads(data_path(name).read_text(encoding="utf-8"))
        rows = payload["data"] if isinstance(payload, dict) else payload
        symbols.update(str(row["symbol"]).upper() for row in rows)
    return frozenset(symbols)


def unknown_token_symbols(symbols: Iterable[str]) -> tuple[str, ...]:
    """The upper-cased ``symbols`` no bundled table names, in order, each once."""
    known = known_token_symbols()
    return tuple(s for s in dict.fromkeys(s.strip().upper() for s in symbols) if s not in known)


def bundled_coinbase_products() -> object:
    """The bundled Coinbase product list (``GET /products``, 2021-04-17), as decoded JSON."""
    return json.loads(data_path("coinbase_products.json").read_text(encoding="utf-8"))
