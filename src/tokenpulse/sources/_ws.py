"""A venue's WebSocket ticker feed: sharded connections, watchdog, backoff, acks, health.

The shared socket machinery of the Coinbase and Binance feeds (SPEC §3). A venue subclass
gives the URL, its sans-I/O parser and its subscribe request; this class runs::

    connect -> subscribe in batches -> read frames -> parse -> sink (never blocks)
       ^                                                  |
       +---- backoff (capped, jittered) <--- closed / failed / idle / too old

Pairs are spread over ``ceil(n / max_pairs_per_connection)`` connections, each with its own
task and backoff. A connection that is older than ``max_connection_age`` (Binance closes
every connection after 24 h) is replaced before the venue drops it. Nothing but
``CancelledError`` ever leaves :meth:`WsTickerFeed.run`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping, Sequence
from datetime import datetime

import structlog
from websockets.asyncio.client import ClientConnection, connect

from tokenpulse.domain.errors import ParseError
from tokenpulse.domain.events import SourceHeartbeat, TickerUpdated
from tokenpulse.domain.pairs import Pair, unique
from tokenpulse.domain.time import utcnow
from tokenpulse.observability.metrics import Metrics
from tokenpulse.sources._feed import FeedAck, FeedAlive, FeedFrame
from tokenpulse.sources._health import (
    Backoff,
    EventSink,
    ParseErrorReporter,
    SourceHealth,
    bind_health_metrics,
    message_counter,
)
from tokenpulse.sources._ws_book import ShardedWsBook
from tokenpulse.sources._ws_shard import FeedPairState, FeedShard, split_pairs

__all__ = ["FeedPairState", "FeedShard", "WsTickerFeed", "split_pairs"]  # shards: _ws_shard

log = structlog.get_logger(__name__)

OPEN_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0
PING_INTERVAL = 20.0
PING_TIMEOUT = 20.0
MAX_FRAME_BYTES = 1 << 20
YIELD_EVERY = 32


class WsTickerFeed(ShardedWsBook):
    """A venue's ticker feed over one or more WebSocket connections, reconnecting forever.

    Subclasses set :attr:`label` and implement :meth:`parse` and :meth:`subscribe_frame`.
    """

    label = "venue"
    _shards: list[FeedShard]
    _shard_of: dict[Pair, FeedShard]
    #: Seconds between the subscribe requests of one connection (venues cap request rates).
    subscribe_interval = 0.0

    def __init__(
        self,
        *,
        name: str,
        url: str,
        symbols: Mapping[Pair, str],
        sink: EventSink,
        metrics: Metrics | None,
        idle_timeout: float,
        max_pairs_per_connection: int,
        subscribe_batch_size: int,
        backoff_initial: float,
        backoff_max: float,
        max_connection_age: float | None = None,
    ) -> None:
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, got {idle_timeout}")
        if max_pairs_per_connection < 1 or subscribe_batch_size < 1:
            raise ValueError("max_pairs_per_connection and subscribe_batch_size must be >= 1")
        if backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError(f"need 0 < backoff_initial <= backoff_max, got {backoff_initial}")
        self.name = name
        self.url = url
        self.sink = sink
        self.metrics = metrics
        self.idle_timeout = idle_timeout
        self.subscribe_batch_size = subscribe_batch_size
        self.max_connection_age = max_connection_age
        self.health = SourceHealth(name, kind="websocket")
        self._parse_errors = ParseErrorReporter(name, metrics)
        self._count_message = message_counter(metrics, name)
        self._req_ids = itertools.count(1)
        self._running = False
        self._attempted = False
        pairs = unique(symbols)
        self._shards = [
            FeedShard(index, {symbols[p]: p for p in chunk}, Backoff(backoff_initial, backoff_max))
            for index, chunk in enumerate(split_pairs(pairs, max_pairs_per_connection))
        ]
        self._shard_of = {pair: shard for shard in self._shards for pair in shard.pairs}
        if metrics is not None:
            bind_health_metrics(self.health, metrics)
        self._refresh_health()

    # -- the venue's part ----------------------------------------------------------------

    def parse(self, frame: str | bytes, shard: FeedShard, received_at: datetime) -> FeedFrame:
        """Parse one frame with the venue's sans-I/O parser."""
        raise NotImplementedError

    def subscribe_frame(self, symbols: Sequence[str], req_id: int) -> str:
        """The venue's subscribe request for ``symbols``."""
        raise NotImplementedError

    # -- what the supervisor reads ---------------------------------------------------------

    def pair_state(self, pair: Pair) -> FeedPairState:
        shard = self._shard_of.get(pair)
        if shard is None:
            return FeedPairState(connected=False, subscribed=False, silent_for=None)
        return shard.state(pair)

    # -- the loops -------------------------------------------------------------------------

    async def run(self) -> None:
        """Run every shard until cancelled; provider faults never end it."""
        self._running = True
        self._refresh_health()
        try:
            if not self._shards:
                await asyncio.Event().wait()
            async with asyncio.TaskGroup() as group:
                for shard in self._shards:
                    group.create_task(self._run_shard(shard), name=f"{self.name}[{shard.index}]")
        finally:
            self._running = False
            for shard in self._shards:
                self._mark_disconnected(shard)

    async def _run_shard(self, shard: FeedShard) -> None:
        attempt = 0
        while True:
            if attempt:
                self._count_reconnect()
            attempt += 1
            aged = False
            try:
                aged = await self._session(shard)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every provider fault ends in a reconnect, never a crash
                self._session_failed(shard, exc)
            finally:
                self._mark_disconnected(shard)
            if aged:  # a planned renewal, not a fault: reconnect at once
                continue
            delay = shard.backoff.next_delay()
            log.info(
                f"{self.label} ws reconnecting",
                source=self.name,
                shard=shard.index,
                delay=round(delay, 3),
            )
            await asyncio.sleep(delay)

    async def _session(self, shard: FeedShard) -> bool:
        """One connection; True when it ended because it reached ``max_connection_age``."""
        async with connect(
            self.url,
            open_timeout=OPEN_TIMEOUT,
            ping_interval=PING_INTERVAL,
            ping_timeout=PING_TIMEOUT,
            close_timeout=CLOSE_TIMEOUT,
            max_size=MAX_FRAME_BYTES,
        ) as ws:
            shard.connected = True
            shard.opened_mono = time.monotonic()
            self._refresh_health()
            log.info(
                f"{self.label} ws connected",
                source=self.name,
                shard=shard.index,
                url=self.url,
                pairs=len(shard.pairs),
            )
            for number, batch in enumerate(shard.batches(self.subscribe_batch_size)):
                if number and self.subscribe_interval:
                    await asyncio.sleep(self.subscribe_interval)
                req_id = next(self._req_ids)
                shard.pending[req_id] = batch
                await ws.send(self.subscribe_frame(batch, req_id))
            return await self._read(ws, shard)

    async def _read(self, ws: ClientConnection, shard: FeedShard) -> bool:
        frames = 0
        while True:
            frames += 1
            if frames % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            timeout = self.idle_timeout
            aged_in = self._age_left(shard)
            if aged_in is not None and aged_in <= 0:
                log.info(
                    f"{self.label} ws connection renewed",
                    source=self.name,
                    shard=shard.index,
                    max_connection_age=self.max_connection_age,
                )
                return True
            if aged_in is not None:
                timeout = min(timeout, aged_in)
            try:
                async with asyncio.timeout(timeout):
                    frame = await ws.recv()
            except TimeoutError:
                if aged_in is not None and aged_in <= self.idle_timeout:
                    continue  # the age limit, checked at the top of the loop
                self._count_error("idle_timeout", f"no frame for {self.idle_timeout}s")
                log.warning(
                    f"{self.label} ws silent, reconnecting",
                    source=self.name,
                    shard=shard.index,
                    idle_timeout=self.idle_timeout,
                )
                return False
            self._on_frame(shard, frame)

    def _age_left(self, shard: FeedShard) -> float | None:
        if self.max_connection_age is None or shard.opened_mono is None:
            return None
        return self.max_connection_age - (time.monotonic() - shard.opened_mono)

    # -- one frame -------------------------------------------------------------------------

    def _on_frame(self, shard: FeedShard, frame: str | bytes) -> None:
        shard.last_frame_mono = mono = time.monotonic()
        received_at = utcnow()
        self.health.heard(received_at, mono)
        try:
            result = self.parse(frame, shard, received_at)
        except ParseError as exc:
            self._malformed(exc, frame)
            return
        for error in result.errors:
            self._malformed(error, frame)
        kind = "ignored" if result.ignored else "empty"
        for message in result.messages:
            if isinstance(message, TickerUpdated) and not self._in_order(shard, message, result):
                kind = "out_of_order"
            elif isinstance(message, TickerUpdated):
                kind = "ticker"
                if shard.saw_data(message.ticker.pair):
                    self._refresh_health()
                shard.alive()
                self._emit(message)
            elif isinstance(message, FeedAlive):
                kind = "heartbeat"
                shard.alive()
                self._emit(SourceHeartbeat(source=self.name, at=received_at))
            elif isinstance(message, FeedAck):
                kind = "subscribe_ack"
                self._on_ack(shard, message)
        self._count_message(kind)

    @staticmethod
    def _in_order(shard: FeedShard, message: TickerUpdated, result: FeedFrame) -> bool:
        """False for a ticker whose sequence is not above the last one seen for its pair."""
        if result.sequence is None:
            return True
        pair = message.ticker.pair
        last = shard.sequences.get(pair)
        if last is not None and result.sequence <= last:
            return False
        shard.sequences[pair] = result.sequence
        return True

    def _on_ack(self, shard: FeedShard, ack: FeedAck) -> None:
        pairs = shard.acknowledged(ack)
        if ack.error is not None:
            self._count_error("subscribe_rejected", ack.error)
            log.warning(
                f"{self.label} ws subscription rejected",
                source=self.name,
                shard=shard.index,
                error=ack.error,
                pairs=[str(p) for p in pairs],
            )
        self._refresh_health()
