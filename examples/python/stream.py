"""Live updates with the Python client (SSE, or Socket.IO with the [socketio] extra).

TOKENPULSE_URL=http://127.0.0.1:8080 python examples/python/stream.py [COUNT]
"""

import os
import sys

from tokenpulse_client import TokenpulseClient

URL = os.environ.get("TOKENPULSE_URL", "http://127.0.0.1:8080")
COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 5

client = TokenpulseClient(URL, api_key=os.environ.get("TOKENPULSE_API_KEY"))
for n, update in enumerate(client.stream(pairs=["BTC/USD"], tokens=["bitcoin"]), start=1):
    price = update.state.get("amount", update.state.get("price_usd"))
    print(f"{update.type:8} {update.kind:5} {update.id:8} seq={update.seq} price={price}")
    if n >= COUNT:
        break
client.close()
