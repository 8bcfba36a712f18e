"""Each venue's list of tradable pairs: fetched at start, cached, bundled (SPEC §3.3, §4.1).

Which pairs a venue can serve comes from its own list — Kraken ``GET /0/public/AssetPairs``,
Coinbase ``GET /products``, Binance ``GET /api/v3/exchangeInfo`` — taken from the best
place it can be had:

1. **fetched** at start (bounded by ``PAIR_LISTS_TIMEOUT``; ``PAIR_LISTS_FETCH=false`` skips
   it), and then written to the cache;
2. the **cache**, ``PAIR_LISTS_DIR/<venue>.json`` (``./data/pairs`` by default), written by
   the last successful fetch or by ``tokenpulse pairs --refresh``;
3. the **bundled** list shipped in the package (Kraken 2021-04-17 plus the pairs of a
   2026-02-14 ticker; Coinbase 2021-04-17; none for Binance).

Loading settings checks ``SUPPORTED_PAIRS`` against the cache-or-bundled lists (no network);
the start checks them again against the fetched lists. A pair no enabled venue lists stops
the start, naming each list used and its age; a pair some venues list is served by those.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import structlog

from tokenpulse.data import (
    BUNDLED_LIST_DATES,
    bundled_coinbase_products,
    bundled_kraken_asset_pairs,
)
from tokenpulse.domain.pairs import (
    Pair,
    PairRegistry,
    pairs_from_binance_exchange_info,
    pairs_from_coinbase_products,
    venue_symbol,
)
from tokenpulse.domain.time import isoformat_z, parse_iso, utcnow

__all__ = [
    "LIST_PATHS",
    "PairList",
    "check_listed",
    "fetch_pair_list",
    "offline_pair_list",
    "registry_of",
    "start_pair_lists",
]

log = structlog.get_logger(__name__)

LIST_PATHS = {
    "kraken": "/0/public/AssetPairs",
    "coinbase": "/products",
    "binance": "/api/v3/exchangeInfo",
}
LABELS = {"kraken": "Kraken", "coinbase": "Coinbase", "binance": "Binance"}


@dataclass(frozen=True, slots=True)
class PairList:
    """One venue's pair list and where it came from."""

    venue: str
    origin: str  # fetched, cache, bundled, none
    as_of: datetime | None
    pairs: frozenset[Pair]
    payload: Any = None  # the venue's body (Kraken's builds the registry)

    def describe(self, now: datetime | None = None) -> str:
        """``the cached Coinbase list of 2026-02-10 (3 days old)``."""
        label = LABELS.get(self.venue, self.venue)
        if self.origin == "none":
            return f"no {label} list (none bundled, none cached, none fetched)"
        if self.as_of is None:
            return f"the {self.origin} {label} list"
        age = ((now or utcnow()) - self.as_of).total_seconds()
        return f"the {_ORIGIN[self.origin]} {label} list of {self.as_of:%Y-%m-%d} ({_age(age)})"


_ORIGIN = {"fetched": "freshly fetched", "cache": "cached", "bundled": "bundled"}


def parse_list(venue: str, payload: Any) -> frozenset[Pair]:
    """The pairs of a venue's list body; ValueError when it is not one."""
    if venue == "kraken":
        return frozenset(PairRegistry.from_kraken_asset_pairs(payload).pairs)
    if venue == "coinbase":
        return pairs_from_coinbase_products(payload)
    if venue == "binance":
        return pairs_from_binance_exchange_info(payload)
    raise ValueError(f"no pair list for {venue!r}")


def bundled_pair_list(venue: str) -> PairList:
    """The list shipped in the package (Binance has none)."""
    date = BUNDLED_LIST_DATES.get(venue)
    if venue == "kraken":
        payload: Any = bundled_kraken_asset_pairs()
    elif venue == "coinbase":
        payload = bundled_coinbase_products()
    else:
        return PairList(venue, "none", None, frozenset())
    as_of = datetime.fromisoformat(date).replace(tzinfo=UTC) if date else None
    return PairList(venue, "bundled", as_of, parse_list(venue, payload), payload)


def offline_pair_list(venue: str, cache_dir: str | Path) -> PairList:
    """The cached list when there is a usable one, else the bundled one (no network)."""
    path = Path(cache_dir) / f"{venue}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        payload = cached["payload"]
        return PairList(
            venue, "cache", parse_iso(cached["fetched_at"]), parse_list(venue, payload), payload
        )
    except FileNotFoundError:
        return bundled_pair_list(venue)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("pair list cache unusable", venue=venue, path=str(path), error=str(exc))
        return bundled_pair_list(venue)


def fetch_pair_list(
    venue: str, base_url: str, *, timeout: float, cache_dir: str | Path | None
) -> PairList | str:
    """Fetch a venue's list (one GET, no retry: the start must not wait); cache it.

    Returns the list, or why it could not be had (``HTTP 503``, ``timed out``, …).
    """
    url = base_url.rstrip("/") + LIST_PATHS[venue]
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=False)
    except httpx.TimeoutException:
        return f"timed out after {timeout:g}s"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}"
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    try:
        payload = response.json()
        pairs = parse_list(venue, payload)
    except ValueError as exc:
        return f"not a pair list: {str(exc)[:100]}"
    if not pairs:
        return "an empty pair list"
    now = utcnow()
    if cache_dir is not None:
        _write_cache(Path(cache_dir) / f"{venue}.json", venue, url, now, payload)
    return PairList(venue, "fetched", now, pairs, payload)


def _write_cache(path: Path, venue: str, url: str, now: datetime, payload: Any) -> None:
    body = {"venue": venue, "url": url, "fetched_at": isoformat_z(now), "payload": payload}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, separators=(",", ":")), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:  # a read-only directory costs the cache, not the start
        log.warning("pair list cache not written", venue=venue, path=str(path), error=str(exc))


def registry_of(lists: Mapping[str, PairList]) -> PairRegistry:
    """A registry of every listed pair: Kraken's names from its list, the others' spellings."""
    kraken = lists.get("kraken")
    payload = kraken.payload if kraken is not None and kraken.payload is not None else None
    registry = (
        PairRegistry.from_kraken_asset_pairs(payload)
        if payload is not None
        else PairRegistry.from_kraken_asset_pairs(bundled_kraken_asset_pairs())
    )
    for venue, pair_list in lists.items():
        if venue == "kraken":
            continue
        for pair in pair_list.pairs:
            registry.add_listed(pair, [venue_symbol(venue, pair)])
    return registry


def check_listed(
    pairs: Sequence[Pair], lists: Mapping[str, PairList], *, equivalents: Mapping[str, str]
) -> list[str]:
    """One problem per pair that no list of ``lists`` has (also through a quote equivalent)."""
    problems = []
    for pair in pairs:
        if any(_lists(pair, pl, equivalents) for pl in lists.values()):
            continue
        used = "; ".join(pl.describe() for pl in lists.values())
        names = ", ".join(LABELS.get(v, v) for v in lists)
        problems.append(f"{pair} is not a pair {names} lists ({used})")
    return problems


def _lists(pair: Pair, pair_list: PairList, equivalents: Mapping[str, str]) -> bool:
    if pair in pair_list.pairs:
        return True
    return any(
        quote == pair.quote and Pair(pair.base, alias) in pair_list.pairs
        for alias, quote in equivalents.items()
    )


def _age(seconds: float) -> str:
    if seconds < 120:
        return "just now" if seconds < 5 else f"{int(seconds)} s old"
    if seconds < 2 * 3600:
        return f"{int(seconds // 60)} min old"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h old"
    if seconds < 2 * 365 * 86400:
        return f"{int(seconds // 86400)} days old"
    return f"{int(seconds // (365 * 86400))} years old"


def start_pair_lists(
    venues: Sequence[str],
    base_urls: Mapping[str, str],
    *,
    fetch: bool,
    timeout: float,
    cache_dir: str | Path,
) -> dict[str, PairList]:
    """Each venue's best list at start: fetched (and cached), else cached, else bundled."""
    lists: dict[str, PairList] = {}
    for venue in venues:
        fetched = (
            fetch_pair_list(venue, base_urls[venue], timeout=timeout, cache_dir=cache_dir)
            if fetch
            else "PAIR_LISTS_FETCH=false"
        )
        if isinstance(fetched, PairList):
            lists[venue] = fetched
            log.info("pair list fetched", venue=venue, pairs=len(fetched.pairs))
            continue
        lists[venue] = offline_pair_list(venue, cache_dir)
        (log.warning if fetch else log.info)(
            "pair list not fetched; using " + lists[venue].describe(),
            venue=venue,
            reason=fetched,
        )
    return lists
