"""REST with the Python client: prices, the top tokens by market cap, one token's velocity.

pip install ./clients/python
TOKENPULSE_URL=http://127.0.0.1:8080 python examples/python/rest.py
"""

import os

from tokenpulse_client import TokenpulseClient

URL = os.environ.get("TOKENPULSE_URL", "http://127.0.0.1:8080")

with TokenpulseClient(URL, api_key=os.environ.get("TOKENPULSE_API_KEY"), retries=3) as tp:
    print("health:", tp.health().status)
    for price in tp.ltp(["BTC/USD", "ETH/USD"]).prices:
        print(f"{price.pair}: {price.amount} ({price.source}, {price.age_ms} ms old)")
    for token in tp.tokens(limit=5, sort="market_cap").tokens:
        print(f"#{token.rank} {token.symbol}: ${token.price_usd:,.2f} velocity={token.velocity}")
    velocity = tp.velocity("bitcoin")
    print("bitcoin velocity:", velocity.velocity, velocity.formula)
    for window, trend in velocity.trends.items():
        print(f"  {window}: {trend.direction or trend.reason}")
