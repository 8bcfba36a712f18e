"""One connection's share of the Kraken WS pairs (a shard) and what the feed knows of it.

A :class:`Shard` is plain state, no I/O: the subscribe batches of a new connection and the
req_id of each, what the subscribe acks and ticker data prove subscribed or rejected, the
trading-engine status, and the liveness that resets the reconnect backoff. The socket loop
that drives it is :class:`~tokenpulse.sources.kraken.ws.KrakenWsSource`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from tokenpulse.domain.errors import InvalidParameter
from tokenpulse.domain.pairs import Pair, PairRegistry
from tokenpulse.sources._health import Backoff
from tokenpulse.sources._ws_shard import split_pairs
from tokenpulse.sources.kraken.ws_parser import StatusUpdate, SubscribeAck

__all__ = ["PairFeedState", "Shard", "split_pairs"]


@dataclass(frozen=True, slots=True)
class PairFeedState:
    """How the WS feed stands for one pair; the supervisor falls back to REST on it.

    ``silent_for`` is the number of seconds since the pair's connection last received any
    frame (data or heartbeat), None if it never did.
    """

    connected: bool
    subscribed: bool
    silent_for: float | None


class Shard:
    """One connection's share of the pairs and what we know about it."""

    def __init__(self, index: int, symbols: dict[str, Pair], backoff: Backoff) -> None:
        self.index = index
        self.by_symbol = symbols  # WS v2 symbol -> pair, in subscription order
        self.pairs = list(symbols.values())
        self.pair_set = frozenset(self.pairs)
        self.backoff = backoff
        self.connected = False
        self.healthy = False  # heard data/heartbeat/ack on the current connection
        self.subscribed: set[Pair] = set()
        self.rejected: dict[Pair, str] = {}
        self.pending: dict[int, list[Pair]] = {}  # req_id -> pairs of that request
        self.last_frame_mono: float | None = None
        self.connection_id: int | None = None
        self.system: str | None = None

    def silent_for(self) -> float | None:
        if self.last_frame_mono is None:
            return None
        return time.monotonic() - self.last_frame_mono

    def state(self, pair: Pair) -> PairFeedState:
        """Connection, subscription and silence of this shard's feed for ``pair``."""
        return PairFeedState(
            connected=self.connected,
            subscribed=self.connected and pair in self.subscribed,
            silent_for=self.silent_for(),
        )

    # -- subscribing -----------------------------------------------------------------------

    def subscribe_requests(
        self, batch_size: int, req_ids: Iterator[int]
    ) -> Iterator[tuple[int, list[str]]]:
        """``(req_id, symbols)`` of each subscribe request of a new connection, lazily.

        Forgets the previous connection's requests and rejections first, then records each
        request's pairs under its req_id as the request is produced, so that an error ack
        naming only the req_id fails exactly that request's pairs.
        """
        self.pending.clear()
        self.rejected.clear()
        symbols = list(self.by_symbol)
        for start in range(0, len(symbols), batch_size):
            batch = symbols[start : start + batch_size]
            req_id = next(req_ids)
            self.pending[req_id] = [self.by_symbol[symbol] for symbol in batch]
            yield req_id, batch

    def acknowledged(self, ack: SubscribeAck, registry: PairRegistry) -> None:
        """A successful subscribe ack: its pair is subscribed, and the connection works."""
        pair = self.pair_for(ack.symbol, registry)
        if pair is not None:
            self.subscribed.add(pair)
            self.rejected.pop(pair, None)
        self.alive()

    def rejected_by(self, ack: SubscribeAck, registry: PairRegistry, error: str) -> list[Pair]:
        """Record a failed subscribe ack against the pairs it fails; returns those pairs."""
        pair = self.pair_for(ack.symbol, registry)
        if pair is not None:
            affected = [pair]
        else:  # an error naming no symbol (rate limit, malformed request) fails its request
            requested = self.pending.get(ack.req_id, []) if ack.req_id is not None else []
            affected = [p for p in requested if p not in self.subscribed]
        for p in affected:
            self.rejected[p] = error
        return affected

    def pair_for(self, symbol: str | None, registry: PairRegistry) -> Pair | None:
        if symbol is None:
            return None
        pair = self.by_symbol.get(symbol)
        if pair is not None:
            return pair
        try:
            return registry.resolve(symbol)
        except InvalidParameter:
            return None

    # -- what the connection hears ---------------------------------------------------------

    def saw_data(self, pair: Pair) -> bool:
        """Data proves the subscription, ack or not; True when that is news for ``pair``."""
        if pair in self.pair_set and pair not in self.subscribed:
            self.subscribed.add(pair)
            return True
        return False

    def status_changed(self, status: StatusUpdate) -> bool:
        """Record a status frame; True when the trading engine's state changed."""
        self.connection_id = status.connection_id
        if status.system == self.system:
            return False
        self.system = status.system
        return True

    def alive(self) -> None:
        """The first sign of life after subscribing: this connection works, reset backoff."""
        if not self.healthy:
            self.healthy = True
            self.backoff.reset()

    def disconnected(self) -> None:
        """The connection is gone: nothing is subscribed on it any more."""
        self.connected = False
        self.healthy = False
        self.subscribed.clear()
