"""What the token services ask of the adapters behind them (ports, not adapters).

The history database: :class:`~tokenpulse.store.history.repository.HistoryRepository` and
:class:`~tokenpulse.store.history.writer.HistoryWriter` satisfy :class:`HistoryStore` and
:class:`HistoryBatcher` structurally. The market-data providers, as
:class:`~tokenpulse.services.tokens.poller.MarketScheduler` polls them:
:class:`~tokenpulse.sources.coinmarketcap.client.CmcClient` satisfies :class:`CmcMarket`,
:class:`~tokenpulse.sources.coingecko.client.CoinGeckoClient` :class:`CoinGeckoMarket`. The
composition root (:mod:`tokenpulse.bootstrap`) picks them; the services import only these,
so they never reach SQL or HTTP. The backfill's provider ports (market charts, OHLC candles)
sit with their one user, :mod:`~tokenpulse.services.tokens.backfill`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.tokens import TokenQuote
from tokenpulse.sources._health import SourceHealth
from tokenpulse.sources.coinmarketcap.credits import CreditBudget

#: ``(t, price, market_cap, volume_24h, velocity)``, e.g. a
#: :class:`~tokenpulse.domain.history.TokenPoint`.
TokenPointTuple = tuple[datetime, Decimal | None, Decimal | None, Decimal | None, Decimal | None]
Gap = tuple[datetime, datetime]


class HistoryStore(Protocol):
    """Token and LTP history: backfill writes, hole finding, rollups and retention."""

    async def write_token_points(
        self,
        token_id: str,
        points: Sequence[TokenPointTuple],
        *,
        origin: str = ...,
        source: str = ...,
    ) -> int:
        """Upsert token points (never over a live row); rows actually written."""
        ...

    async def write_ltp_points(
        self,
        pair: Pair,
        points: Sequence[tuple[datetime, Decimal]],
        *,
        origin: str = ...,
        source: str = ...,
    ) -> int:
        """Upsert ``(t, price)`` LTP points (never over a live row); rows actually written."""
        ...

    async def token_gaps(
        self,
        token_id: str,
        start: datetime,
        end: datetime,
        *,
        expected_interval: timedelta,
        granularity: str = ...,
    ) -> list[Gap]:
        """Holes in ``[start, end)`` longer than twice ``expected_interval``, oldest first."""
        ...

    async def ltp_gaps(
        self,
        pair: Pair,
        start: datetime,
        end: datetime,
        *,
        expected_interval: timedelta,
        granularity: str = ...,
    ) -> list[Gap]:
        """Holes in one pair's samples, as :meth:`token_gaps`."""
        ...

    async def rollup(self, now: datetime) -> dict[str, int]:
        """Roll up every minute written since the last run and ended by ``now``."""
        ...

    async def apply_retention(
        self, now: datetime, raw_keep: timedelta, rollup_keep: timedelta
    ) -> dict[str, int]:
        """Delete raw rows and rollups past their retention; rows deleted per table."""
        ...


class HistoryBatcher(Protocol):
    """The batched writer of live history: runs until stopped, then writes what is left."""

    async def run(self) -> None:
        """Flush periodically until :meth:`stop`."""
        ...

    async def stop(self, timeout: float = ...) -> int:  # noqa: ASYNC109
        """Stop :meth:`run` and write what is left; rows that could not be written."""
        ...

    def unwritten(self) -> dict[str, int]:
        """Rows still buffered, per table (shutdown accounting)."""
        ...

    def spill(self, path: Path) -> int:
        """Append the buffered rows to a spill file and forget them; returns the rows."""
        ...

    def load_spill(self, path: Path) -> int:
        """Buffer the rows of a spill file and remove it; returns the rows."""
        ...


class MarketAnswer(Protocol):
    """One market-data answer: the quotes read (e.g. CoinGecko's ``MarketsResult``)."""

    @property
    def quotes(self) -> list[TokenQuote]: ...


class CreditCount(Protocol):
    """CoinMarketCap's ``status`` object, as far as the scheduler cares."""

    @property
    def credit_count(self) -> int: ...


class PaidAnswer(MarketAnswer, Protocol):
    """A CoinMarketCap answer (``ListingResult``): the quotes and the credits they cost."""

    @property
    def status(self) -> CreditCount: ...


class MarketClient(Protocol):
    """What every market-data client shows the scheduler: its health and its state."""

    @property
    def health(self) -> SourceHealth: ...

    def state(self) -> dict[str, Any]: ...


class CoinGeckoMarket(MarketClient, Protocol):
    """The CoinGecko client: the top ``top_n`` coins by market cap, 250 a page."""

    async def markets(self, top_n: int | None = None) -> MarketAnswer: ...


class CmcMarket(MarketClient, Protocol):
    """The CoinMarketCap client: listings or quotes, paid in credits from a shared budget."""

    @property
    def budget(self) -> CreditBudget | None: ...

    @property
    def has_key(self) -> bool: ...

    @property
    def disabled_reason(self) -> str | None: ...

    @property
    def credits_used(self) -> int: ...

    def attach_budget(self, budget: CreditBudget) -> None: ...

    def rate_limited_for(self) -> float: ...

    async def listings(self, limit: int) -> PaidAnswer: ...

    async def quotes(self, *, symbols: Sequence[str]) -> PaidAnswer: ...
