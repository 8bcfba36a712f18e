"""Coinbase Exchange WebSocket ``ticker`` channel as an LTP feed (SPEC §3.3).

The socket machinery is :class:`~tokenpulse.sources._ws.WsTickerFeed`; this module supplies
the venue: the subscribe request (``ticker`` and ``heartbeat`` channels by product id, one
``subscriptions`` ack per request) and the sans-I/O parser. Heartbeats arrive every second
per product and keep a quiet product's value current.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from tokenpulse.sources._feed import FeedFrame
from tokenpulse.sources._ws import FeedShard, WsTickerFeed
from tokenpulse.sources.coinbase.ws_parser import parse_coinbase_ws, subscribe_message

__all__ = ["DEFAULT_WS_URL", "CoinbaseWsSource"]

DEFAULT_WS_URL: Final = "wss://ws-feed.exchange.coinbase.com"


class CoinbaseWsSource(WsTickerFeed):
    """Coinbase ``ticker`` feed; ``symbols`` maps each pair to its product id (``BTC-USD``)."""

    label = "coinbase"

    def __init__(self, *, name: str = "coinbase_ws", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def parse(self, frame: str | bytes, shard: FeedShard, received_at: datetime) -> FeedFrame:
        return parse_coinbase_ws(
            frame, source=self.name, received_at=received_at, products=shard.by_symbol
        )

    def subscribe_frame(self, symbols: Sequence[str], req_id: int) -> str:
        return subscribe_message(symbols)
