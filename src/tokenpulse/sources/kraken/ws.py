"""Kraken WebSocket v2 ticker: the primary last-traded-price feed (SPEC §3.1).

The pairs are spread over ``ceil(n / max_pairs_per_connection)`` connections (shards), each
run by its own task with its own loop::

    connect -> subscribe in batches (one req_id each) -> read frames -> parse -> sink
       ^                                                        |
       +---- backoff (capped, jittered) <--- closed / failed / idle for idle_timeout

The reader is thin: it parses each frame with the pure :func:`parse_ws_v2` and hands the
events to the sink, which never blocks (the source's ``LatestValueBuffer.put``). Storage and
fan-out happen elsewhere, so a slow consumer can never stall the socket or trip Kraken's
keepalive. Nothing but ``CancelledError`` ever leaves :meth:`KrakenWsSource.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Sequence
from typing import Final

import structlog
from websockets.asyncio.client import ClientConnection, connect

from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.events import SourceHeartbeat, TickerUpdated
from tokenpulse.domain.pairs import Pair, PairRegistry, unique
from tokenpulse.domain.time import utcnow
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._health import (
    Backoff,
    EventSink,
    ParseErrorReporter,
    SourceHealth,
    bind_health_metrics,
    message_counter,
)
from tokenpulse.sources._ws_book import ShardedWsBook
from tokenpulse.sources.kraken.ws_parser import (
    Heartbeat,
    Pong,
    StatusUpdate,
    SubscribeAck,
    parse_ws_v2,
    subscribe_message,
)
from tokenpulse.sources.kraken.ws_shard import PairFeedState, Shard, split_pairs

__all__ = ["DEFAULT_WS_URL", "KrakenWsSource", "PairFeedState"]

log = structlog.get_logger(__name__)

DEFAULT_WS_URL: Final = "wss://ws.kraken.com/v2"
#: Bound on the opening handshake (TCP + TLS + HTTP upgrade).
OPEN_TIMEOUT: Final = 10.0
#: Bound on the closing handshake; a half-dead socket must not hold up the reconnect.
CLOSE_TIMEOUT: Final = 2.0
#: Protocol-level keepalive, on top of the idle watchdog.
PING_INTERVAL: Final = 20.0
PING_TIMEOUT: Final = 20.0
#: Largest frame accepted; ticker frames are well under a kilobyte.
MAX_FRAME_BYTES: Final = 1 << 20


YIELD_EVERY = 32  # frames read in a burst before the reader lets other tasks run


class KrakenWsSource(ShardedWsBook):
    """Kraken WS v2 ``ticker`` feed, sharded over several connections, reconnecting forever.

    Emits ``TickerUpdated`` for every ticker entry and ``SourceHeartbeat`` for every
    heartbeat or status frame into ``sink``. One :class:`SourceHealth` covers the source;
    :meth:`pair_state` reports per pair.
    """

    label = "kraken"
    _shards: list[Shard]
    _shard_of: dict[Pair, Shard]

    def __init__(
        self,
        *,
        url: str,
        pairs: Sequence[Pair],
        registry: PairRegistry,
        sink: EventSink,
        metrics: Metrics | None,
        idle_timeout: float,
        max_pairs_per_connection: int,
        subscribe_batch_size: int,
        backoff_initial: float,
        backoff_max: float,
        name: str = "kraken_ws",
    ) -> None:
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, got {idle_timeout}")
        if max_pairs_per_connection < 1:
            raise ValueError(
                f"max_pairs_per_connection must be at least 1, got {max_pairs_per_connection}"
            )
        if subscribe_batch_size < 1:
            raise ValueError(f"subscribe_batch_size must be at least 1, got {subscribe_batch_size}")
        if backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError(
                f"need 0 < backoff_initial <= backoff_max, got {backoff_initial}, {backoff_max}"
            )
        unknown = [str(pair) for pair in pairs if pair not in registry.kraken]
        if unknown:
            raise ValueError(f"pairs not listed by Kraken: {', '.join(unknown)}")

        self.name = name
        self.url = url
        self.registry = registry
        self.sink = sink
        self.metrics = metrics
        self.idle_timeout = idle_timeout
        self.max_pairs_per_connection = max_pairs_per_connection
        self.subscribe_batch_size = subscribe_batch_size
        self.health = SourceHealth(name, kind="websocket")
        self._parse_errors = ParseErrorReporter(name, metrics)
        self._count_message = message_counter(metrics, name)
        self._req_ids = itertools.count(1)
        self._running = False
        self._attempted = False  # a connection attempt has ended at least once
        self._shards = [
            Shard(
                index,
                {registry.info(pair).ws_v2_symbol: pair for pair in chunk},
                Backoff(backoff_initial, backoff_max),
            )
            for index, chunk in enumerate(split_pairs(unique(pairs), max_pairs_per_connection))
        ]
        self._shard_of = {pair: shard for shard in self._shards for pair in shard.pairs}
        if metrics is not None:
            bind_health_metrics(self.health, metrics)
        self._refresh_health()

    # -- what the supervisor reads -------------------------------------------------------

    def pair_state(self, pair: Pair) -> PairFeedState:
        """Connection, subscription and silence of the feed for ``pair``."""
        shard = self._shard_of.get(pair)
        if shard is None:
            return PairFeedState(connected=False, subscribed=False, silent_for=None)
        return shard.state(pair)

    # -- the loops -----------------------------------------------------------------------

    async def run(self) -> None:
        """Run every shard until cancelled; provider faults never end it."""
        self._running = True
        self._refresh_health()
        try:
            if not self._shards:
                await asyncio.Event().wait()  # nothing to subscribe: wait to be cancelled
            async with asyncio.TaskGroup() as group:
                for shard in self._shards:
                    group.create_task(self._run_shard(shard), name=f"{self.name}[{shard.index}]")
        finally:
            self._running = False
            for shard in self._shards:
                self._mark_disconnected(shard)

    async def _run_shard(self, shard: Shard) -> None:
        attempt = 0
        while True:
            if attempt:
                self._count_reconnect()
            attempt += 1
            try:
                await self._session(shard)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every provider fault ends in a reconnect, never a crash
                self._session_failed(shard, exc)
            finally:
                self._mark_disconnected(shard)
            delay = shard.backoff.next_delay()
            log.info(  # once per reconnect: an operator sees the backoff grow
                "kraken ws reconnecting", source=self.name, shard=shard.index, delay=round(delay, 3)
            )
            await asyncio.sleep(delay)

    async def _session(self, shard: Shard) -> None:
        """One connection: open, subscribe, read until closed, failed or idle."""
        async with connect(
            self.url,
            open_timeout=OPEN_TIMEOUT,
            ping_interval=PING_INTERVAL,
            ping_timeout=PING_TIMEOUT,
            close_timeout=CLOSE_TIMEOUT,
            max_size=MAX_FRAME_BYTES,
        ) as ws:
            shard.connected = True
            self._refresh_health()
            log.info(
                "kraken ws connected",
                source=self.name,
                shard=shard.index,
                url=self.url,
                pairs=len(shard.pairs),
            )
            await self._subscribe(ws, shard)
            await self._read(ws, shard)

    async def _subscribe(self, ws: ClientConnection, shard: Shard) -> None:
        """Subscribe every pair of the shard, ``subscribe_batch_size`` symbols a request."""
        for req_id, batch in shard.subscribe_requests(self.subscribe_batch_size, self._req_ids):
            await ws.send(subscribe_message(batch, req_id))

    async def _read(self, ws: ClientConnection, shard: Shard) -> None:
        """Hand every frame to :meth:`_on_frame`; return when nothing came for idle_timeout.

        ``recv()`` returns without yielding while frames are buffered, so in a burst the
        reader would starve the consumer that applies them: it yields every few frames. The
        idle deadline is one timer per ``idle_timeout``, not one per frame (a timer costs
        more than parsing a frame): when it fires, the reader goes on unless it has been
        waiting in ``recv()`` for the whole ``idle_timeout`` (a slow frame is not silence),
        with a timer for what is left (cancelling ``recv()`` loses nothing).
        """
        frames = 0
        waiting_since = time.monotonic()  # when the reader last started waiting for a frame
        while True:
            silent = time.monotonic() - waiting_since
            if silent >= self.idle_timeout:
                self._count_error("idle_timeout", f"no frame for {self.idle_timeout}s")
                log.warning(
                    "kraken ws silent, reconnecting",
                    source=self.name,
                    shard=shard.index,
                    idle_timeout=self.idle_timeout,
                )
                return  # leaving ``async with connect`` closes the socket
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.idle_timeout - silent):
                    while True:
                        frames += 1
                        if frames % YIELD_EVERY == 0:
                            await asyncio.sleep(0)
                        frame = await ws.recv()
                        self._on_frame(shard, frame)
                        waiting_since = time.monotonic()

    # -- one frame (synchronous: parse and hand on, nothing else) -----------------------

    def _on_frame(self, shard: Shard, frame: str | bytes) -> None:
        shard.last_frame_mono = mono = time.monotonic()
        received_at = utcnow()
        self.health.heard(received_at, mono)
        try:
            result = parse_ws_v2(
                frame, source=self.name, received_at=received_at, registry=self.registry
            )
        except ParseError as exc:
            self._malformed(exc, frame)
            return
        for error in result.errors:
            self._malformed(error, frame)
        kind = "empty"
        for message in result.messages:
            if isinstance(message, TickerUpdated):
                kind = "ticker"
                if shard.saw_data(message.ticker.pair):
                    self._refresh_health()
                shard.alive()
                self._emit(message)
            elif isinstance(message, Heartbeat):
                kind = "heartbeat"
                shard.alive()
                self._emit(SourceHeartbeat(source=self.name, at=received_at))
            elif isinstance(message, SubscribeAck):
                kind = "subscribe_ack"
                self._on_ack(shard, message)
            elif isinstance(message, StatusUpdate):
                kind = "status"
                self._on_status(shard, message)
                self._emit(SourceHeartbeat(source=self.name, at=received_at))
            elif isinstance(message, Pong):
                kind = "pong"
        self._count_message(kind)

    def _on_ack(self, shard: Shard, ack: SubscribeAck) -> None:
        if ack.success:
            shard.acknowledged(ack, self.registry)
            self._refresh_health()
            return
        # Not retried here: the next reconnect subscribes every pair again, after backoff.
        error = ack.error or "subscribe failed"
        affected = shard.rejected_by(ack, self.registry, error)
        self._count_error("subscribe_rejected", f"{ack.symbol or ack.req_id}: {error}")
        log.warning(
            "kraken ws subscription rejected",
            source=self.name,
            shard=shard.index,
            symbol=ack.symbol,
            req_id=ack.req_id,
            error=error,
            pairs=[str(p) for p in affected],
        )
        self._refresh_health()

    def _on_status(self, shard: Shard, status: StatusUpdate) -> None:
        if not shard.status_changed(status):
            return
        fields = {
            "source": self.name,
            "shard": shard.index,
            "system": status.system,
            "api_version": status.api_version,
            "connection_id": status.connection_id,
        }
        if status.system == "online":
            log.info("kraken ws status", **fields)
        else:  # maintenance, cancel_only, post_only: no trades, so no ticker updates
            log.warning("kraken ws trading engine not online", **fields)
