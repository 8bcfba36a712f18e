"""Package data: reference tables and the recorded market data the replay source plays.

See ``data/README.md`` for where every file comes from.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from tokenpulse.domain.identity import KnownToken, parse_known_tokens
from tokenpulse.domain.pairs import PairRegistry

KNOWN_TOKENS_FILE = "token_identities.json"


def data_path(name: str) -> Path:
    """Filesystem path of a bundled data file."""
    return Path(str(files("tokenpulse.data").joinpath(name)))


@lru_cache(maxsize=1)
def kraken_pair_registry() -> PairRegistry:
    """The bundled Kraken AssetPairs list as a PairRegistry."""
    payload = json.loads(data_path("kraken_assetpairs.json").read_text(encoding="utf-8"))
    return PairRegistry.from_kraken_asset_pairs(payload)


@lru_cache(maxsize=1)
def known_tokens() -> tuple[KnownToken, ...]:
    """The bundled table of known CoinMarketCap/CoinGecko differences (read once)."""
    text = data_path(KNOWN_TOKENS_FILE).read_text(encoding="utf-8")
    return parse_known_tokens(json.loads(text))
