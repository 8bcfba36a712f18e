"""One connection's share of the Kraken WS pairs (a shard) and what the feed knows of it."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from tokenpulse.domain.pairs import Pair
from tokenpulse.sources._health import Backoff

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


def split_pairs(pairs: list[Pair], max_per_chunk: int) -> list[list[Pair]]:
    """``ceil(n / max_per_chunk)`` contiguous chunks whose sizes differ by at most one."""
    if not pairs:
        return []
    count = math.ceil(len(pairs) / max_per_chunk)
    size, extra = divmod(len(pairs), count)
    chunks: list[list[Pair]] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        chunks.append(pairs[start:end])
        start = end
    return chunks
