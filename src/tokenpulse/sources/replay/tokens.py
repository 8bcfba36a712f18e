"""Token replay for ``SOURCES=replay`` (SPEC §3.6): recorded market data through the real parsers.

:class:`MarketReplaySource` plays two recorded provider answers, bundled under
``data/replay/`` (see ``data/README.md``), through the same parsers as the live sources:

* CoinGecko ``coins/markets`` top 100 of 2021-06-24 → :func:`parse_markets`;
* CoinMarketCap ``listings/latest`` top 100 of 2021-08-31 → :func:`parse_listings`, of which
  only the coins the CoinGecko answer lacks are emitted (a symbol is never emitted twice per
  batch: the two recordings are two months apart and would disagree).

A batch goes to ``sink`` every ``interval / speed`` seconds (``MARKET_POLL_INTERVAL /
REPLAY_SPEED``: one second by default), with ``received_at`` = now so the values look live,
``source`` = ``"replay"``, and each coin's recorded ``last_updated`` kept as ``as_of``.

So that prices move and velocity trends have something to show, the twelve coins with a
recorded CoinGecko daily export (``data/replay/history/*.csv``) take price, market cap and 24 h
volume from successive recorded days — one day per batch, over the last 365 days of the
exports (2022-12-01 … 2023-11-30), looping — with ``as_of`` the recorded day, the 24 h / 7 d
change computed from the recorded prices a day and a week earlier, and no 1 h change.

:func:`history_rows` exposes those exports (exact digits); the composition root hands it to
the token ingest, which seeds history from them in replay mode.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import json
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

import structlog

from tokenpulse.data import data_path
from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.history import HistoryRow
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.time import utcnow
from tokenpulse.domain.tokens import TokenQuote
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._health import ParseErrorReporter, SourceHealth, bind_health_metrics
from tokenpulse.sources.coingecko.parser import parse_markets
from tokenpulse.sources.coinmarketcap.parser import parse_listings

log = structlog.get_logger(__name__)

REPLAY_DIR = "replay"
MARKETS_FILE = "coins_markets_usd_2021-06-24_top100.json"
LISTINGS_FILE = "listings_latest_2021-08-31_top100.json"
HISTORY_HEADER = ("snapped_at", "price", "market_cap", "total_volume")
#: CoinGecko coin id -> its daily export in ``data/replay/history/``.
HISTORY_FILES = {
    "bitcoin": "btc-usd-max.csv",
    "ethereum": "eth-usd-max.csv",
    "litecoin": "ltc-usd-max.csv",
    "ripple": "xrp-usd-max.csv",
    "cardano": "ada-usd-max.csv",
    "bitcoin-cash": "bch-usd-max.csv",
    "binancecoin": "bnb-usd-max.csv",
    "eos": "eos-usd-max.csv",
    "ethereum-classic": "etc-usd-max.csv",
    "chainlink": "link-usd-max.csv",
    "solana": "sol-usd-max.csv",
    "tron": "trx-usd-max.csv",
}
REPLAY_DAYS = 365
WEEK = 7
_PERCENT = Decimal("0.00000001")


def parse_history_csv(
    lines: Iterable[str], *, name: str
) -> tuple[list[HistoryRow], list[ParseError]]:
    """Rows of a CoinGecko "Export data" CSV, digit for digit, and one error per bad line.

    ``snapped_at`` is ``YYYY-MM-DD HH:MM:SS UTC`` (usually midnight, sometimes not: kept as
    is); an empty ``market_cap`` or ``total_volume`` is None; ``0`` and ``0.0`` stay as
    written, as does scientific notation. Raises :class:`ParseError` for a wrong header.
    """
    reader = csv.reader(lines)
    header = tuple(cell.strip() for cell in next(reader, ()))
    if header != HISTORY_HEADER:
        raise ParseError("history_header", f"{name}: header {header!r} is not {HISTORY_HEADER}")
    rows: list[HistoryRow] = []
    errors: list[ParseError] = []
    for number, cells in enumerate(reader, start=2):
        if not cells:
            continue
        try:
            rows.append(_history_row(cells, f"{name}:{number}"))
        except ParseError as exc:
            errors.append(exc)
    return rows, errors


def _history_row(cells: list[str], where: str) -> HistoryRow:
    if len(cells) != len(HISTORY_HEADER):
        raise ParseError("history_row", f"{where}: {len(cells)} cells, expected 4")
    stamp, price, market_cap, volume = (cell.strip() for cell in cells)
    try:
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)
    except ValueError:
        raise ParseError("history_time", f"{where}: {stamp[:40]!r} is not a UTC time") from None
    value = _cell(price, f"{where} price")
    if value is None:
        raise ParseError("history_row", f"{where}: no price")
    return HistoryRow(at, value, _cell(market_cap, f"{where} market_cap"), _cell(volume, where))


def _cell(text: str, where: str) -> Decimal | None:
    if not text:
        return None
    try:
        return parse_decimal(text, field=where)
    except ValueError as exc:
        raise ParseError("history_number", str(exc)) from None


@lru_cache(maxsize=len(HISTORY_FILES))
def _history(coin_id: str) -> tuple[HistoryRow, ...]:
    name = HISTORY_FILES[coin_id]
    path = data_path(REPLAY_DIR) / "history" / name
    with path.open(encoding="utf-8", newline="") as handle:
        rows, errors = parse_history_csv(handle, name=name)
    for error in errors:
        log.warning("bad history row skipped", file=name, error=str(error))
    return tuple(rows)


def history_rows(coin_id: str) -> list[HistoryRow]:
    """The bundled daily history of a CoinGecko coin id (``bitcoin``…), oldest first.

    Empty for a coin without a bundled export (:data:`HISTORY_FILES` lists the twelve).
    """
    if coin_id not in HISTORY_FILES:
        return []
    return list(_history(coin_id))


def history_coin_ids() -> list[str]:
    """The CoinGecko ids that have bundled history."""
    return sorted(HISTORY_FILES)


class _Playlist:
    """Each coin's recorded day for every batch of the replay window, plus a week before."""

    def __init__(self, histories: dict[str, list[HistoryRow]], days: int) -> None:
        last = min(rows[-1].at.date() for rows in histories.values() if rows)
        self.days = [last - timedelta(days=days - 1 - i) for i in range(days)]
        start = self.days[0] - timedelta(days=WEEK)
        span = [start + timedelta(days=i) for i in range(days + WEEK)]
        self.rows: dict[str, list[HistoryRow | None]] = {}
        for coin, rows in histories.items():
            by_day: dict[date, HistoryRow] = {}
            for row in rows:
                by_day[row.at.date()] = row  # a later stamp on the same day wins
            current: HistoryRow | None = None
            earlier = [row for row in rows if row.at.date() < start]
            if earlier:
                current = earlier[-1]
            aligned: list[HistoryRow | None] = []
            for day in span:  # a missing day carries the last recorded one forward
                current = by_day.get(day, current)
                aligned.append(current)
            self.rows[coin] = aligned

    def override(self, quote: TokenQuote, index: int) -> TokenQuote:
        rows = self.rows.get(quote.coingecko_id or "")
        row = rows[index + WEEK] if rows else None
        if rows is None or row is None:
            return quote
        return dataclasses.replace(
            quote,
            price_usd=row.price,
            market_cap_usd=row.market_cap,
            volume_24h_usd=row.volume,
            percent_change_1h=None,
            percent_change_24h=_change(row, rows[index + WEEK - 1]),
            percent_change_7d=_change(row, rows[index]),
            as_of=row.at,
        )


def _change(now: HistoryRow, then: HistoryRow | None) -> Decimal | None:
    if then is None or then.price == 0 or then.at >= now.at:
        return None
    try:
        return ((now.price / then.price - 1) * 100).quantize(_PERCENT)
    except InvalidOperation:
        return None


class MarketReplaySource:
    """Emits the recorded token market data as a live-looking batch every ``interval / speed``.

    ``clock``/``sleep`` (monotonic) and ``now`` (the ``received_at`` stamp) are injectable.
    """

    def __init__(
        self,
        *,
        sink: Callable[[list[TokenQuote]], None],
        interval: float,
        speed: float,
        metrics: Metrics | None,
        name: str = "replay_tokens",
        source: str = "replay",
        days: int = REPLAY_DAYS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        period = interval / speed if speed > 0 else math.inf
        if not math.isfinite(period) or period <= 0:
            raise ValueError(f"replay needs a positive interval and speed ({interval}, {speed})")
        self.name = name
        self.source = source
        self.sink = sink
        self.period = period
        self.metrics = metrics
        self.batches = 0
        self.health = SourceHealth(name=name, kind="replay")
        self._days = days
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self._reporter = ParseErrorReporter(name, metrics)
        self._markets: Any = None
        self._listings: Any = None
        self._playlist: _Playlist | None = None
        if metrics is not None:
            bind_health_metrics(self.health, metrics)

    def load(self) -> None:
        """Read the bundled recordings and history (blocking: call it from a thread)."""
        folder = data_path(REPLAY_DIR)
        self._markets = _read_json(folder / MARKETS_FILE)
        self._listings = _read_json(folder / LISTINGS_FILE)
        histories = {coin: history_rows(coin) for coin in HISTORY_FILES}
        self._playlist = _Playlist(histories, self._days)

    def next_batch(self) -> list[TokenQuote]:
        """The next batch of quotes, through the real parsers, stamped ``received_at`` = now."""
        if self._playlist is None:
            self.load()
        assert self._playlist is not None
        received_at = self._now()
        index = self.batches % len(self._playlist.days)
        quotes: list[TokenQuote] = []
        for kind, payload, parse in (
            ("markets", self._markets, parse_markets),
            ("listings", self._listings, parse_listings),
        ):
            try:
                result = parse(payload, received_at=received_at, source=self.source)
            except ParseError as exc:
                self._reporter.report(exc, str(payload)[:500])
                continue
            for bad in result.bad_entries:
                self._reporter.report(bad, str(bad))
            seen = {quote.symbol for quote in quotes}
            quotes.extend(quote for quote in result.quotes if quote.symbol not in seen)
            if self.metrics is not None:
                self.metrics.source_messages.labels(self.name, kind).inc()
        self.batches += 1
        self.health.heard()
        return [self._playlist.override(quote, index) for quote in quotes]

    async def run(self) -> None:
        """Emit a batch every period until cancelled."""
        try:
            while self._playlist is None:
                try:
                    await asyncio.to_thread(self.load)
                except (OSError, ParseError, ValueError) as exc:
                    self._unusable(f"cannot read the bundled replay data: {exc}")
                    await self._sleep(60.0)
            self.health.connected = True
            self.health.state = "connected"
            self.health.detail = f"replaying recorded token data every {self.period:g}s"
            target = self._clock()
            while True:
                self._emit(self.next_batch())
                target += self.period
                delay = target - self._clock()
                if delay > 0:
                    await self._sleep(delay)
                else:
                    if -delay > self.period * 10:  # stalled: restart the schedule, no burst
                        target = self._clock()
                    # Behind schedule (parsing took longer than a period, e.g. a fast replay
                    # on a loaded machine): yield anyway, or the event loop would starve.
                    await asyncio.sleep(0)
        finally:
            self.health.connected = False
            self.health.state = "idle"

    def _emit(self, quotes: list[TokenQuote]) -> None:
        try:
            self.sink(quotes)
        except Exception as exc:  # the sink is someone else's; keep replaying
            log.exception("replay sink failed", source=self.name, error=str(exc))
            if self.metrics is not None:
                self.metrics.source_errors.labels(self.name, "sink").inc()

    def _unusable(self, text: str) -> None:
        log.error("token replay unusable", source=self.name, error=text)
        self.health.state = "failed"
        self.health.detail = text
        self.health.failed("replay_file", text)

    def state(self) -> dict[str, Any]:
        """Where the replay is: batches sent and the recorded day the history coins show."""
        playlist = self._playlist
        day = playlist.days[self.batches % len(playlist.days)] if playlist else None
        return {
            **self.health.to_json(),
            "batches": self.batches,
            "period_s": self.period,
            "next_recorded_day": day.isoformat() if day else None,
            "coins_with_history": history_coin_ids(),
        }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except ValueError as exc:
        raise ParseError("replay_json", f"{path.name}: {exc}") from None
