"""Wiring of the exchange venues (Kraken, Coinbase, Binance) for the LTP supervisor.

Part of the composition root (:mod:`tokenpulse.bootstrap` calls :func:`build_ltp_feeds`):
picks the primary venue's stream and REST client (``LTP_PRIMARY``), builds the other enabled
venues' feeds, each venue's symbol for each pair (``domain.pairs.venue_symbols``, with
``QUOTE_EQUIVALENTS``), the :class:`VenueBook` and the failover policy (``LTP_FALLBACK``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tokenpulse._pair_lists import PairList, check_listed, registry_of, start_pair_lists
from tokenpulse.domain.errors import ConfigError, InvalidParameter
from tokenpulse.domain.pairs import (
    Pair,
    PairRegistry,
    parse_quote_equivalents,
    split_pair,
    venue_symbols,
)
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.ltp.feeds import Failover, RestTickers, SecondaryFeeds, VenueFeed
from tokenpulse.services.ltp.prices import PriceService
from tokenpulse.services.ltp.supervisor import TickerBuffer
from tokenpulse.services.ltp.venues import EXCHANGE_VENUES, VenueBook
from tokenpulse.settings import Settings
from tokenpulse.sources._health import EventSink, Source
from tokenpulse.sources.binance.rest import BinanceRestClient
from tokenpulse.sources.binance.ws import BinanceWsSource
from tokenpulse.sources.coinbase.rest import CoinbaseRestClient
from tokenpulse.sources.coinbase.ws import CoinbaseWsSource
from tokenpulse.sources.kraken.rest import KrakenRestClient
from tokenpulse.sources.kraken.ws import KrakenWsSource

__all__ = ["LtpFeeds", "build_ltp_feeds", "resolve_pairs_at_start", "venue_symbol_maps"]


def resolve_pairs_at_start(
    settings: Settings,
) -> tuple[dict[str, PairList], PairRegistry, list[Pair]]:
    """Each enabled venue's pair list, the registry of every listed pair, SUPPORTED_PAIRS.

    Raises ConfigError when a supported pair is listed by no enabled venue (naming each list
    used and its age): the start stops rather than serve a pair nobody trades.
    """
    venues = [v for v in settings.sources if v in EXCHANGE_VENUES] or ["kraken"]
    urls = {
        "kraken": settings.kraken_rest_url,
        "coinbase": settings.coinbase_rest_url,
        "binance": settings.binance_rest_url,
    }
    fetch = settings.pair_lists_fetch and any(v in settings.sources for v in EXCHANGE_VENUES)
    lists = start_pair_lists(
        venues,
        urls,
        fetch=fetch,
        timeout=settings.pair_lists_timeout,
        cache_dir=settings.pair_lists_dir,
    )
    known = {v: pl for v, pl in lists.items() if pl.origin != "none"}
    registry = registry_of(known)
    pairs: list[Pair] = []
    problems: list[str] = []
    for text in settings.supported_pairs:  # canonical BASE/QUOTE already (settings)
        try:
            pairs.append(registry.resolve(text))
        except InvalidParameter:
            pair = split_pair(text)
            if pair is None:
                problems.append(f"SUPPORTED_PAIRS: {text} is listed by no enabled venue")
            else:
                pairs.append(pair)  # check_listed says which lists lack it
    equivalents = parse_quote_equivalents(settings.quote_equivalents)
    if known:
        problems += [
            f"SUPPORTED_PAIRS: {p}" for p in check_listed(pairs, known, equivalents=equivalents)
        ]
    if problems:
        raise ConfigError(problems)
    return lists, registry, pairs


@dataclass
class LtpFeeds:
    """What the supervisor runs: the primary venue's feeds, the others', the book."""

    streams: list[Source]
    rest: RestTickers | None
    book: VenueBook
    secondary: SecondaryFeeds
    failover: Failover | None


def venue_symbol_maps(
    settings: Settings, registry: PairRegistry, pairs: list[Pair], lists: dict[str, PairList]
) -> dict[str, dict[Pair, str]]:
    """For each enabled venue, the pairs it serves (by its list) and their names there."""
    equivalents = parse_quote_equivalents(settings.quote_equivalents)
    maps: dict[str, dict[Pair, str]] = {}
    for venue in (v for v in settings.sources if v in EXCHANGE_VENUES):
        if venue == "kraken":
            maps[venue] = {p: registry.info(p).ws_v2_symbol for p in pairs if p in registry.kraken}
        else:  # a venue without any list (Binance offline) is assumed to list every pair
            pair_list = lists.get(venue)
            listed = pair_list.pairs if pair_list and pair_list.origin != "none" else None
            maps[venue] = venue_symbols(venue, pairs, listed=listed, equivalents=equivalents)
    return maps


def build_ltp_feeds(
    settings: Settings,
    *,
    registry: PairRegistry,
    pairs: list[Pair],
    prices: PriceService,
    metrics: Metrics,
    http: httpx.AsyncClient,
    kraken_rest: KrakenRestClient | None,
    buffer: TickerBuffer,
    sink: EventSink,
    lists: dict[str, PairList],
) -> LtpFeeds:
    """Every exchange venue's feeds, the primary's apart (replay is added by the caller)."""
    maps = venue_symbol_maps(settings, registry, pairs, lists)
    common: dict[str, Any] = {
        "sink": sink,
        "metrics": metrics,
        "idle_timeout": settings.ws_idle_timeout,
        "backoff_initial": settings.backoff_initial,
        "backoff_max": settings.backoff_max,
    }
    feeds: dict[str, VenueFeed] = {}
    for venue, symbols in maps.items():
        stream: Any
        rest: Any
        if venue == "kraken":
            stream = KrakenWsSource(
                url=settings.kraken_ws_url,
                pairs=list(symbols),
                registry=registry,
                max_pairs_per_connection=settings.kraken_ws_max_pairs_per_connection,
                subscribe_batch_size=settings.kraken_subscribe_batch_size,
                **common,
            )
            rest = kraken_rest
        else:
            rest_options: dict[str, Any] = {
                "http": http,
                "metrics": metrics,
                "request_timeout": settings.kraken_request_timeout,
                "max_retries": settings.kraken_max_retries,
            }
            ws_options = {
                "symbols": symbols,
                "max_pairs_per_connection": settings.venue_ws_max_pairs_per_connection,
                "subscribe_batch_size": settings.kraken_subscribe_batch_size,
                **common,
            }
            if venue == "coinbase":
                stream = CoinbaseWsSource(url=settings.coinbase_ws_url, **ws_options)
                rest = CoinbaseRestClient(
                    base_url=settings.coinbase_rest_url, products=symbols, **rest_options
                )
            else:
                stream = BinanceWsSource(
                    url=settings.binance_ws_url,
                    max_connection_age=settings.binance_max_connection_age,
                    **ws_options,
                )
                rest = BinanceRestClient(
                    base_url=settings.binance_rest_url, symbols=symbols, **rest_options
                )
        feeds[venue] = VenueFeed(venue, stream, rest)
    book = VenueBook(prices, maps, disagree_bps=settings.venue_disagree_bps)
    primary = feeds.pop(settings.ltp_primary, None)
    secondary = SecondaryFeeds(
        list(feeds.values()),
        book=book,
        buffer=buffer,
        fallback_timeout=settings.kraken_fallback_timeout,
        poll_interval=settings.rest_poll_interval,
    )
    failover = Failover(book, prices, settings.ltp_primary, settings.ltp_fallback) if maps else None
    return LtpFeeds(
        streams=[primary.stream] if primary is not None and primary.stream is not None else [],
        rest=primary.rest if primary is not None else None,
        book=book,
        secondary=secondary,
        failover=failover,
    )
