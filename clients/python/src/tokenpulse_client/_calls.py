"""Each API call described once — method, path, query, how to read the answer — so the sync
and the async client send the same requests and read the same answers.

Numbers are read as :class:`~decimal.Decimal` (``parse_float``), so a price keeps the digits
the service sent; with ``numbers="string"`` they are the provider's exact decimals.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from tokenpulse_client._errors import error_for
from tokenpulse_client._models import (
    Health,
    LtpResult,
    PairError,
    PairInfo,
    Price,
    Readiness,
    RefreshResult,
    to_datetime,
)
from tokenpulse_client._token_models import History, Token, TokenPage, Velocity

T = TypeVar("T")
Numbers = Literal["number", "string"]
TokenSort = Literal["market_cap", "volume_24h", "velocity", "price", "percent_change_24h", "rank"]
SortOrder = Literal["asc", "desc"]
Detail = Literal["basic", "full"]
Granularity = Literal["raw", "1m", "5m", "15m", "1h", "4h", "1d"]
TimeArg = datetime | str | int | float
RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and how to read a successful answer."""

    path: str
    read: Callable[[Any], T]
    params: Mapping[str, Any] = field(default_factory=dict)
    method: str = "GET"
    ok: tuple[int, ...] = (200,)


@dataclass(frozen=True, slots=True)
class TokenFilters:
    """The filters and sort of ``GET /api/v1/tokens`` (every one optional)."""

    min_market_cap: float | Decimal | None = None
    max_market_cap: float | Decimal | None = None
    min_velocity: float | Decimal | None = None
    max_velocity: float | Decimal | None = None
    symbols: str | Sequence[str] | None = None
    sort: TokenSort | None = None
    order: SortOrder | None = None
    detail: Detail | None = None
    max_age_ms: int | None = None

    def params(self) -> dict[str, Any]:
        """The query parameters."""
        return {
            "min_market_cap": self.min_market_cap,
            "max_market_cap": self.max_market_cap,
            "min_velocity": self.min_velocity,
            "max_velocity": self.max_velocity,
            "symbols": csv(self.symbols),
            "sort": self.sort,
            "order": self.order,
            "detail": self.detail,
            "max_age_ms": self.max_age_ms,
        }


def decode(status: int, content: bytes, headers: Mapping[str, str], ok: tuple[int, ...]) -> Any:
    """The JSON body of a successful answer, or the typed :class:`APIError` raised."""
    try:
        body = json.loads(content, parse_float=Decimal) if content else None
    except ValueError:
        body = None
    if status in ok:
        return body
    code, message = "HTTP_ERROR", f"HTTP {status}"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # the standard error model
            code, message = str(error.get("code", code)), str(error.get("message", message))
        elif isinstance(error, str):  # the LTP paths' flat shape
            code, message = error, str(body.get("message", message))
    raise error_for(status, code, message, body, {k.lower(): v for k, v in headers.items()})


def csv(values: str | Iterable[str] | None) -> str | None:
    """``a,b`` from a string or a sequence."""
    if values is None:
        return None
    return values if isinstance(values, str) else ",".join(values)


def time_param(value: TimeArg | None) -> str | None:
    """A ``from``/``to`` value: an aware datetime as ISO 8601, unix seconds, or as given."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("pass a timezone-aware datetime (e.g. datetime.now(UTC))")
        return value.isoformat()
    return str(value)


def query(params: Mapping[str, Any]) -> dict[str, Any]:
    """The query without its unset values (Decimals as their exact text)."""
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in params.items() if v is not None}


def _ltp_result(body: Any) -> LtpResult:
    return LtpResult(
        prices=[Price.from_json(item) for item in body.get("ltp", [])],
        errors=[
            PairError(str(e.get("pair")), str(e.get("code") or e.get("error")), e["message"])
            for e in body.get("errors") or []
        ],
    )


def _token_path(token_id: str, suffix: str = "") -> str:
    return f"/api/v1/tokens/{quote(token_id, safe='')}{suffix}"


def ltp(
    pairs: str | Sequence[str] | None, max_age_ms: int | None, numbers: Numbers
) -> Call[LtpResult]:
    """``GET /api/v1/ltp``."""
    params = {"pair": csv(pairs), "max_age_ms": max_age_ms, **numbers_param(numbers)}
    return Call("/api/v1/ltp", _ltp_result, params, ok=(200, 206))


def cached(numbers: Numbers) -> Call[LtpResult]:
    """``GET /api/v1/ltp/cached``."""
    return Call("/api/v1/ltp/cached", _ltp_result, numbers_param(numbers), ok=(200, 206))


def refresh(pairs: str | Sequence[str] | None) -> Call[RefreshResult]:
    """``POST /api/v1/ltp/refresh``."""

    def read(body: Any) -> RefreshResult:
        return RefreshResult(str(body.get("message")), [str(p) for p in body["pairs"]], body)

    return Call("/api/v1/ltp/refresh", read, {"pairs": csv(pairs)}, method="POST")


def pairs() -> Call[list[PairInfo]]:
    """``GET /api/v1/pairs``."""

    def read(body: Any) -> list[PairInfo]:
        return [
            PairInfo(
                pair=p["pair"],
                base=p["base"],
                quote=p["quote"],
                serving_source=p.get("serving_source"),
                providers=p.get("providers") or {},
                aggregate=p.get("aggregate"),
                raw=p,
            )
            for p in body["data"]
        ]

    return Call("/api/v1/pairs", read)


def sources() -> Call[dict[str, Any]]:
    """``GET /api/v1/sources`` (the ``data`` object as is)."""
    return Call("/api/v1/sources", lambda body: dict(body["data"]))


def health() -> Call[Health]:
    """``GET /health``."""

    def read(body: Any) -> Health:
        return Health(
            str(body["status"]), to_datetime(body.get("timestamp")), body.get("version"), body
        )

    return Call("/health", read)


def ready() -> Call[Readiness]:
    """``GET /ready``: a 503 is an answer here (``ready=False``), not an error."""

    def read(body: Any) -> Readiness:
        status = str(body.get("status"))
        return Readiness(
            status=status,
            ready=status == "ready",
            timestamp=to_datetime(body.get("timestamp")),
            services=body.get("services") or {},
            errors=list(body.get("errors") or []),
            raw=body,
        )

    return Call("/ready", read, ok=(200, 503))


def tokens(
    filters: TokenFilters,
    limit: int | None,
    start: int | None,
    cursor: str | None,
    numbers: Numbers,
) -> Call[TokenPage]:
    """``GET /api/v1/tokens``."""

    def read(body: Any) -> TokenPage:
        page = body.get("pagination") or {}
        following = page.get("next")
        return TokenPage(
            tokens=[Token.from_json(t) for t in body["data"]],
            total=page.get("total"),
            limit=page.get("limit"),
            start=page.get("start"),
            next=None if following is None else str(following),
            raw=body,
        )

    params = {
        **filters.params(),
        "limit": limit,
        "start": start,
        "cursor": cursor,
        **numbers_param(numbers),
    }
    return Call("/api/v1/tokens", read, params)


def token(
    token_id: str,
    detail: Detail | None,
    history: str | None,
    max_age_ms: int | None,
    numbers: Numbers,
) -> Call[Token]:
    """``GET /api/v1/tokens/{token_id}``."""
    params = {"detail": detail, "history": history, "max_age_ms": max_age_ms}
    return Call(
        _token_path(token_id),
        lambda body: Token.from_json(body["data"]),
        {**params, **numbers_param(numbers)},
    )


def velocity(token_id: str, max_age_ms: int | None, numbers: Numbers) -> Call[Velocity]:
    """``GET /api/v1/tokens/{token_id}/velocity``."""
    return Call(
        _token_path(token_id, "/velocity"),
        lambda body: Velocity.from_json(body["data"]),
        {"max_age_ms": max_age_ms, **numbers_param(numbers)},
    )


def history(
    token_id: str,
    start: TimeArg | None,
    end: TimeArg | None,
    granularity: Granularity | None,
    fields: str | Sequence[str] | None,
    numbers: Numbers,
) -> Call[History]:
    """``GET /api/v1/tokens/{token_id}/history``."""
    params = {
        "from": time_param(start),
        "to": time_param(end),
        "granularity": granularity,
        "fields": csv(fields),
        **numbers_param(numbers),
    }
    return Call(
        _token_path(token_id, "/history"), lambda body: History.from_json(body["data"]), params
    )


def numbers_param(numbers: Numbers) -> dict[str, str]:
    """``{"numbers": "string"}`` when exact decimal strings are wanted."""
    if numbers not in ("number", "string"):
        raise ValueError(f"numbers must be 'number' or 'string', not {numbers!r}")
    return {"numbers": "string"} if numbers == "string" else {}


__all__ = [
    "RETRY_STATUSES",
    "Call",
    "Detail",
    "Granularity",
    "Numbers",
    "SortOrder",
    "TimeArg",
    "TokenFilters",
    "TokenSort",
    "decode",
]
