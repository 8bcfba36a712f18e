"""The tokenpulse Python client: typed REST calls and live streams that survive restarts.

Needs only ``httpx`` (and ``python-socketio[asyncio_client]`` for Socket.IO streams); it
imports nothing else from tokenpulse, so it can be used without the server's dependencies::

    from tokenpulse.client import TokenpulseClient

    for update in TokenpulseClient("http://127.0.0.1:8080").stream(pairs=["BTC/USD"]):
        print(update.id, update.state["amount"], update.seq)

or, in asyncio code, ``async for update in AsyncTokenpulseClient(…).stream(…)``. Each
:class:`Update` carries the merged full ``state`` of its key; the stream reconnects,
resubscribes and refetches a snapshot after a ``seq`` gap by itself.
"""

from tokenpulse.client._http import AsyncTokenpulseClient, TokenpulseClient
from tokenpulse.client._models import (
    Health,
    LtpResult,
    PairError,
    PairInfo,
    Price,
    StreamError,
    Token,
    TokenPage,
    TokenpulseAPIError,
    Update,
)

__all__ = [
    "AsyncTokenpulseClient",
    "Health",
    "LtpResult",
    "PairError",
    "PairInfo",
    "Price",
    "StreamError",
    "Token",
    "TokenPage",
    "TokenpulseAPIError",
    "TokenpulseClient",
    "Update",
]
