"""pandas DataFrames of history and token pages (``pip install 'tokenpulse-client[pandas]'``).

Frames are for analysis, so market values become float64 columns (the exact decimals stay in
the typed results) and times a UTC ``DatetimeIndex``.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from tokenpulse_client._token_models import History, Token

HISTORY_COLUMNS = ("open", "high", "low", "close", "market_cap", "volume_24h", "velocity")
TOKEN_COLUMNS = (
    "price_usd",
    "market_cap_usd",
    "volume_24h_usd",
    "circulating_supply",
    "total_supply",
    "max_supply",
    "percent_change_1h",
    "percent_change_24h",
    "percent_change_7d",
    "velocity",
)


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:  # an optional extra
        raise ImportError(
            "history_frame()/tokens_frame() need pandas: pip install 'tokenpulse-client[pandas]'"
        ) from exc
    return pandas


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def history_frame(history: History) -> Any:
    """One row per point, indexed by ``t`` (UTC): OHLC, market cap, volume, velocity, samples."""
    pd = _pandas()
    rows = [
        {
            "t": p.t,
            **{c: _float(getattr(p, c)) for c in HISTORY_COLUMNS},
            "samples": p.samples,
        }
        for p in history.points
    ]
    frame = pd.DataFrame(rows, columns=["t", *HISTORY_COLUMNS, "samples"])
    frame["t"] = pd.to_datetime(frame["t"], utc=True)
    for column in HISTORY_COLUMNS:
        frame[column] = frame[column].astype("float64")
    return frame.set_index("t")


def tokens_frame(tokens: Iterable[Token]) -> Any:
    """One row per token, indexed by ``id``: symbol, name, rank, market values, freshness."""
    pd = _pandas()
    rows = [
        {
            "id": t.id,
            "symbol": t.symbol,
            "name": t.name,
            "rank": t.rank,
            **{c: _float(getattr(t, c)) for c in TOKEN_COLUMNS},
            "source": t.source,
            "as_of": t.as_of,
            "age_ms": t.age_ms,
            "stale": t.stale,
        }
        for t in tokens
    ]
    columns = ["id", "symbol", "name", "rank", *TOKEN_COLUMNS, "source", "as_of", "age_ms", "stale"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
    for column in TOKEN_COLUMNS:
        frame[column] = frame[column].astype("float64")
    return frame.set_index("id")


__all__ = ["history_frame", "tokens_frame"]
