"""Each venue's latest value per pair, and the cross-venue aggregate built from them.

Every ticker any exchange feed reads (Kraken, Coinbase, Binance; WebSocket or REST) is
recorded here under its venue, whichever venue ``/api/v1/ltp`` serves, so
``?source=coinbase`` and the aggregate always have the venues' own values. A value's age
comes from the same :class:`~tokenpulse.services.ltp.prices.PriceService` freshness as every
other value (receive time, or a later heartbeat of its feed). The aggregate is computed by
the pure :func:`~tokenpulse.domain.aggregate.aggregate_price`; its Go-shaped ticker
(``source: "aggregate"``) is kept ready for ``?source=aggregate`` and for failover.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tokenpulse.domain.aggregate import Aggregate, VenueQuote, aggregate_price
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.time import from_epoch
from tokenpulse.services.ltp.prices import PriceService
from tokenpulse.wire.aggregate import aggregate_to_json
from tokenpulse.wire.ltp import LtpView

__all__ = ["AGGREGATE", "EXCHANGE_VENUES", "VenueBook", "venue_of"]

AGGREGATE = "aggregate"
EXCHANGE_VENUES = ("kraken", "coinbase", "binance")


def venue_of(source: str) -> str:
    """The venue of a feed name: ``coinbase_ws``, ``_rest``, ``_replay`` -> ``coinbase``."""
    head, _, tail = source.rpartition("_")
    return head if tail in ("ws", "rest", "replay") and head else source


class VenueBook:
    """The latest value of each enabled venue for each supported pair, and their aggregate.

    ``symbols`` says, per venue, which pairs it serves and under which name (a venue that
    does not list a pair is reported ``missing`` for it). ``aliases`` names the venue of a
    source whose name does not say it (the bundled replay's Kraken-shaped ``replay``).
    """

    def __init__(
        self,
        prices: PriceService,
        symbols: Mapping[str, Mapping[Pair, str]],
        *,
        disagree_bps: float,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.prices = prices
        self.aliases = dict(aliases or {})
        self.venues = list(symbols)
        self.symbols = {venue: dict(names) for venue, names in symbols.items()}
        self.disagree_bps = Decimal(str(disagree_bps))
        self._views: dict[tuple[str, Pair], LtpView] = {}
        self._aggregate_views: dict[Pair, LtpView] = {}

    @property
    def aggregating(self) -> bool:
        """An aggregate exists when more than one exchange venue is enabled (SPEC §4.2)."""
        return len(self.venues) > 1

    # ---------------------------------------------------------------- writes

    def record(self, ticker: Ticker) -> str | None:
        """Keep ``ticker`` as its venue's value; the venue, or None when it is not one."""
        return self.record_view(LtpView.of(ticker))

    def record_view(self, view: LtpView) -> str | None:
        """:meth:`record` for a ticker already serialised (ingestion builds each view once)."""
        ticker = view.ticker
        venue = self.aliases.get(ticker.source) or venue_of(ticker.source)
        if venue not in self.symbols or ticker.pair not in self.prices.supported:
            return None
        if ticker.last <= 0:
            return None
        self._views[(venue, ticker.pair)] = view
        self.prices.confirm(ticker.source, view.received)
        return venue

    def refresh_aggregate(self, pair: Pair, now: float) -> tuple[Aggregate, LtpView | None]:
        """Recompute the aggregate of ``pair``; its ticker view is new when its price changed.

        Returns the aggregate and the view to serve (the previous one when no venue can be
        used now: it ages until one can).
        """
        result = self.aggregate(pair, now)
        previous = self._aggregate_views.get(pair)
        if result.price is None:
            return result, previous
        fresh_at = max(
            self.prices.fresh_at(view.ticker.source, view.received)
            for c in result.used
            if (view := self._views.get((c.quote.venue, pair))) is not None
        )
        self.prices.confirm(AGGREGATE, fresh_at)
        if previous is not None and previous.ticker.last == result.price:
            return result, previous
        ticker = Ticker(
            pair=pair,
            last=result.price,
            source=AGGREGATE,
            received_at=from_epoch(fresh_at),
            volume_24h=result.volume,
        )
        view = LtpView.of(ticker)
        self._aggregate_views[pair] = view
        return result, view

    # ---------------------------------------------------------------- reads

    def view(self, venue: str, pair: Pair) -> LtpView | None:
        """The latest value of ``venue`` (or of the aggregate) for ``pair``."""
        if venue == AGGREGATE:
            return self._aggregate_views.get(pair)
        return self._views.get((venue, pair))

    def serves(self, venue: str, pair: Pair) -> bool:
        """Whether ``venue`` is enabled and lists ``pair``."""
        return pair in self.symbols.get(venue, {})

    def quotes(self, pair: Pair, now: float) -> list[VenueQuote]:
        """Every enabled venue's reading of ``pair`` (no price: it has none)."""
        quotes: list[VenueQuote] = []
        for venue in self.venues:
            view = self._views.get((venue, pair))
            if view is None or not self.serves(venue, pair):
                quotes.append(VenueQuote(venue))
                continue
            ticker = view.ticker
            quotes.append(
                VenueQuote(
                    venue,
                    ticker.last,
                    ticker.volume_24h,
                    self.prices.age_ms(view, now),
                    ticker.source,
                )
            )
        return quotes

    def aggregate(self, pair: Pair, now: float) -> Aggregate:
        """The aggregate of ``pair`` as of ``now`` (unix seconds)."""
        stale_ms = int(self.prices.stale_after * 1000)
        return aggregate_price(
            pair, self.quotes(pair, now), stale_after_ms=stale_ms, disagree_bps=self.disagree_bps
        )

    def describe(self, pair: Pair, now: float) -> dict[str, Any]:
        """The aggregate of ``pair`` and how each venue entered it, as JSON-ready data."""
        aggregate = self.aggregate(pair, now)
        return aggregate_to_json(aggregate, self.symbols, stale_after=self.prices.stale_after)
