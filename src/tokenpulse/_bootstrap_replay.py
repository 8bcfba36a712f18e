"""Wiring of the bundled replay's venues (Kraken-shaped, Coinbase, Binance) for the LTP supervisor.

Part of the composition root (:mod:`tokenpulse.bootstrap`). ``SOURCES=replay`` with the
bundled recording and no live exchange venue plays three venues on one clock: the
Kraken-shaped frames are the primary (source ``replay``, what ``/api/v1/ltp`` serves), the
Coinbase and Binance frames feed the :class:`VenueBook` as venues ``coinbase`` and
``binance`` (sources ``coinbase_replay`` and ``binance_replay``), and the book's ``kraken``
venue is the primary's values, so the aggregate is built from the three as live. A replay of
a file of the user's own (``REPLAY_PATH``), or next to a live venue, is one feed as before.
"""

from __future__ import annotations

from tokenpulse._bootstrap_venues import LtpFeeds
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.ltp.feeds import SecondaryFeeds, VenueFeed
from tokenpulse.services.ltp.prices import PriceService
from tokenpulse.services.ltp.supervisor import TickerBuffer
from tokenpulse.services.ltp.venues import EXCHANGE_VENUES, VenueBook
from tokenpulse.settings import Settings
from tokenpulse.sources._health import EventSink, Source
from tokenpulse.sources.replay import ReplayKit
from tokenpulse.sources.replay.venues import KRAKEN_NAMES

__all__ = ["replay_streams"]


def replay_streams(
    kit: ReplayKit,
    settings: Settings,
    feeds: LtpFeeds,
    *,
    registry: PairRegistry,
    pairs: list[Pair],
    prices: PriceService,
    buffer: TickerBuffer,
    sink: EventSink,
    metrics: Metrics,
) -> list[Source]:
    """The replay's primary stream; with the bundled set alone, its venues join ``feeds``."""
    primary = kit.ltp_source(settings.replay_path, registry, sink, metrics)
    if settings.replay_path or any(v in settings.sources for v in EXCHANGE_VENUES):
        return [primary]
    venues = kit.venue_sources(registry, sink, metrics)
    maps = {"kraken": {p: name for p, name in KRAKEN_NAMES.items() if p in pairs}}
    for venue, _ in venues:
        maps[venue.venue] = {p: name for p, name in venue.names.items() if p in pairs}
    book = VenueBook(
        prices, maps, disagree_bps=settings.venue_disagree_bps, aliases={primary.name: "kraken"}
    )
    feeds.book = book
    feeds.secondary = SecondaryFeeds(
        [VenueFeed(venue.venue, stream, None) for venue, stream in venues],
        book=book,
        buffer=buffer,
        fallback_timeout=settings.kraken_fallback_timeout,
        poll_interval=settings.rest_poll_interval,
    )
    return [primary]
