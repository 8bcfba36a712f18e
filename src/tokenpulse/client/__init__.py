"""The tokenpulse Python client: typed REST calls and live streams that survive restarts.

Needs only ``httpx`` (and ``python-socketio[asyncio_client]`` for Socket.IO streams); it
imports nothing else from tokenpulse, so it can be used without the server's dependencies::

    import asyncio
    from tokenpulse.client import AsyncTokenpulseClient

    async def main() -> None:
        async with AsyncTokenpulseClient("http://127.0.0.1:8080", api_key=None) as tp:
            async for update in tp.stream(pairs=["BTC/USD"]):
                print(update.id, update.state["amount"], update.seq)

    asyncio.run(main())
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
