"""``AsyncTokenpulseClient.stream()``: live updates over Socket.IO or SSE that survive restarts.

Each message carries ``seq`` (per key) and, for deltas, ``base_seq`` (the state it applies
to). A delta whose ``base_seq`` is not the last ``seq`` seen for its key means a message was
lost: the key is resubscribed (Socket.IO) or the stream reopened (SSE), and the fresh
snapshot replaces the state. A delta that merges several updates (the server conflates for
slow readers) has ``base_seq`` equal to the last seen ``seq`` and is applied as is.

The connection is retried for ever with capped exponential backoff and jitter; only a
refusal that retrying cannot fix (bad credentials, an unsupported pair, a bad request) ends
the iterator with :class:`StreamError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import random
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from tokenpulse_client._errors import StreamError
from tokenpulse_client._models import Update

EVENTS = {"ltp_update": "pair", "token_update": "token"}
SUBSCRIBE = {"pair": ("subscribe_pair", "pairs"), "token": ("subscribe_token", "token_ids")}
ACK_TIMEOUT = 10.0
CONNECT_TIMEOUT = 10.0
SSE_READ_TIMEOUT = 45.0  # three missed 15 s keepalives
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_GAP = object()
Transport = Literal["auto", "socketio", "sse"]


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """What to stream and how (built by ``AsyncTokenpulseClient.stream``)."""

    base_url: str
    api_key: str | None
    pairs: tuple[str, ...]
    tokens: tuple[str, ...]
    transport: Transport = "auto"
    min_interval_ms: int | None = None
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    numbers: Literal["number", "string"] = "number"
    # Told "connected" when a connection is up and subscribed, "reconnecting" when it is lost.
    on_status: Callable[[str], None] | None = None

    def status(self, status: str) -> None:
        """Tell ``on_status`` (if any) how the connection is."""
        if self.on_status is not None:
            self.on_status(status)


def resolve_transport(transport: str) -> Literal["socketio", "sse"]:
    """``auto`` is Socket.IO when python-socketio's asyncio client is installed, else SSE."""
    if transport == "auto":
        wanted = ("socketio", "aiohttp")
        return "socketio" if all(importlib.util.find_spec(m) for m in wanted) else "sse"
    if transport not in ("socketio", "sse"):
        raise ValueError(f"transport must be 'auto', 'socketio' or 'sse', not {transport!r}")
    return "socketio" if transport == "socketio" else "sse"


class Tracker:
    """Merged state and last ``seq`` per key; tells applied, stale and gap messages apart."""

    def __init__(self) -> None:
        self.state: dict[tuple[str, str], dict[str, Any]] = {}
        self.seq: dict[tuple[str, str], int] = {}

    def reset(self) -> None:
        """Forget everything (a new connection starts with snapshots)."""
        self.state.clear()
        self.seq.clear()

    def apply(self, kind: str, message: Any) -> Update | object | None:
        """An :class:`Update`, None for a stale/duplicate message, or ``_GAP`` for a loss."""
        if not isinstance(message, dict):
            return None
        ident, seq, ts = message.get("id"), message.get("seq"), message.get("ts")
        if not isinstance(ident, str) or not isinstance(seq, int):
            return None
        key = (kind, ident)
        if message.get("type") == "snapshot":
            data = dict(message.get("data") or {})
            self.state[key], self.seq[key] = data, seq
            return Update(kind, ident, "snapshot", seq, ts, data, dict(data))
        last = self.seq.get(key)
        if last is None:
            return _GAP  # a delta without the snapshot it builds on
        if seq <= last:
            return None
        base = message.get("base_seq", seq - 1)
        if base != last:
            return _GAP
        changes = dict(message.get("changes") or {})
        state = {**self.state[key], **changes}
        self.state[key], self.seq[key] = state, seq
        return Update(kind, ident, "delta", seq, ts, changes, dict(state))


class _Backoff:
    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum, self.delay = initial, maximum, initial

    def reset(self) -> None:
        self.delay = self.initial

    async def wait(self) -> None:
        await asyncio.sleep(self.delay * (0.5 + random.random() / 2))
        self.delay = min(self.delay * 2, self.maximum)


async def stream_updates(options: StreamOptions) -> AsyncGenerator[Update, None]:
    """Yield updates for ever over the chosen transport."""
    if not options.pairs and not options.tokens:
        raise ValueError("stream() needs at least one pair or token")
    chosen = resolve_transport(options.transport)
    transport = _socketio(options) if chosen == "socketio" else _sse(options)
    # aclosing: closing this iterator closes the transport's now, not whenever GC runs.
    async with contextlib.aclosing(transport) as updates:
        async for update in updates:
            yield update


# ---------------------------------------------------------------------------- Socket.IO


async def _socketio(options: StreamOptions) -> AsyncGenerator[Update, None]:
    try:
        import socketio  # only Socket.IO stream users need python-socketio (and aiohttp)
    except ImportError as exc:
        raise ImportError(
            "transport='socketio' needs: pip install 'tokenpulse-client[socketio]'"
        ) from exc

    tracker, backoff = Tracker(), _Backoff(options.backoff_initial, options.backoff_max)
    auth = {"api_key": options.api_key} if options.api_key else None
    while True:
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        refused: dict[str, Any] = {}
        client = socketio.AsyncClient(reconnection=False)
        _listen(client, queue, refused)
        try:
            try:
                await client.connect(
                    options.base_url,
                    auth=auth,
                    transports=["websocket"],
                    wait_timeout=CONNECT_TIMEOUT,
                )
            except socketio.exceptions.ConnectionError:
                if refused.get("code") == "UNAUTHORIZED":
                    raise StreamError("UNAUTHORIZED", str(refused.get("message"))) from None
                options.status("reconnecting")
                await backoff.wait()
                continue
            tracker.reset()
            for kind, ids in (("pair", options.pairs), ("token", options.tokens)):
                if ids:
                    await _subscribe(client, kind, list(ids), options)
            backoff.reset()
            options.status("connected")
            while True:
                kind, data = await queue.get()
                if kind == "closed":
                    break
                result = tracker.apply(kind, data)
                if result is _GAP:
                    await _subscribe(client, kind, [data["id"]], options)
                elif isinstance(result, Update):
                    yield result
        except (socketio.exceptions.SocketIOError, OSError):
            pass  # connection trouble: reconnect below
        finally:
            with contextlib.suppress(Exception):
                await client.disconnect()
        options.status("reconnecting")
        await backoff.wait()


def _listen(client: Any, queue: asyncio.Queue[tuple[str, Any]], refused: dict[str, Any]) -> None:
    """Route the client's events into ``queue``; a refusal's code into ``refused``."""
    for event, kind in EVENTS.items():
        client.on(event, lambda data, kind=kind: queue.put_nowait((kind, data)))
    client.on("disconnect", lambda *_: queue.put_nowait(("closed", None)))
    client.on("connect_error", lambda data: refused.update(_refusal(data)))


def _refusal(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        return {"message": str(data)}
    detail = data.get("data")
    code = data.get("code") or (detail.get("code") if isinstance(detail, dict) else None)
    return {"code": code, "message": data.get("message")}


async def _subscribe(client: Any, kind: str, ids: list[str], options: StreamOptions) -> None:
    event, field = SUBSCRIBE[kind]
    payload: dict[str, Any] = {field: ids}
    if options.min_interval_ms is not None:
        payload["min_interval_ms"] = options.min_interval_ms
    if options.numbers == "string":
        payload["numbers"] = "string"
    ack = await client.call(event, payload, timeout=ACK_TIMEOUT)
    if not isinstance(ack, dict) or not ack.get("ok"):
        error = (ack or {}).get("error") or {} if isinstance(ack, dict) else {}
        raise StreamError(str(error.get("code", "BAD_ACK")), str(error.get("message", ack)))


# ---------------------------------------------------------------------------- SSE


async def _sse(options: StreamOptions) -> AsyncGenerator[Update, None]:
    tracker, backoff = Tracker(), _Backoff(options.backoff_initial, options.backoff_max)
    headers = {"Accept": "text/event-stream"}
    if options.api_key:
        headers["X-API-Key"] = options.api_key
    timeout = httpx.Timeout(CONNECT_TIMEOUT, read=SSE_READ_TIMEOUT)
    base = options.base_url.rstrip("/")
    urls = []
    extra: dict[str, Any] = {}
    if options.min_interval_ms is not None:
        extra["min_interval_ms"] = options.min_interval_ms
    if options.numbers == "string":
        extra["numbers"] = "string"
    if options.pairs:
        query = urlencode({"pair": ",".join(options.pairs), **extra})
        urls.append(f"{base}/api/v1/ltp/live?{query}")
    if options.tokens:
        query = urlencode({"ids": ",".join(options.tokens), **extra})
        urls.append(f"{base}/api/v1/tokens/live?{query}")
    async with httpx.AsyncClient(headers=headers, timeout=timeout) as http:
        while True:
            queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
            readers = [asyncio.create_task(_read_sse(http, url, queue)) for url in urls]
            tracker.reset()
            try:
                while True:
                    kind, data = await queue.get()
                    if kind == "closed":
                        if isinstance(data, StreamError):
                            raise data
                        break
                    if kind == "open":
                        backoff.reset()
                        options.status("connected")
                        continue
                    result = tracker.apply(kind, data)
                    if result is _GAP:
                        break  # reopen: a new stream starts with fresh snapshots
                    if isinstance(result, Update):
                        yield result
            finally:
                for reader in readers:
                    reader.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
            options.status("reconnecting")
            await backoff.wait()


async def _read_sse(
    http: httpx.AsyncClient, url: str, queue: asyncio.Queue[tuple[str, Any]]
) -> None:
    """Parse one event stream into ``(kind, message)`` items; ``("closed", why)`` at its end."""
    reason: Any = None
    try:
        async with http.stream("GET", url) as response:
            if response.status_code != 200:
                body = (await response.aread()).decode("utf-8", "replace")
                if response.status_code not in RETRYABLE_STATUS:
                    reason = StreamError(_error_code(body, response.status_code), body[:500])
                return
            queue.put_nowait(("open", None))
            event = ""
            data: list[str] = []
            async for line in response.aiter_lines():
                if line == "":
                    if event in EVENTS and data:
                        queue.put_nowait((EVENTS[event], json.loads("\n".join(data))))
                    event, data = "", []
                elif line.startswith(":"):
                    continue
                else:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "event":
                        event = value
                    elif name == "data":
                        data.append(value)
    except (httpx.HTTPError, ValueError):
        pass
    finally:
        queue.put_nowait(("closed", reason))


def _error_code(body: str, status: int) -> str:
    with contextlib.suppress(ValueError):
        parsed = json.loads(body)
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if isinstance(error, dict):
            return str(error.get("code"))
        if isinstance(error, str):
            return error
    return f"HTTP_{status}"


__all__ = ["StreamOptions", "Tracker", "Transport", "resolve_transport", "stream_updates"]
