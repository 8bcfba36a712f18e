"""A token's history into pandas (pip install './clients/python[pandas]').

TOKENPULSE_URL=http://127.0.0.1:8080 python examples/python/history_pandas.py [TOKEN]
"""

import os
import sys
from datetime import UTC, datetime, timedelta

from tokenpulse_client import TokenpulseClient

URL = os.environ.get("TOKENPULSE_URL", "http://127.0.0.1:8080")
TOKEN = sys.argv[1] if len(sys.argv) > 1 else "bitcoin"

with TokenpulseClient(URL, api_key=os.environ.get("TOKENPULSE_API_KEY")) as tp:
    since = datetime.now(UTC) - timedelta(days=30)
    frame = tp.history_frame(TOKEN, start=since, granularity="1d")
    print(frame[["close", "market_cap", "velocity"]].tail(10))
    print("mean velocity over", len(frame), "days:", round(frame["velocity"].mean(), 6))
    tokens = tp.tokens_frame(min_market_cap=1e9)
    print(tokens[["symbol", "price_usd", "velocity"]].sort_values("velocity").tail(5))
