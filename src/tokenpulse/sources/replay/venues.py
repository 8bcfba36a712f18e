"""The replay's Coinbase and Binance frames: which feed parses them, and under which names.

The bundled replay set plays one recorded period for three venues (``data/README.md``):
Kraken v2-shaped frames (the primary, source ``replay``), Coinbase ``ticker`` messages
(``replay_coinbase_ws.jsonl``, source ``coinbase_replay``) and Binance combined-stream
``@ticker`` frames (``replay_binance_ws.jsonl``, source ``binance_replay``). Each goes through
its venue's real parser. The replay's own Binance frames are USDT-quoted, as Binance's are,
and are read as the USD pairs (the replay's QUOTE_EQUIVALENTS USD=USDT, for these frames only:
the demo's other settings are not changed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Protocol

from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.sources._feed import FeedFrame
from tokenpulse.sources.binance.ws_parser import parse_binance_ws
from tokenpulse.sources.coinbase.ws_parser import parse_coinbase_ws
from tokenpulse.sources.kraken.ws_parser import ParseResult

__all__ = [
    "KRAKEN_NAMES",
    "REPLAY_VENUES",
    "VENUE_FEEDS",
    "FrameParser",
    "ReplayVenue",
]


class FrameParser(Protocol):
    """A live source's frame parser, as the replay calls it."""

    def __call__(
        self, raw: str | bytes, *, source: str, received_at: datetime, registry: PairRegistry
    ) -> ParseResult | FeedFrame: ...


class ReplayVenue:
    """One venue of the bundled replay: its file, source name and names of each pair."""

    def __init__(self, venue: str, file: str, feed: str, names: dict[Pair, str]) -> None:
        self.venue = venue
        self.file = file
        self.feed = feed
        self.source = f"{venue}_replay"
        self.names = names
        self.pairs = {name: pair for pair, name in names.items()}


_USD = ("BTC", "ETH", "LTC", "XRP")
COINBASE: Final = ReplayVenue(
    "coinbase",
    "replay_coinbase_ws.jsonl",
    "coinbase_ws",
    {Pair(base, "USD"): f"{base}-USD" for base in _USD if base != "XRP"},  # no XRP-USD recorded
)
BINANCE: Final = ReplayVenue(
    "binance",
    "replay_binance_ws.jsonl",
    "binance_ws",
    {Pair(base, "USD"): f"{base}USDT" for base in _USD},
)
#: the venues the bundled replay plays besides its Kraken-shaped primary
REPLAY_VENUES: Final = (COINBASE, BINANCE)


def _coinbase(
    raw: str | bytes, *, source: str, received_at: datetime, registry: PairRegistry
) -> FeedFrame:
    return parse_coinbase_ws(raw, source=source, received_at=received_at, products=COINBASE.pairs)


def _binance(
    raw: str | bytes, *, source: str, received_at: datetime, registry: PairRegistry
) -> FeedFrame:
    return parse_binance_ws(raw, source=source, received_at=received_at, symbols=BINANCE.pairs)


#: feed name in a replay line -> its parser, for the venues besides Kraken
VENUE_FEEDS: Final[dict[str, FrameParser]] = {COINBASE.feed: _coinbase, BINANCE.feed: _binance}

#: the pairs of the bundled Kraken-shaped frames (source ``replay``), by their Kraken names
KRAKEN_NAMES: Final = {Pair(base, "USD"): f"{base}/USD" for base in _USD}
