"""Trading pairs: the canonical ``BASE/QUOTE`` form and every provider alias, in one place.

Kraken alone spells Bitcoin/US-dollar four ways (``XXBTZUSD`` in REST results, ``XBTUSD``
as altname, ``XBT/USD`` in WS v1, ``BTC/USD`` in WS v2); other venues write ``BTC-USD`` or
``BTCUSDT``. :class:`PairRegistry` is built from Kraken's AssetPairs list and resolves all of
them to one :class:`Pair`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tokenpulse.domain.errors import InvalidParameter, UnsupportedPair

#: Legacy asset codes some providers still use, mapped to the common symbol.
ASSET_ALIASES: Mapping[str, str] = {"XBT": "BTC", "XDG": "DOGE"}

_ASSET = re.compile(r"^[A-Z0-9]{1,12}$")
_SEPARATORS = re.compile(r"[/\-_: ]")
_CONCATENATED = re.compile(r"^[A-Z0-9.]{4,24}$")


def canonical_asset(code: str) -> str:
    """The common symbol for an asset code (``XBT`` -> ``BTC``, ``xdg`` -> ``DOGE``)."""
    upper = code.strip().upper()
    return ASSET_ALIASES.get(upper, upper)


@dataclass(frozen=True, slots=True, order=True)
class Pair:
    """A trading pair in canonical form: upper-case common symbols, ``BASE/QUOTE``."""

    base: str
    quote: str

    def __str__(self) -> str:
        return f"{self.base}/{self.quote}"

    @classmethod
    def of(cls, base: str, quote: str) -> Pair:
        return cls(canonical_asset(base), canonical_asset(quote))


def split_pair(text: str) -> Pair | None:
    """Parse a pair written with a separator (``btc/usd``, ``XBT-USD``); None if it has none.

    Raises InvalidParameter when the text has a separator but is not two asset codes.
    """
    cleaned = text.strip().upper()
    parts = _SEPARATORS.split(cleaned)
    if len(parts) == 1:
        return None
    if len(parts) != 2 or not all(_ASSET.match(part) for part in parts):
        raise InvalidParameter(
            f"invalid pair {text.strip()!r}: expected BASE/QUOTE such as BTC/USD",
            parameter="pair",
        )
    return Pair.of(parts[0], parts[1])


@dataclass(frozen=True, slots=True)
class KrakenPairInfo:
    """How Kraken names one pair on each of its APIs."""

    pair: Pair
    rest_key: str  # key of the Ticker/AssetPairs result, e.g. XXBTZUSD
    altname: str  # e.g. XBTUSD; accepted by ?pair=
    wsname: str  # WS v1 name, e.g. XBT/USD

    @property
    def ws_v2_symbol(self) -> str:
        """WS v2 uses the common symbols (``BTC/USD``)."""
        return str(self.pair)


@dataclass(slots=True)
class PairRegistry:
    """Known pairs (from Kraken's AssetPairs) and the aliases that resolve to them."""

    kraken: dict[Pair, KrakenPairInfo] = field(default_factory=dict)
    #: Pairs only other venues list (Coinbase, Binance): known, but with no Kraken names.
    others: set[Pair] = field(default_factory=set)
    _aliases: dict[str, Pair] = field(default_factory=dict)
    #: ``BASE/QUOTE`` of every known pair: the spelling feeds use, resolved without parsing.
    _canonical: dict[str, Pair] = field(default_factory=dict)

    @classmethod
    def from_kraken_asset_pairs(cls, payload: Mapping[str, Any]) -> PairRegistry:
        """Build from a ``GET /0/public/AssetPairs`` body; dark-pool ``.d`` pairs are skipped."""
        registry = cls()
        result = payload.get("result")
        if not isinstance(result, Mapping):
            raise ValueError("AssetPairs payload has no 'result' object")
        for key, info in result.items():
            if key.endswith(".d") or not isinstance(info, Mapping):
                continue
            wsname = info.get("wsname")
            altname = info.get("altname", key)
            if not isinstance(wsname, str) or "/" not in wsname:
                continue
            base, quote = wsname.split("/", 1)
            pair = Pair.of(base, quote)
            registry.add(KrakenPairInfo(pair=pair, rest_key=key, altname=altname, wsname=wsname))
        return registry

    def add(self, info: KrakenPairInfo) -> None:
        self.kraken[info.pair] = info
        self._canonical[str(info.pair)] = info.pair
        raw_base, raw_quote = info.wsname.split("/", 1)
        names = {
            info.rest_key,
            info.altname,
            info.wsname.replace("/", ""),
            f"{info.pair.base}{info.pair.quote}",
            f"{raw_base}{info.pair.quote}",
            f"{info.pair.base}{raw_quote}",
        }
        for name in names:
            self._aliases.setdefault(name.upper(), info.pair)

    def add_listed(self, pair: Pair, names: Iterable[str] = ()) -> None:
        """Know ``pair`` because another venue lists it (``names``: its spellings there)."""
        if pair not in self.kraken:
            self.others.add(pair)
        self._canonical[str(pair)] = pair
        for name in (*names, f"{pair.base}{pair.quote}"):
            self._aliases.setdefault(name.upper(), pair)

    def __contains__(self, pair: object) -> bool:
        return pair in self.kraken or pair in self.others

    def __len__(self) -> int:
        return len(self.kraken) + len(self.others)

    @property
    def pairs(self) -> list[Pair]:
        return sorted(self.kraken.keys() | self.others)

    def resolve(self, text: str) -> Pair:
        """Any spelling of a known pair -> the canonical Pair.

        Raises InvalidParameter for text that is not a pair at all and UnsupportedPair for a
        well-formed pair Kraken does not list.
        """
        known = self._canonical.get(text)
        if known is not None and known in self:  # a feed's symbol, e.g. "BTC/USD"
            return known
        pair = split_pair(text)
        if pair is not None:
            if pair not in self:
                raise UnsupportedPair(f"unknown pair {pair}", parameter="pair")
            return pair
        cleaned = text.strip().upper()
        if not cleaned:
            raise InvalidParameter("empty pair", parameter="pair")
        found = self._aliases.get(cleaned)
        if found is not None:
            return found
        if _CONCATENATED.match(cleaned):
            raise UnsupportedPair(f"unknown pair {cleaned}", parameter="pair")
        raise InvalidParameter(
            f"invalid pair {text.strip()!r}: expected BASE/QUOTE such as BTC/USD",
            parameter="pair",
        )

    def info(self, pair: Pair) -> KrakenPairInfo:
        return self.kraken[pair]

    def by_rest_key(self, key: str) -> Pair | None:
        """Map a Kraken REST result key (``XXBTZUSD``, ``XDGUSD``) to a Pair."""
        return self._aliases.get(key.upper())

    def suggestions(self, pair: Pair, limit: int = 8) -> list[Pair]:
        """Known pairs sharing the base or quote of ``pair`` (for error messages)."""
        same_base = [p for p in self.pairs if p.base == pair.base]
        same_quote = [p for p in self.pairs if p.quote == pair.quote and p not in same_base]
        return (same_base + same_quote)[:limit]


def parse_pair_list(text: str, registry: PairRegistry) -> list[Pair]:
    """Comma-separated pairs -> canonical Pairs in order, duplicates removed."""
    seen: dict[Pair, None] = {}
    for item in text.split(","):
        if item.strip():
            seen.setdefault(registry.resolve(item), None)
    return list(seen)


def unique(pairs: Iterable[Pair]) -> list[Pair]:
    return list(dict.fromkeys(pairs))


# -- other venues' spellings ----------------------------------------------------------------

#: Quote currencies a venue has no markets in at all: Binance (binance.com) quotes in USDT,
#: USDC, … but not in US dollars, so BTC/USD is served there only through an equivalent.
VENUE_MISSING_QUOTES: Mapping[str, frozenset[str]] = {"binance": frozenset({"USD"})}


def venue_symbol(venue: str, pair: Pair) -> str:
    """How ``venue`` writes ``pair``: ``BTC-USD`` (Coinbase), ``BTCUSDT`` (Binance)."""
    if venue == "coinbase":
        return f"{pair.base}-{pair.quote}"
    if venue == "binance":
        return f"{pair.base}{pair.quote}"
    if venue == "kraken":
        return str(pair)  # WS v2 name; REST uses the registry's altname
    raise ValueError(f"no symbol mapping for venue {venue!r}")


def parse_quote_equivalents(items: Iterable[str]) -> dict[str, str]:
    """``["USDT=USD"]`` -> ``{"USDT": "USD"}``: a market quoted in USDT may serve a USD pair.

    Raises ValueError for an item that is not ``ALIAS=QUOTE`` with two different assets.
    """
    result: dict[str, str] = {}
    for item in items:
        alias, sep, quote = item.partition("=")
        alias, quote = canonical_asset(alias), canonical_asset(quote)
        if not sep or not _ASSET.match(alias) or not _ASSET.match(quote) or alias == quote:
            raise ValueError(f"{item.strip()!r} is not ALIAS=QUOTE such as USDT=USD")
        result[alias] = quote
    return result


def venue_symbols(
    venue: str,
    pairs: Iterable[Pair],
    *,
    listed: Collection[Pair] | None,
    equivalents: Mapping[str, str],
) -> dict[Pair, str]:
    """The venue symbol serving each pair the venue can serve (pairs it cannot are absent).

    A pair is served by the venue's own market when the venue lists it (``listed`` None: the
    venue's list is unknown, every pair is assumed listed unless its quote is one the venue
    has no markets in). Otherwise a market quoted in an equivalent currency
    (``equivalents``: alias -> quote, e.g. ``USDT`` -> ``USD``) serves it: BTC/USD from
    Binance's BTCUSDT only when ``USDT=USD`` is configured.
    """
    missing = VENUE_MISSING_QUOTES.get(venue, frozenset())

    def lists(candidate: Pair) -> bool:
        if candidate.quote in missing:
            return False
        return listed is None or candidate in listed

    result: dict[Pair, str] = {}
    for pair in pairs:
        if lists(pair):
            result[pair] = venue_symbol(venue, pair)
            continue
        for alias, quote in equivalents.items():
            stand_in = Pair(pair.base, alias)
            if quote == pair.quote and lists(stand_in):
                result[pair] = venue_symbol(venue, stand_in)
                break
    return result


def pairs_from_coinbase_products(payload: object) -> frozenset[Pair]:
    """The pairs of a Coinbase ``GET /products`` body (products whose trading is disabled
    are left out). Raises ValueError for a body that is not a list of products."""
    if not isinstance(payload, list):
        raise ValueError("a Coinbase product list is a JSON array")
    pairs = set()
    for product in payload:
        if not isinstance(product, Mapping) or product.get("trading_disabled") is True:
            continue
        base, quote = product.get("base_currency"), product.get("quote_currency")
        if isinstance(base, str) and isinstance(quote, str) and base and quote:
            pairs.add(Pair.of(base, quote))
    return frozenset(pairs)


def pairs_from_binance_exchange_info(payload: object) -> frozenset[Pair]:
    """The trading pairs of a Binance ``GET /api/v3/exchangeInfo`` body.

    Raises ValueError for a body without a ``symbols`` array."""
    symbols = payload.get("symbols") if isinstance(payload, Mapping) else None
    if not isinstance(symbols, list):
        raise ValueError("a Binance exchangeInfo body has a 'symbols' array")
    pairs = set()
    for entry in symbols:
        if not isinstance(entry, Mapping) or entry.get("status", "TRADING") != "TRADING":
            continue
        base, quote = entry.get("baseAsset"), entry.get("quoteAsset")
        if isinstance(base, str) and isinstance(quote, str) and base and quote:
            pairs.add(Pair.of(base, quote))
    return frozenset(pairs)
