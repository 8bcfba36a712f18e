"""Binance spot combined ``<symbol>@ticker`` streams as an LTP feed (SPEC §3.3).

The socket machinery is :class:`~tokenpulse.sources._ws.WsTickerFeed`; this module supplies
the venue: ``SUBSCRIBE`` requests answered by ``{"result":null,"id":n}``, the sans-I/O
parser, and Binance's limits: a connection lives at most 24 hours (renewed at
``max_connection_age``, 23 h by default, before Binance cuts it), at most 1024 streams a
connection, and at most 5 incoming messages a second (subscriptions go in batches).
Keep-alive is the WebSocket ping/pong, answered by the client library.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from tokenpulse.sources._feed import FeedFrame
from tokenpulse.sources._ws import FeedShard, WsTickerFeed
from tokenpulse.sources.binance.ws_parser import parse_binance_ws, subscribe_message

__all__ = ["DEFAULT_MAX_CONNECTION_AGE", "DEFAULT_WS_URL", "MAX_STREAMS", "BinanceWsSource"]

DEFAULT_WS_URL: Final = "wss://stream.binance.com:9443/stream"
DEFAULT_MAX_CONNECTION_AGE: Final = 23 * 3600.0
MAX_STREAMS: Final = 1024  # Binance's limit of streams on one connection


class BinanceWsSource(WsTickerFeed):
    """Binance ticker feed; ``symbols`` maps each pair to its Binance symbol (``BTCUSDT``)."""

    label = "binance"
    subscribe_interval = 0.25  # Binance takes at most 5 messages a second from a client

    def __init__(self, *, name: str = "binance_ws", **kwargs: Any) -> None:
        kwargs.setdefault("max_connection_age", DEFAULT_MAX_CONNECTION_AGE)
        if kwargs.get("max_pairs_per_connection", 1) > MAX_STREAMS:
            raise ValueError(f"Binance allows at most {MAX_STREAMS} streams a connection")
        super().__init__(name=name, **kwargs)

    def parse(self, frame: str | bytes, shard: FeedShard, received_at: datetime) -> FeedFrame:
        return parse_binance_ws(
            frame, source=self.name, received_at=received_at, symbols=shard.by_symbol
        )

    def subscribe_frame(self, symbols: Sequence[str], req_id: int) -> str:
        return subscribe_message(symbols, req_id)
