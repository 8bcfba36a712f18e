"""Response models: they document the API in OpenAPI (with examples); the hot paths write the
same shapes as ready-made bytes. One module per area; every model is importable from here."""

from tokenpulse.api.schemas.aggregate import Aggregate, AggregateResponse, AggregateVenue
from tokenpulse.api.schemas.envelope import Meta, Success
from tokenpulse.api.schemas.errors import ErrorDetail, ErrorResponse, FlatError
from tokenpulse.api.schemas.ltp import (
    LtpEntry,
    LtpFailure,
    LtpResponse,
    PairError,
    RefreshFailure,
    RefreshResponse,
)
from tokenpulse.api.schemas.ops import (
    HealthResponse,
    PairInfo,
    PairList,
    ReadyResponse,
    SourceList,
    SourceReport,
)
from tokenpulse.api.schemas.tokens import (
    CompactSeries,
    Gap,
    History,
    HistoryPoint,
    HistoryResponse,
    Pagination,
    Quality,
    Token,
    TokenDetail,
    TokenList,
    TokenResponse,
    Trend,
    Velocity,
    VelocityResponse,
    VelocityWindow,
)

__all__ = [
    "Aggregate",
    "AggregateResponse",
    "AggregateVenue",
    "CompactSeries",
    "ErrorDetail",
    "ErrorResponse",
    "FlatError",
    "Gap",
    "HealthResponse",
    "History",
    "HistoryPoint",
    "HistoryResponse",
    "LtpEntry",
    "LtpFailure",
    "LtpResponse",
    "Meta",
    "Pagination",
    "PairError",
    "PairInfo",
    "PairList",
    "Quality",
    "ReadyResponse",
    "RefreshFailure",
    "RefreshResponse",
    "SourceList",
    "SourceReport",
    "Success",
    "Token",
    "TokenDetail",
    "TokenList",
    "TokenResponse",
    "Trend",
    "Velocity",
    "VelocityResponse",
    "VelocityWindow",
]
