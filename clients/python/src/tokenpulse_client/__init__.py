"""tokenpulse's Python client: typed REST calls, live streams, typed errors, pandas frames.

Needs only ``httpx``; it imports nothing of the tokenpulse server, so it installs without the
server's dependencies (``pip install ./clients/python``)::

    from tokenpulse_client import TokenpulseClient

    with TokenpulseClient("http://127.0.0.1:8080", retries=3) as tp:
        print(tp.ltp("BTC/USD")["BTC/USD"].amount)          # a Decimal
        for token in tp.iter_tokens(sort="velocity"):         # every page
            print(token.id, token.velocity, token.as_of)      # Decimal, aware datetime
        for update in tp.stream(pairs=["BTC/USD"]):           # SSE, or Socket.IO if installed
            print(update.id, update.state["amount"], update.seq)

``AsyncTokenpulseClient`` has the same calls for asyncio code. Each :class:`Update` carries
the merged full ``state`` of its key; the stream reconnects, resubscribes and refetches a
snapshot after a ``seq`` gap by itself. Errors are :class:`TokenpulseError` subclasses
(:class:`RateLimited` with ``retry_after``, :class:`NotFound`, :class:`StaleData`, …).
"""

from tokenpulse_client._async import AsyncTokenpulseClient
from tokenpulse_client._calls import Detail, Granularity, Numbers, SortOrder, TokenSort
from tokenpulse_client._errors import (
    AmbiguousToken,
    APIError,
    BadRequest,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    StaleData,
    StreamError,
    TokenpulseError,
    TransportError,
    Unauthorized,
    Unavailable,
    UpstreamError,
)
from tokenpulse_client._models import (
    Health,
    LtpResult,
    PairError,
    PairInfo,
    Price,
    Readiness,
    RefreshResult,
    Update,
)
from tokenpulse_client._stream import Transport
from tokenpulse_client._sync import TokenpulseClient
from tokenpulse_client._token_models import History, HistoryPoint, Token, TokenPage, Trend, Velocity

__version__ = "0.1.0"

# The name the client had inside the server package: kept so existing code still catches it.
TokenpulseAPIError = APIError

__all__ = [
    "APIError",
    "AmbiguousToken",
    "AsyncTokenpulseClient",
    "BadRequest",
    "Detail",
    "Forbidden",
    "Granularity",
    "Health",
    "History",
    "HistoryPoint",
    "LtpResult",
    "NotFound",
    "Numbers",
    "PairError",
    "PairInfo",
    "Price",
    "RateLimited",
    "Readiness",
    "RefreshResult",
    "ServerError",
    "SortOrder",
    "StaleData",
    "StreamError",
    "Token",
    "TokenPage",
    "TokenSort",
    "TokenpulseAPIError",
    "TokenpulseClient",
    "TokenpulseError",
    "Transport",
    "TransportError",
    "Trend",
    "Unauthorized",
    "Unavailable",
    "Update",
    "UpstreamError",
    "Velocity",
    "__version__",
]
