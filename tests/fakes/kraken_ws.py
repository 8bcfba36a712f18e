"""A fake Kraken WebSocket v2 server on loopback that speaks the real wire protocol.

It does what ``wss://ws.kraken.com/v2`` does for the ``ticker`` channel: a ``status`` frame
on connect; one ack per symbol of a subscribe request (``success: true`` with a ``result``,
or ``success: false`` with ``"error": "Currency pair not supported XYZ/USD"`` for a symbol it
has no value for); then a ``snapshot`` per subscribed symbol; ``pong`` for ``ping``; and,
when asked, heartbeats. Everything else is pushed by the test: :meth:`send_ticker`,
:meth:`send_raw`, :meth:`heartbeat`, :meth:`silence`, :meth:`drop_all`.

The value table defaults to the snapshot entries of
``tests/fixtures/kraken/ws_v2_ticker_from_recorded_values.jsonl`` (recorded REST values in the
v2 shape, see that folder's README). Numbers go out as JSON numbers with exactly the digits
of the ``Decimal`` (``69767.60000`` stays ``69767.60000``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kraken"
RECORDED_V2_FRAMES = FIXTURES / "ws_v2_ticker_from_recorded_values.jsonl"

Number = Decimal | int | str
_HEARTBEAT = '{"channel":"heartbeat"}'


def recorded_ticker_values() -> dict[str, dict[str, Any]]:
    """Symbol -> the fields of its recorded ``snapshot`` entry (numbers as Decimal)."""
    values: dict[str, dict[str, Any]] = {}
    for line in RECORDED_V2_FRAMES.read_text(encoding="utf-8").splitlines():
        frame = json.loads(line, parse_float=Decimal)
        if frame.get("type") != "snapshot":
            continue
        for entry in frame["data"]:
            values[entry["symbol"]] = dict(entry)
    return values


def rfc3339(moment: datetime) -> str:
    """Kraken's time format: UTC, microseconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dumps(value: object) -> str:
    """Compact JSON that writes a Decimal as a JSON number with exactly its digits."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(key))}:{dumps(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    return json.dumps(value)


@dataclass(eq=False)
class _Client:
    """One accepted connection."""

    ws: ServerConnection
    connection_id: int
    requested: list[str] = field(default_factory=list)  # symbols asked for, in order
    subscribed: set[str] = field(default_factory=set)
    silent: bool = False
    heartbeats: asyncio.Task[None] | None = None
    gone: asyncio.Event = field(default_factory=asyncio.Event)


class FakeKrakenWs:
    """Kraken WS v2 on ``ws://127.0.0.1:<port>/v2``; use as ``async with FakeKrakenWs() as fake``.

    ``values`` maps a WS v2 symbol to its ticker fields (``last`` required); symbols missing
    from it are answered with Kraken's error ack. ``heartbeat_interval`` (seconds) makes it
    send ``{"channel":"heartbeat"}`` to every subscribed, non-silenced connection.
    """

    def __init__(
        self,
        values: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        port: int = 0,
        heartbeat_interval: float | None = None,
    ) -> None:
        source = recorded_ticker_values() if values is None else values
        self.values: dict[str, dict[str, Any]] = {sym: dict(v) for sym, v in source.items()}
        self.heartbeat_interval = heartbeat_interval
        self.subscribe_requests: list[dict[str, Any]] = []
        self.total_connections = 0
        self._port = port
        self._clients: list[_Client] = []
        self._server: Server | None = None
        self._ids = itertools.count(13834774380200032777)

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> FakeKrakenWs:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen on 127.0.0.1 (the port given, or a free one)."""
        self._server = await serve(self._serve, "127.0.0.1", self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every connection (1001 going away) and stop listening."""
        if self._server is None:
            return
        for client in list(self._clients):
            client.silent = False  # a close frame is not data; let the handshake finish
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    @property
    def port(self) -> int:
        """The TCP port (known once started, or given)."""
        return self._port

    @property
    def url(self) -> str:
        """Where a client connects."""
        return f"ws://127.0.0.1:{self._port}/v2"

    @property
    def connections(self) -> int:
        """Connections open right now."""
        return len(self._clients)

    def requested_symbols_per_connection(self) -> list[list[str]]:
        """For each open connection, the symbols it asked for, in order."""
        return [list(client.requested) for client in self._clients]

    # -- what a test pushes ----------------------------------------------------------------

    async def send_ticker(
        self,
        symbol: str,
        *,
        last: Number,
        bid: Number | None = None,
        ask: Number | None = None,
        volume: Number | None = None,
        vwap: Number | None = None,
        timestamp: datetime | None = None,
    ) -> int:
        """A trade: update the table and send an ``update`` frame to subscribers of ``symbol``.

        Returns how many connections it was sent to.
        """
        entry = self.values.setdefault(symbol, {"symbol": symbol})
        changes = {"last": last, "bid": bid, "ask": ask, "volume": volume, "vwap": vwap}
        for key, value in changes.items():
            if value is not None:
                entry[key] = Decimal(value) if isinstance(value, str | int) else value
        entry["timestamp"] = rfc3339(timestamp or datetime.now(UTC))
        frame = {"channel": "ticker", "type": "update", "data": [_entry(symbol, entry)]}
        targets = [client for client in self._clients if symbol in client.subscribed]
        return await self._broadcast(dumps(frame), targets)

    async def send_raw(self, text: str | bytes) -> int:
        """Send ``text`` as it is to every connection (for malformed frames)."""
        return await self._broadcast(text, self._clients)

    async def heartbeat(self) -> int:
        """Send one heartbeat to every connection."""
        return await self._broadcast(_HEARTBEAT, self._clients)

    def silence(self) -> None:
        """The open connections stop sending anything (heartbeats included), sockets stay open.

        Connections accepted afterwards are served normally, as a fresh connection to Kraken
        would be.
        """
        for client in self._clients:
            client.silent = True

    async def drop_all(self) -> None:
        """Abort every connection at the TCP level, without a close frame."""
        clients = list(self._clients)
        for client in clients:
            client.ws.transport.abort()
        if clients:
            await asyncio.wait_for(
                asyncio.gather(*(client.gone.wait() for client in clients)), timeout=5
            )

    # -- the protocol ----------------------------------------------------------------------

    async def _serve(self, ws: ServerConnection) -> None:
        client = _Client(ws, next(self._ids))
        self._clients.append(client)
        self.total_connections += 1
        try:
            status = {
                "channel": "status",
                "data": [
                    {
                        "api_version": "v2",
                        "connection_id": client.connection_id,
                        "system": "online",
                        "version": "2.0.0",
                    }
                ],
                "type": "update",
            }
            await self._send(client, dumps(status))
            async for message in ws:
                await self._on_request(client, message)
        except ConnectionClosed:
            pass
        finally:
            if client.heartbeats is not None:
                client.heartbeats.cancel()
            self._clients.remove(client)
            client.gone.set()

    async def _on_request(self, client: _Client, message: str | bytes) -> None:
        time_in = rfc3339(datetime.now(UTC))
        try:
            request = json.loads(message)
        except ValueError:
            return
        if not isinstance(request, dict):
            return
        req_id = request.get("req_id")
        method = request.get("method")
        if method == "ping":
            pong = {"method": "pong", "req_id": req_id, "time_in": time_in}
            await self._send(client, dumps({**pong, "time_out": _now()}))
        elif method == "subscribe":
            self.subscribe_requests.append(request)
            params = request.get("params") or {}
            symbols = params.get("symbol") or []
            client.requested.extend(symbols)
            for symbol in symbols:
                await self._subscribe_one(client, symbol, params, req_id, time_in)

    async def _subscribe_one(
        self, client: _Client, symbol: str, params: Mapping[str, Any], req_id: Any, time_in: str
    ) -> None:
        if params.get("channel") != "ticker" or symbol not in self.values:
            error = {
                "error": f"Currency pair not supported {symbol}",
                "method": "subscribe",
                "req_id": req_id,
                "success": False,
                "symbol": symbol,
                "time_in": time_in,
                "time_out": _now(),
            }
            await self._send(client, dumps(error))
            return
        snapshot = params.get("snapshot", True)
        ack = {
            "method": "subscribe",
            "req_id": req_id,
            "result": {
                "channel": "ticker",
                "event_trigger": params.get("event_trigger", "trades"),
                "snapshot": snapshot,
                "symbol": symbol,
            },
            "success": True,
            "time_in": time_in,
            "time_out": _now(),
        }
        client.subscribed.add(symbol)
        await self._send(client, dumps(ack))
        if snapshot:
            data = [_entry(symbol, self.values[symbol])]
            await self._send(client, dumps({"channel": "ticker", "type": "snapshot", "data": data}))
        interval = self.heartbeat_interval
        if interval is not None and client.heartbeats is None:
            client.heartbeats = asyncio.create_task(self._heartbeats(client, interval))

    async def _heartbeats(self, client: _Client, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)  # the fake's own pacing, not a test wait
            await self._send(client, _HEARTBEAT)

    async def _broadcast(self, text: str | bytes, clients: Iterable[_Client]) -> int:
        sent = 0
        for client in list(clients):
            sent += await self._send(client, text)
        return sent

    @staticmethod
    async def _send(client: _Client, text: str | bytes) -> bool:
        if client.silent:
            return False
        try:
            await client.ws.send(text)
        except ConnectionClosed:
            return False
        return True


def _entry(symbol: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A ticker data entry, ``symbol`` first as Kraken writes it."""
    return {"symbol": symbol, **{k: v for k, v in fields.items() if k != "symbol"}}


def _now() -> str:
    return rfc3339(datetime.now(UTC))
