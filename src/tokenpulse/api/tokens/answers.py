"""The token endpoints (SPEC §6, second table).

``GET /api/v1/tokens`` is a hot path like ``/ltp``: its query strings are parsed once, the
ordered ids per query shape are cached until the next update, and each token's JSON is
ready-made (:class:`~tokenpulse.wire.tokens.TokenView`); the edge middleware serves it
without the framework's routing. Detail, velocity and history answers read the history store.
Query parsing is :mod:`tokenpulse.api.tokens.queries`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import orjson

from tokenpulse.api.tokens.pages import Page
from tokenpulse.api.tokens.points import series_json
from tokenpulse.api.tokens.queries import (
    GRANULARITIES,
    MAX_POINTS,
    SERIES_WINDOWS,
    ListQuery,
    choose_granularity,
    encode_cursor,
    parse_list_query,
    parse_time,
)
from tokenpulse.domain.errors import InvalidParameter, StaleData, StoreError, TokenNotFound
from tokenpulse.domain.freshness import is_stale
from tokenpulse.domain.time import from_epoch, isoformat_z, utcnow
from tokenpulse.domain.velocity import TREND_WINDOWS, compute_trends, window_duration
from tokenpulse.services.tokens.service import TokenService
from tokenpulse.wire.numbers import computed_number, market_value, parse_numbers
from tokenpulse.wire.tokens import DETAILS, TokenView, trends_to_json

QUERY_CACHE_SIZE = 1024


class HistoryReader(Protocol):
    """What the token endpoints read from the history store."""

    async def token_series(
        self,
        token_id: str,
        start: datetime,
        end: datetime,
        granularity: str,
        fields: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]: ...

    async def velocity_points(
        self, token_id: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, Decimal]]: ...

    async def token_gaps(
        self,
        token_id: str,
        start: datetime,
        end: datetime,
        *,
        expected_interval: timedelta,
        granularity: str = "raw",
    ) -> list[tuple[datetime, datetime]]: ...


@dataclass(slots=True)
class Answer:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


class TokenEndpoints:
    """Builds the answers of the token endpoints."""

    def __init__(
        self,
        *,
        tokens: TokenService,
        history: HistoryReader | None,
        stale_after: float,
        expected_interval: timedelta,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.tokens = tokens
        self.history = history
        self.stale_after = stale_after
        self.expected_interval = expected_interval
        self.clock = clock or tokens.clock  # one clock for every age this API reports
        self._queries: dict[bytes, ListQuery] = {}
        self._pages: dict[ListQuery, Page] = {}

    # ------------------------------------------------------------ GET /api/v1/tokens

    def parse_list(self, query_string: bytes) -> ListQuery:
        cached = self._queries.get(query_string)
        if cached is not None:
            return cached
        query = parse_list_query(query_string)
        if len(self._queries) >= QUERY_CACHE_SIZE:
            self._queries.pop(next(iter(self._queries)))
        self._queries[query_string] = query
        return query

    def list_tokens(self, query_string: bytes) -> Answer:
        """The answer to ``GET /api/v1/tokens?<query_string>``."""
        started = time.perf_counter()
        query = self.parse_list(query_string)
        page, hit = self._page(query)
        now = self.clock()
        if query.max_age_ms is not None:
            for view in page.views:
                if self.tokens.age_ms(view, now) > query.max_age_ms:
                    raise _stale(view, query.max_age_ms)
        data = page.render(now, self.stale_after)
        meta = b'{"source":%s,"processing_time_ms":%s,"cache":"%s"}' % (
            page.source,
            orjson.dumps(round((time.perf_counter() - started) * 1000, 3)),
            b"hit" if hit else b"miss",
        )
        body = (
            b'{"status":"success","timestamp":"'
            + isoformat_z(from_epoch(now)).encode()
            + b'","data":['
            + data
            + b'],"pagination":'
            + page.pagination
            + b',"meta":'
            + meta
            + b"}"
        )
        return Answer(200, body, [])

    def _page(self, query: ListQuery) -> tuple[Page, bool]:
        """The page of ``query`` for the current generation (built once per update)."""
        generation = self.tokens.generation
        cached = self._pages.get(query)
        if cached is not None and cached.generation == generation:
            return cached, True
        ids, _ = self.tokens.query(query.shape)
        views = [
            view
            for view in (
                self.tokens.view(i) for i in ids[query.start - 1 : query.start - 1 + query.limit]
            )
            if view is not None
        ]
        following = query.start + query.limit
        pagination = {
            "total": len(ids),
            "limit": query.limit,
            "start": query.start,
            "next": encode_cursor(following) if following <= len(ids) else None,
        }
        page = Page(
            generation=generation,
            views=views,
            basic=query.detail == "basic",
            pagination=orjson.dumps(pagination),
            source=orjson.dumps(",".join(self.tokens.sources_in_use()) or None),
            strings=query.strings,
        )
        if len(self._pages) >= QUERY_CACHE_SIZE:
            self._pages.pop(next(iter(self._pages)))
        self._pages[query] = page
        return page, False

    # ------------------------------------------------------------ single token

    def _view(self, token_id: str, max_age_ms: int | None, now: float) -> TokenView:
        identity = self.tokens.resolve(token_id)
        view = self.tokens.view(identity.id)
        if view is None:
            raise TokenNotFound(
                f"no data for token {identity.id!r} yet", details={"token_id": identity.id}
            )
        if max_age_ms is not None and self.tokens.age_ms(view, now) > max_age_ms:
            raise _stale(view, max_age_ms)
        return view

    async def _trends(self, view: TokenView) -> dict[str, Any]:
        snapshot = view.snapshot
        now = utcnow()
        points: list[tuple[datetime, Decimal]] = []
        if self.history is not None:
            longest = max(window_duration(w) for w in TREND_WINDOWS)
            try:
                points = await self.history.velocity_points(snapshot.id, now - longest * 1.1, now)
            except StoreError:
                points = []
        trends = compute_trends(
            snapshot.velocity, points, now=now, band_pct=self.tokens.policy.trend_stable_band_pct
        )
        return trends_to_json(trends, snapshot.velocity)

    async def detail(
        self,
        token_id: str,
        *,
        history: str | None,
        detail: str,
        max_age_ms: int | None,
        numbers: str | None = None,
    ) -> dict[str, Any]:
        strings = parse_numbers(numbers)
        if detail not in DETAILS:
            raise InvalidParameter(
                f"detail must be basic or full, got {detail!r}", parameter="detail"
            )
        now = self.clock()
        view = self._view(token_id, max_age_ms, now)
        data: dict[str, Any] = orjson.loads(
            view.render_at(now, self.stale_after, basic=detail == "basic", strings=strings)
        )
        if detail == "full":
            data["trends"] = await self._trends(view)
        if history is not None:
            window = SERIES_WINDOWS.get(history)
            if window is None:
                raise InvalidParameter(
                    f"history must be one of {', '.join(SERIES_WINDOWS)}, got {history!r}",
                    parameter="history",
                )
            data["history"] = await self._compact_series(view.snapshot.id, window, strings)
        return data

    async def _compact_series(
        self, token_id: str, window: timedelta, strings: bool
    ) -> dict[str, Any]:
        end = utcnow()
        start = end - window
        granularity = choose_granularity(start, end, allow_raw=False)
        points = await self._series(
            token_id, start, end, granularity, ["close", "velocity"], strings
        )
        return {
            "granularity": granularity,
            "fields": ["t", "price", "velocity"],
            "points": [[p["t"], p.get("close"), p.get("velocity")] for p in points],
        }

    async def _series(
        self,
        token_id: str,
        start: datetime,
        end: datetime,
        granularity: str,
        fields: Sequence[str] | None,
        strings: bool,
    ) -> list[dict[str, Any]]:
        """History rows as JSON values, ``t`` as ISO text (:func:`series_json`)."""
        if self.history is None:
            return []
        rows = await self.history.token_series(token_id, start, end, granularity, fields)
        return series_json(rows, strings)

    async def velocity(
        self, token_id: str, *, window: str, max_age_ms: int | None, numbers: str | None = None
    ) -> dict[str, Any]:
        strings = parse_numbers(numbers)
        span = SERIES_WINDOWS.get(window)
        if span is None:
            raise InvalidParameter(
                f"window must be one of {', '.join(SERIES_WINDOWS)}, got {window!r}",
                parameter="window",
            )
        now = self.clock()
        view = self._view(token_id, max_age_ms, now)
        age = self.tokens.age_ms(view, now)
        snapshot = view.snapshot
        quote = snapshot.quote
        end = utcnow()
        start = end - span
        granularity = choose_granularity(start, end, allow_raw=True)
        points = await self._series(snapshot.id, start, end, granularity, ["velocity"], strings)
        return {
            "id": snapshot.id,
            "symbol": snapshot.identity.symbol,
            "velocity": computed_number(snapshot.velocity),
            "formula": "volume_24h_usd / market_cap_usd",
            "inputs": {
                "volume_24h_usd": market_value(quote.volume_24h_usd, strings),
                "market_cap_usd": market_value(quote.market_cap_usd, strings),
                "market_cap_used": market_value(snapshot.market_cap_used, strings),
                "price_usd": market_value(quote.price_usd, strings),
                "circulating_supply": market_value(quote.circulating_supply, strings),
            },
            "flags": sorted(snapshot.flags),
            "source": snapshot.source,
            "as_of": isoformat_z(quote.as_of) if quote.as_of else None,
            "age_ms": age,
            "stale": is_stale(age, self.stale_after),
            "trends": await self._trends(view),
            "window": {
                "window": window,
                "granularity": granularity,
                "points": [[p["t"], p.get("velocity")] for p in points],
            },
        }

    async def series(
        self,
        token_id: str,
        *,
        start_text: str | None,
        end_text: str | None,
        granularity: str | None,
        fields_text: str | None,
        numbers: str | None = None,
    ) -> dict[str, Any]:
        strings = parse_numbers(numbers)
        identity = self.tokens.resolve(token_id)
        end = parse_time("to", end_text) if end_text else utcnow()
        start = parse_time("from", start_text) if start_text else end - timedelta(days=1)
        if start >= end:
            raise InvalidParameter("from must be before to", parameter="from")
        if granularity is None:
            granularity = choose_granularity(start, end, allow_raw=False)
        elif granularity not in GRANULARITIES:
            raise InvalidParameter(
                f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}",
                parameter="granularity",
            )
        step = GRANULARITIES[granularity]
        if step is not None and (end - start) / step > MAX_POINTS:
            coarser = choose_granularity(start, end, allow_raw=False)
            raise InvalidParameter(
                f"{granularity} over this range exceeds {MAX_POINTS} points; "
                f"use granularity={coarser}",
                parameter="granularity",
                details={"suggested_granularity": coarser},
            )
        fields = [f.strip() for f in fields_text.split(",") if f.strip()] if fields_text else None
        points = await self._series(identity.id, start, end, granularity, fields, strings)
        if len(points) > MAX_POINTS:
            raise InvalidParameter(
                f"more than {MAX_POINTS} points; use a coarser granularity",
                parameter="granularity",
            )
        gaps: list[tuple[datetime, datetime]] = []
        if self.history is not None:
            gaps = await self.history.token_gaps(
                identity.id,
                start,
                end,
                granularity=granularity,
                expected_interval=max(self.expected_interval, step or self.expected_interval),
            )
        return {
            "id": identity.id,
            "from": isoformat_z(start),
            "to": isoformat_z(end),
            "granularity": granularity,
            "points": points,
            "count": len(points),
            "gaps": [{"from": isoformat_z(a), "to": isoformat_z(b)} for a, b in gaps],
        }


def _stale(view: TokenView, max_age_ms: int) -> StaleData:
    return StaleData(
        f"the data of {view.snapshot.id} is older than max_age_ms={max_age_ms}",
        retry_after=1.0,
        details={"token_id": view.snapshot.id, "max_age_ms": max_age_ms},
    )


__all__ = ["Answer", "HistoryReader", "TokenEndpoints"]
