"""The asyncio client, :class:`AsyncTokenpulseClient` (calls from :mod:`._calls`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from tokenpulse_client import _calls as calls
from tokenpulse_client import _frames
from tokenpulse_client._calls import (
    Call,
    Detail,
    Granularity,
    Numbers,
    SortOrder,
    TimeArg,
    TokenSort,
)
from tokenpulse_client._config import DEFAULT_TIMEOUT, Amount, ClientConfig, filters
from tokenpulse_client._errors import APIError, TransportError
from tokenpulse_client._models import Health, LtpResult, PairInfo, Readiness, RefreshResult, Update
from tokenpulse_client._stream import Transport, stream_updates
from tokenpulse_client._token_models import History, Token, TokenPage, Velocity

T = TypeVar("T")


class AsyncTokenpulseClient:
    """Asyncio client: the same calls as :class:`TokenpulseClient`, awaited, plus ``stream``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        numbers: Numbers = "number",
        retries: int = 0,
        retry_backoff: float = 0.5,
        max_retry_wait: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = ClientConfig(
            base_url, api_key, numbers, retries, retry_backoff, max_retry_wait
        )
        self.base_url, self.api_key = self._settings.base_url, api_key
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self._settings.headers(),
            timeout=timeout,
            transport=transport,
        )

    async def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    call.method, call.path, params=calls.query(call.params)
                )
            except httpx.TransportError as exc:
                raise TransportError(f"{call.method} {call.path}: {exc!r}") from exc
            try:
                body = calls.decode(
                    response.status_code, response.content, response.headers, call.ok
                )
            except APIError as error:
                delay = self._settings.retry_delay(error, attempt)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                attempt += 1
                continue
            return call.read(body)

    async def ltp(
        self, pairs: str | Sequence[str] | None = None, *, max_age_ms: int | None = None
    ) -> LtpResult:
        """Last traded prices of ``pairs`` (any spelling), or of every supported pair."""
        return await self._send(calls.ltp(pairs, max_age_ms, self._settings.numbers))

    async def cached(self) -> LtpResult:
        """Every price in the cache."""
        return await self._send(calls.cached(self._settings.numbers))

    async def refresh(self, pairs: str | Sequence[str] | None = None) -> RefreshResult:
        """Force a REST fetch from the exchange (every supported pair when ``pairs`` is None)."""
        return await self._send(calls.refresh(pairs))

    async def pairs(self) -> list[PairInfo]:
        """The supported pairs."""
        return await self._send(calls.pairs())

    async def sources(self) -> dict[str, Any]:
        """Each source's state and which one serves each pair."""
        return await self._send(calls.sources())

    async def health(self) -> Health:
        """Liveness."""
        return await self._send(calls.health())

    async def ready(self) -> Readiness:
        """Readiness (``ready`` is False rather than an exception when the service says 503)."""
        return await self._send(calls.ready())

    async def tokens(
        self,
        *,
        limit: int | None = None,
        start: int | None = None,
        cursor: str | None = None,
        min_market_cap: Amount = None,
        max_market_cap: Amount = None,
        min_velocity: Amount = None,
        max_velocity: Amount = None,
        symbols: str | Sequence[str] | None = None,
        sort: TokenSort | None = None,
        order: SortOrder | None = None,
        detail: Detail | None = None,
        max_age_ms: int | None = None,
    ) -> TokenPage:
        """One page of tracked tokens; ``page.next`` is the ``cursor`` of the following page."""
        wanted = filters(
            min_market_cap=min_market_cap,
            max_market_cap=max_market_cap,
            min_velocity=min_velocity,
            max_velocity=max_velocity,
            symbols=symbols,
            sort=sort,
            order=order,
            detail=detail,
            max_age_ms=max_age_ms,
        )
        return await self._send(calls.tokens(wanted, limit, start, cursor, self._settings.numbers))

    async def iter_tokens(
        self,
        *,
        page_size: int = 100,
        min_market_cap: Amount = None,
        max_market_cap: Amount = None,
        min_velocity: Amount = None,
        max_velocity: Amount = None,
        symbols: str | Sequence[str] | None = None,
        sort: TokenSort | None = None,
        order: SortOrder | None = None,
        detail: Detail | None = None,
    ) -> AsyncIterator[Token]:
        """Every matching token, page after page (``page_size`` per request)."""
        wanted = filters(
            min_market_cap=min_market_cap,
            max_market_cap=max_market_cap,
            min_velocity=min_velocity,
            max_velocity=max_velocity,
            symbols=symbols,
            sort=sort,
            order=order,
            detail=detail,
        )
        cursor: str | None = None
        while True:
            page = await self._send(
                calls.tokens(wanted, page_size, None, cursor, self._settings.numbers)
            )
            for token in page.tokens:
                yield token
            if page.next is None or not page.tokens:
                return
            cursor = page.next

    async def token(
        self,
        token_id: str,
        *,
        detail: Detail | None = None,
        history: str | None = None,
        max_age_ms: int | None = None,
    ) -> Token:
        """One token by id, CMC id, CoinGecko id or symbol."""
        return await self._send(
            calls.token(token_id, detail, history, max_age_ms, self._settings.numbers)
        )

    async def velocity(self, token_id: str, *, max_age_ms: int | None = None) -> Velocity:
        """A token's velocity, its inputs, trends over 1h/4h/12h/7d and the last 24 h."""
        return await self._send(calls.velocity(token_id, max_age_ms, self._settings.numbers))

    async def history(
        self,
        token_id: str,
        *,
        start: TimeArg | None = None,
        end: TimeArg | None = None,
        granularity: Granularity | None = None,
        fields: str | Sequence[str] | None = None,
    ) -> History:
        """A token's history from ``start`` to ``end`` (aware datetimes, ISO text or unix s)."""
        return await self._send(
            calls.history(token_id, start, end, granularity, fields, self._settings.numbers)
        )

    async def history_frame(
        self,
        token_id: str,
        *,
        start: TimeArg | None = None,
        end: TimeArg | None = None,
        granularity: Granularity | None = None,
    ) -> Any:
        """:meth:`history` as a pandas DataFrame indexed by time (needs the ``pandas`` extra)."""
        history = await self.history(token_id, start=start, end=end, granularity=granularity)
        return _frames.history_frame(history)

    async def tokens_frame(
        self,
        *,
        page_size: int = 100,
        min_market_cap: Amount = None,
        max_market_cap: Amount = None,
        min_velocity: Amount = None,
        max_velocity: Amount = None,
        symbols: str | Sequence[str] | None = None,
        sort: TokenSort | None = None,
        order: SortOrder | None = None,
    ) -> Any:
        """Every matching token (all pages) as a pandas DataFrame indexed by ``id``."""
        found = [
            token
            async for token in self.iter_tokens(
                page_size=page_size,
                min_market_cap=min_market_cap,
                max_market_cap=max_market_cap,
                min_velocity=min_velocity,
                max_velocity=max_velocity,
                symbols=symbols,
                sort=sort,
                order=order,
            )
        ]
        return _frames.tokens_frame(found)

    def stream(
        self,
        pairs: Sequence[str] = (),
        tokens: Sequence[str] = (),
        *,
        transport: Transport = "auto",
        min_interval_ms: int | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        on_status: Callable[[str], None] | None = None,
    ) -> AsyncIterator[Update]:
        """Live updates of ``pairs`` and ``tokens``, merged into full state, for ever.

        Reconnects with capped exponential backoff, resubscribes, and refetches a snapshot
        when a ``seq`` gap shows a lost message. ``transport`` is ``"socketio"`` (needs the
        ``socketio`` extra), ``"sse"`` (httpx only) or ``"auto"`` (Socket.IO when installed).
        ``on_status`` is called with ``"connected"`` and ``"reconnecting"`` as the link changes.
        """
        options = self._settings.stream_options(
            pairs, tokens, transport, min_interval_ms, backoff_initial, backoff_max, on_status
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


__all__ = ["AsyncTokenpulseClient"]
