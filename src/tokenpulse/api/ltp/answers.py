"""The LTP endpoints of the Go "BTC LTP Service", byte for byte where it matters.

``GET /api/v1/ltp`` is the hottest path of the product. Its answers are built here from the
ready-made JSON of each value (:class:`~tokenpulse.wire.ltp.LtpView`) and a parsed-query
cache, and served by the edge middleware without going through the framework's routing. The
FastAPI routes in :func:`router` call the same builders; they document the endpoints in
OpenAPI and serve any request the fast path does not take. ``/ltp`` and ``/ltp/cached`` render
every value through :meth:`PriceService.render`, so one value has one age at one instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

from tokenpulse.api.errors import flat_error_body
from tokenpulse.domain.errors import InvalidParameter, StoreError, UnsupportedPair
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.domain.time import from_epoch, isoformat_z
from tokenpulse.services.ltp.prices import PriceService
from tokenpulse.services.ltp.supervisor import LtpSupervisor
from tokenpulse.services.ltp.venues import AGGREGATE
from tokenpulse.wire.numbers import NUMBERS_PARAMETER, parse_numbers

MAX_PAIRS_PER_REQUEST = 100
QUERY_CACHE_SIZE = 1024
STALE_RETRY_AFTER = b"1"


@dataclass(frozen=True, slots=True)
class PairProblem:
    """A requested pair that cannot be answered, in the Go service's error entry form."""

    pair: str
    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"pair": self.pair, "error": self.code, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class LtpQuery:
    """A parsed ``/ltp`` query: the served pairs in request order and the rejected ones."""

    pairs: tuple[Pair, ...]
    rejected: tuple[PairProblem, ...] = ()
    max_age_ms: int | None = None
    strings: bool = False  # numbers=string: market values as exact decimal strings
    error: tuple[str, str, dict[str, Any]] | None = None  # code, message, details → 400
    source: str | None = None  # ?source=: one venue's own value, or the aggregate


@dataclass(slots=True)
class LtpAnswer:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def _split_values(values: Sequence[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


class LtpEndpoints:
    """Builds the answers of the LTP endpoints from the price service."""

    def __init__(
        self,
        *,
        prices: PriceService,
        registry: PairRegistry,
        supervisor: LtpSupervisor | None,
    ) -> None:
        self.prices = prices
        self.registry = registry
        self.supervisor = supervisor
        self._queries: dict[bytes, LtpQuery] = {}

    # ------------------------------------------------------------ query parsing

    def parse(self, query_string: bytes) -> LtpQuery:
        """Parse (and remember) a query string; the same string is parsed once."""
        cached = self._queries.get(query_string)
        if cached is not None:
            return cached
        query = self._parse(query_string)
        if len(self._queries) >= QUERY_CACHE_SIZE:
            self._queries.pop(next(iter(self._queries)))
        self._queries[query_string] = query
        return query

    def _parse(self, query_string: bytes) -> LtpQuery:
        params = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        raw_pairs = [v for k, v in params if k in {"pair", "pairs"}]
        max_age_ms: int | None = None
        strings = False
        source: str | None = None
        for key, value in params:
            if key == "source":
                source = value.strip().lower()
                if source not in self.sources():
                    enabled = ", ".join(self.sources()) or "none on this instance"
                    return LtpQuery(
                        pairs=(),
                        error=(
                            "INVALID_PARAMETER",
                            f"source must be one of: {enabled}; got {value[:50]!r}",
                            {"parameter": "source"},
                        ),
                    )
            if key == NUMBERS_PARAMETER:
                try:
                    strings = parse_numbers(value)
                except InvalidParameter as exc:
                    return LtpQuery(
                        pairs=(),
                        error=("INVALID_PARAMETER", exc.message, {"parameter": NUMBERS_PARAMETER}),
                    )
            elif key == "max_age_ms":
                if not value.strip().isdigit():
                    return LtpQuery(
                        pairs=(),
                        error=(
                            "INVALID_PARAMETER",
                            f"max_age_ms must be a whole number of milliseconds, got {value!r}",
                            {"parameter": "max_age_ms"},
                        ),
                    )
                max_age_ms = int(value.strip())
        items = _split_values(raw_pairs)
        if raw_pairs and not items and any(v.strip() for v in raw_pairs):
            return LtpQuery(
                pairs=(),
                error=("INVALID_PARAMETER", "pair is empty", {"parameter": "pair"}),
            )
        if not items:
            return LtpQuery(
                pairs=tuple(self.prices.pairs),
                max_age_ms=max_age_ms,
                strings=strings,
                source=source,
            )
        if len(items) > MAX_PAIRS_PER_REQUEST:
            return LtpQuery(
                pairs=(),
                error=(
                    "INVALID_PARAMETER",
                    f"at most {MAX_PAIRS_PER_REQUEST} pairs per request",
                    {"parameter": "pair"},
                ),
            )
        pairs: dict[Pair, None] = {}
        rejected: list[PairProblem] = []
        for item in items:
            try:
                pair = self.registry.resolve(item)
            except UnsupportedPair:
                rejected.append(
                    PairProblem(item, "UNSUPPORTED_PAIR", f"pair {item} is not supported")
                )
                continue
            except InvalidParameter as exc:
                rejected.append(PairProblem(item, "INVALID_PARAMETER", exc.message))
                continue
            if pair not in self.prices.supported:
                rejected.append(
                    PairProblem(str(pair), "UNSUPPORTED_PAIR", f"pair {pair} is not supported")
                )
                continue
            pairs.setdefault(pair, None)
        if not pairs:
            code = (
                "UNSUPPORTED_PAIR"
                if any(p.code == "UNSUPPORTED_PAIR" for p in rejected)
                else "INVALID_PARAMETER"
            )
            supported = ", ".join(str(p) for p in self.prices.pairs)
            return LtpQuery(
                pairs=(),
                rejected=tuple(rejected),
                error=(
                    code,
                    f"no supported pair requested; supported pairs: {supported}",
                    {"parameter": "pair", "rejected": [p.to_json() for p in rejected]},
                ),
            )
        return LtpQuery(
            pairs=tuple(pairs),
            rejected=tuple(rejected),
            max_age_ms=max_age_ms,
            strings=strings,
            source=source,
        )

    def sources(self) -> tuple[str, ...]:
        """What ``?source=`` accepts: the enabled venues and, with any, ``aggregate``."""
        book = self.supervisor.book if self.supervisor is not None else None
        if book is None or not book.venues:
            return ()
        return (*book.venues, AGGREGATE) if book.aggregating else tuple(book.venues)

    # ------------------------------------------------------------ GET /api/v1/ltp

    def ltp(self, query_string: bytes, now: float | None = None) -> LtpAnswer:
        """The answer to ``GET /api/v1/ltp?<query_string>``."""
        query = self.parse(query_string)
        if query.error is not None:
            code, message, details = query.error
            return LtpAnswer(400, flat_error_body(code, message, details=details))
        moment = self.prices.clock() if now is None else now
        prices = self.prices
        rendered: list[bytes] = []
        problems: list[PairProblem] = list(query.rejected)
        stale: list[PairProblem] = []
        max_age = query.max_age_ms
        render = prices.render_strings if query.strings else prices.render
        book = self.supervisor.book if query.source and self.supervisor else None
        for pair in query.pairs:
            view = prices.view(pair) if book is None else book.view(str(query.source), pair)
            if view is None:
                problems.append(self._no_price(pair, query.source))
                continue
            if max_age is not None and prices.age_ms(view, moment) > max_age:
                stale.append(
                    PairProblem(
                        str(pair),
                        "STALE_DATA",
                        f"the price of {pair} is older than max_age_ms={max_age}",
                    )
                )
                continue
            rendered.append(render(view, moment))
        if not problems and not stale:
            return LtpAnswer(200, b'{"ltp":[' + b",".join(rendered) + b"]}")
        errors = [p.to_json() for p in problems + stale]
        if not rendered:
            if stale and not any(p.code == "PRICE_FETCH_ERROR" for p in problems):
                body = flat_error_body(
                    "STALE_DATA",
                    f"no price is younger than max_age_ms={max_age}",
                    ltp=[],
                    errors=errors,
                )
                return LtpAnswer(503, body, [(b"retry-after", STALE_RETRY_AFTER)])
            body = flat_error_body(
                "ALL_PRICES_FAILED",
                "no price is available for any requested pair",
                ltp=[],
                errors=errors,
            )
            return LtpAnswer(503, body)
        body = b'{"ltp":[' + b",".join(rendered) + b'],"errors":' + orjson.dumps(errors) + b"}"
        return LtpAnswer(206, body)

    def _no_price(self, pair: Pair, source: str | None) -> PairProblem:
        book = self.supervisor.book if self.supervisor is not None else None
        if source and source != AGGREGATE and book is not None and not book.serves(source, pair):
            why = f"{source} does not list {pair}"
        else:
            why = f"no price for {pair} yet" + (f" from {source}" if source else "")
        return PairProblem(str(pair), "PRICE_FETCH_ERROR", why)

    # ------------------------------------------------------------ GET /api/v1/ltp/aggregate

    def aggregate(self, query_string: bytes) -> LtpAnswer:
        """``{"status","timestamp","data": [aggregate per pair]}``; 400 for a bad pair."""
        params = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        query = self.parse(
            b"&".join(f"pair={v}".encode() for k, v in params if k in {"pair", "pairs"})
        )
        if query.error is not None or query.rejected:
            code, message, details = query.error or (
                query.rejected[0].code,
                query.rejected[0].message,
                {"parameter": "pair", "rejected": [p.to_json() for p in query.rejected]},
            )
            return LtpAnswer(400, flat_error_body(code, message, details=details))
        now = self.prices.clock()
        book = self.supervisor.book if self.supervisor is not None else None
        data = [
            book.describe(pair, now)
            if book is not None and book.aggregating
            else _no_aggregate(pair)
            for pair in query.pairs
        ]
        body = {"status": "success", "timestamp": isoformat_z(from_epoch(now)), "data": data}
        return LtpAnswer(200, orjson.dumps(body))

    # ------------------------------------------------------------ GET /api/v1/ltp/cached

    async def cached(self, now: float | None = None, query_string: bytes = b"") -> LtpAnswer:
        """The answer to ``GET /api/v1/ltp/cached``: the cache's bytes, aged like ``/ltp``.

        ``query_string`` may carry ``numbers=string``; other parameters are ignored.
        """
        strings = False
        for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if key == NUMBERS_PARAMETER:
                try:
                    strings = parse_numbers(value)
                except InvalidParameter as exc:
                    body = flat_error_body(
                        "INVALID_PARAMETER", exc.message, details={"parameter": NUMBERS_PARAMETER}
                    )
                    return LtpAnswer(400, body)
        marker = b""
        try:
            views = await self.prices.cached_views()
        except StoreError:
            # The cache is unreachable: answer from this instance's memory, and say so.
            held = self.prices.views()
            views = [held[pair] for pair in sorted(held, key=str)]
            marker = b',"source":"memory"'
        moment = self.prices.clock() if now is None else now
        render = self.prices.render_strings if strings else self.prices.render
        rendered = [render(view, moment) for view in views]
        return LtpAnswer(200, b'{"ltp":[' + b",".join(rendered) + b"]" + marker + b"}")

    # ------------------------------------------------------------ POST /api/v1/ltp/refresh

    async def refresh(self, query_string: bytes) -> LtpAnswer:
        params = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        query = self.parse(
            b"&".join(f"pair={v}".encode() for k, v in params if k in {"pair", "pairs"})
        )
        if query.error is not None:
            code, message, details = query.error
            return LtpAnswer(400, flat_error_body(code, message, details=details))
        if query.rejected:
            # Bad input changes nothing: no pair is refreshed when any of them is not valid.
            errors = [p.to_json() for p in query.rejected]
            message = "cannot refresh " + ", ".join(e["pair"] for e in errors)
            return LtpAnswer(400, flat_error_body(query.rejected[0].code, message, errors=errors))
        if self.supervisor is None:
            return LtpAnswer(
                502,
                flat_error_body(
                    "PRICE_FETCH_ERROR",
                    "this instance does not ingest (ROLE=api); refresh on the ingest instance",
                    pairs=[str(p) for p in query.pairs],
                ),
            )
        refreshed, failed = await self.supervisor.refresh(list(query.pairs))
        if failed:
            errors = [
                PairProblem(str(pair), "PRICE_FETCH_ERROR", reason).to_json()
                for pair, reason in failed.items()
            ]
            body = flat_error_body(
                "PRICE_FETCH_ERROR",
                "refreshing prices failed for " + ", ".join(e["pair"] for e in errors),
                pairs=[e["pair"] for e in errors],
                refreshed=[str(p) for p in refreshed],
                errors=errors,
            )
            return LtpAnswer(502, body)
        return LtpAnswer(
            200,
            orjson.dumps(
                {"message": "Prices refreshed successfully", "pairs": [str(p) for p in refreshed]}
            ),
        )


def _no_aggregate(pair: Pair) -> dict[str, Any]:
    """No aggregate: fewer than two exchange venues run here (one venue, replay, ROLE=api)."""
    return {
        "pair": str(pair),
        "price": None,
        "volume_24h": None,
        "weighting": "volume",
        "method": "vwap",
        "flags": [],
        "venues_used": 0,
        "venues": [],
    }
