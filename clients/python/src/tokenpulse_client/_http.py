"""REST calls, sync (:class:`TokenpulseClient`) and async (:class:`AsyncTokenpulseClient`).

Each call is described once (:class:`_Call`: path, query and how to read the answer) and
sent by either client. Numbers are read as :class:`~decimal.Decimal`, so a price keeps the
digits the service sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from tokenpulse.client._models import (
    Health,
    LtpResult,
    PairError,
    PairInfo,
    Price,
    Token,
    TokenPage,
    TokenpulseAPIError,
    Update,
)

T = TypeVar("T")
DEFAULT_TIMEOUT = 10.0
USER_AGENT = "tokenpulse-python-client"


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    path: str
    params: Mapping[str, Any]
    read: Callable[[Any], T]
    ok: tuple[int, ...] = (200,)


def _decode(response: httpx.Response, ok: tuple[int, ...]) -> Any:
    try:
        body = json.loads(response.content, parse_float=Decimal) if response.content else None
    except ValueError:
        body = None
    if response.status_code in ok:
        return body
    code, message = "HTTP_ERROR", response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # the standard error model
            code, message = str(error.get("code", code)), str(error.get("message", message))
        elif isinstance(error, str):  # the LTP paths' flat shape
            code, message = error, str(body.get("message", message))
    raise TokenpulseAPIError(response.status_code, code, message, body)


def _csv(values: str | Iterable[str] | None) -> str | None:
    if values is None:
        return None
    return values if isinstance(values, str) else ",".join(values)


def _ltp(pairs: str | Sequence[str] | None) -> _Call[LtpResult]:
    def read(body: Any) -> LtpResult:
        return LtpResult(
            prices=[Price.from_json(item) for item in body.get("ltp", [])],
            errors=[
                PairError(str(e.get("pair")), str(e.get("code") or e.get("error")), e["message"])
                for e in body.get("errors") or []
            ],
        )

    return _Call("/api/v1/ltp", {"pair": _csv(pairs)}, read, ok=(200, 206))


def _pairs() -> _Call[list[PairInfo]]:
    def read(body: Any) -> list[PairInfo]:
        return [
            PairInfo(p["pair"], p["base"], p["quote"], p.get("serving_source"), p)
            for p in body["data"]
        ]

    return _Call("/api/v1/pairs", {}, read)


def _sources() -> _Call[dict[str, Any]]:
    return _Call("/api/v1/sources", {}, lambda body: dict(body["data"]))


def _health() -> _Call[Health]:
    return _Call(
        "/health",
        {},
        lambda b: Health(str(b["status"]), b.get("timestamp"), b.get("version"), b),
    )


def _tokens(params: Mapping[str, Any]) -> _Call[TokenPage]:
    def read(body: Any) -> TokenPage:
        pagination = body.get("pagination") or body.get("meta", {}).get("pagination") or {}
        return TokenPage(
            tokens=[Token.from_json(t) for t in body["data"]],
            total=pagination.get("total"),
            next=pagination.get("next"),
            raw=body,
        )

    return _Call("/api/v1/tokens", params, read)


def _token(token_id: str) -> _Call[Token]:
    path = f"/api/v1/tokens/{quote(token_id, safe='')}"
    return _Call(path, {}, lambda body: Token.from_json(body["data"]))


def _token_params(**params: Any) -> dict[str, Any]:
    if "symbols" in params:
        params["symbols"] = _csv(params["symbols"])
    return params


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key:
        headers["X-API-Key"] = api_key
    return headers


def _query(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class TokenpulseClient:
    """Blocking REST client: ``TokenpulseClient("http://127.0.0.1:8080", api_key=…)``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._http = httpx.Client(
            base_url=self.base_url, headers=_headers(api_key), timeout=timeout, transport=transport
        )

    def _get(self, call: _Call[T]) -> T:
        response = self._http.get(call.path, params=_query(call.params))
        return call.read(_decode(response, call.ok))

    def ltp(self, pairs: str | Sequence[str] | None = None) -> LtpResult:
        """Last traded prices of ``pairs`` (any spelling), or of every supported pair."""
        return self._get(_ltp(pairs))

    def pairs(self) -> list[PairInfo]:
        """The supported pairs."""
        return self._get(_pairs())

    def sources(self) -> dict[str, Any]:
        """Each source's state and which one serves each pair."""
        return self._get(_sources())

    def health(self) -> Health:
        """Liveness."""
        return self._get(_health())

    def tokens(self, **params: Any) -> TokenPage:
        """A page of tracked tokens; ``params`` as the API (``limit``, ``sort``, ``symbols``…)."""
        return self._get(_tokens(_token_params(**params)))

    def token(self, token_id: str) -> Token:
        """One token by id, CMC id, CoinGecko id or symbol."""
        return self._get(_token(token_id))

    def stream(
        self,
        pairs: Sequence[str] = (),
        tokens: Sequence[str] = (),
        *,
        transport: str = "socketio",
        min_interval_ms: int | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> Iterator[Update]:
        """Blocking form of :meth:`AsyncTokenpulseClient.stream` (runs its own event loop).

        For scripts without asyncio: ``for update in client.stream(pairs=["BTC/USD"]): …``.
        The connection is serviced only while the loop waits for the next update, so keep
        the loop body short (the server drops a client silent for about 45 s; this one then
        reconnects and resubscribes).
        """
        from tokenpulse.client._stream import StreamOptions, stream_updates

        options = StreamOptions(
            base_url=self.base_url,
            api_key=self.api_key,
            pairs=tuple(pairs),
            tokens=tuple(tokens),
            transport=transport,
            min_interval_ms=min_interval_ms,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )
        updates = stream_updates(options)
        # A Runner, not a bare loop: closing it cancels what the Socket.IO client left
        # running and closes its sockets, so the server sees the client go at once.
        with asyncio.Runner() as runner:
            try:
                while True:
                    try:
                        yield runner.run(anext(updates))
                    except StopAsyncIteration:
                        return
            finally:
                runner.run(updates.aclose())

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> TokenpulseClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncTokenpulseClient:
    """Asyncio REST client plus :meth:`stream` (Socket.IO or SSE)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=_headers(api_key), timeout=timeout, transport=transport
        )

    async def _get(self, call: _Call[T]) -> T:
        response = await self._http.get(call.path, params=_query(call.params))
        return call.read(_decode(response, call.ok))

    async def ltp(self, pairs: str | Sequence[str] | None = None) -> LtpResult:
        """Last traded prices of ``pairs`` (any spelling), or of every supported pair."""
        return await self._get(_ltp(pairs))

    async def pairs(self) -> list[PairInfo]:
        """The supported pairs."""
        return await self._get(_pairs())

    async def sources(self) -> dict[str, Any]:
        """Each source's state and which one serves each pair."""
        return await self._get(_sources())

    async def health(self) -> Health:
        """Liveness."""
        return await self._get(_health())

    async def tokens(self, **params: Any) -> TokenPage:
        """A page of tracked tokens; ``params`` as the API (``limit``, ``sort``, ``symbols``…)."""
        return await self._get(_tokens(_token_params(**params)))

    async def token(self, token_id: str) -> Token:
        """One token by id, CMC id, CoinGecko id or symbol."""
        return await self._get(_token(token_id))

    def stream(
        self,
        pairs: Sequence[str] = (),
        tokens: Sequence[str] = (),
        *,
        transport: str = "socketio",
        min_interval_ms: int | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> AsyncIterator[Update]:
        """Live updates of ``pairs`` and ``tokens``, merged into full state, for ever.

        Reconnects with capped exponential backoff, resubscribes, and refetches a snapshot
        when a ``seq`` gap shows a lost message. ``transport`` is ``"socketio"`` or ``"sse"``.
        """
        from tokenpulse.client._stream import StreamOptions, stream_updates

        options = StreamOptions(
            base_url=self.base_url,
            api_key=self.api_key,
            pairs=tuple(pairs),
            tokens=tuple(tokens),
            transport=transport,
            min_interval_ms=min_interval_ms,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )
        return stream_updates(options)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncTokenpulseClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


__all__ = ["AsyncTokenpulseClient", "TokenpulseClient"]
