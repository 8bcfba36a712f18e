"""One connection's share of a venue feed's pairs (a shard) and what the feed knows of it.

Plain state, no I/O: the symbol of each pair, the subscribe requests of a connection and what
the acks and the data prove subscribed or rejected, the last sequence per pair, and the
liveness that resets the reconnect backoff. The socket loop that drives it is
:class:`~tokenpulse.sources._ws.WsTickerFeed`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tokenpulse.domain.pairs import Pair
from tokenpulse.sources._feed import FeedAck
from tokenpulse.sources._health import Backoff

__all__ = ["FeedPairState", "FeedShard", "split_pairs"]


@dataclass(frozen=True, slots=True)
class FeedPairState:
    """How the feed stands for one pair (the supervisor reads it)."""

    connected: bool
    subscribed: bool
    silent_for: float | None


class FeedShard:
    """One connection's share of the pairs and what is known about it. Plain state."""

    def __init__(self, index: int, symbols: dict[str, Pair], backoff: Backoff) -> None:
        self.index = index
        self.by_symbol = symbols  # venue symbol -> pair, in subscription order
        self.pairs = list(symbols.values())
        self.backoff = backoff
        self.connected = False
        self.healthy = False
        self.opened_mono: float | None = None
        self.subscribed: set[Pair] = set()
        self.rejected: dict[Pair, str] = {}
        self.pending: dict[int, list[str]] = {}
        self.last_frame_mono: float | None = None
        self.sequences: dict[Pair, int] = {}  # the last venue sequence seen per pair

    def silent_for(self) -> float | None:
        if self.last_frame_mono is None:
            return None
        return time.monotonic() - self.last_frame_mono

    def state(self, pair: Pair) -> FeedPairState:
        return FeedPairState(
            connected=self.connected,
            subscribed=self.connected and pair in self.subscribed,
            silent_for=self.silent_for(),
        )

    def batches(self, size: int) -> list[list[str]]:
        """The subscribe batches of a new connection (forgets the previous one's state)."""
        self.pending.clear()
        self.rejected.clear()
        symbols = list(self.by_symbol)
        return [symbols[start : start + size] for start in range(0, len(symbols), size)]

    def acknowledged(self, ack: FeedAck) -> list[Pair]:
        """Apply an ack: the pairs it confirms or rejects."""
        if ack.symbols:
            named = [s for s in ack.symbols if s in self.by_symbol]
        elif ack.req_id is not None:
            named = self.pending.pop(ack.req_id, [])
        else:  # an error naming neither request nor symbol: every unconfirmed pair
            named = [s for s, p in self.by_symbol.items() if p not in self.subscribed]
        pairs = [self.by_symbol[s] for s in named]
        for pair in pairs:
            if ack.error is None:
                self.subscribed.add(pair)
                self.rejected.pop(pair, None)
            else:
                self.rejected[pair] = ack.error
        if ack.error is None:
            self.alive()
        return pairs

    def saw_data(self, pair: Pair) -> bool:
        """Data proves the subscription; True when that is news."""
        if pair in self.by_symbol.values() and pair not in self.subscribed:
            self.subscribed.add(pair)
            return True
        return False

    def alive(self) -> None:
        if not self.healthy:
            self.healthy = True
            self.backoff.reset()

    def disconnected(self) -> None:
        self.connected = False
        self.healthy = False
        self.opened_mono = None
        self.subscribed.clear()


def split_pairs(pairs: list[Pair], max_per_chunk: int) -> list[list[Pair]]:
    """``ceil(n / max_per_chunk)`` contiguous chunks whose sizes differ by at most one."""
    if not pairs:
        return []
    count = -(-len(pairs) // max_per_chunk)
    size, extra = divmod(len(pairs), count)
    chunks: list[list[Pair]] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        chunks.append(pairs[start:end])
        start = end
    return chunks
