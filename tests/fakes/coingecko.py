"""A fake CoinGecko API v3 on loopback, answering from recorded real responses.

Routes (``tests/fixtures/coingecko/``, see its README):

* ``GET /api/v3/coins/markets?vs_currency=usd&per_page=&page=&ids=`` — pages of the recorded
  top-100 answer of 2021-06-24, in its order (``per_page`` at most 250, default 100). Page 2
  and later of a 100-coin list are ``[]``, as the real API answers past the end. The
  recording was made with ``price_change_percentage=1y``; the fake does not invent the
  1h/24h/7d ``…_in_currency`` fields a live answer to our request would have.
* ``GET /api/v3/coins/{id}/market_chart?vs_currency=usd&days=`` — the recorded bitcoin 7-day
  hourly chart and the terra-luna daily ``max`` chart, byte for byte, whatever ``days`` says;
  any other id is a 404 ``{"error":"coin not found"}`` as CoinGecko answers.
  :meth:`FakeCoinGecko.rebase_charts` moves them in time to end at a given moment.

:meth:`FakeCoinGecko.rate_limit` answers 429 with the **recorded** rate-limit body and a
``Retry-After`` header (the recorded one said 119 s; tests pass tiny values).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.fakes._exact_json import dumps_exact
from tests.fakes._loopback import Fault, LoopbackFake, Request, Send, respond, retry_after

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "coingecko"
MARKETS_FILE = "coins_markets_usd_2021-06-24_top100.json"
RATE_LIMIT_FILE = "error_http429_rate_limit_2022-09-29.json"
CHART_FILES = {
    "bitcoin": "market_chart_bitcoin_usd_7d_hourly_2023-10-10.json",
    "terra-luna": "market_chart_terra-luna_usd_max_daily_2022-07-06.json",
}
RECORDED_RETRY_AFTER = 119.0
DEMO_HEADER = "x-cg-demo-api-key"
PRO_HEADER = "x-cg-pro-api-key"
_CHART = re.compile(r"^/api/v3/coins/([^/]+)/market_chart$")


class FakeCoinGecko(LoopbackFake):
    """CoinGecko's markets and market_chart endpoints with controllable faults."""

    name = "fake CoinGecko"

    def __init__(self) -> None:
        super().__init__()
        text = (FIXTURES / MARKETS_FILE).read_text(encoding="utf-8")
        self.coins: list[dict[str, Any]] = json.loads(text, parse_float=Decimal)
        self.rate_limit_body = (FIXTURES / RATE_LIMIT_FILE).read_bytes()
        self.charts = {coin: (FIXTURES / name).read_bytes() for coin, name in CHART_FILES.items()}

    def rebase_charts(self, at: datetime, index: int = -1) -> None:
        """Move every recorded chart in time so its point ``index`` (the last by default) is
        at ``at``; values and spacing unchanged, as a live CoinGecko would answer then."""
        for coin, body in self.charts.items():
            chart = json.loads(body, parse_float=Decimal)
            shift = int(at.timestamp() * 1000) - int(chart["prices"][index][0])
            for series in chart.values():
                for point in series:
                    point[0] = int(point[0]) + shift
            self.charts[coin] = dumps_exact(chart).encode()

    def rate_limit(self, times: int | None = 1, retry_after: float | None = None) -> None:
        """Answer the next ``times`` requests with the recorded 429 body and ``Retry-After``."""
        self._faults.append(Fault(429, times, retry_after, self.rate_limit_body))

    def market_requests(self) -> list[Request]:
        """Logged coins/markets requests."""
        return self.requests_to("/coins/markets")

    async def answer_fault(self, send: Send, fault: Fault) -> None:
        if fault.body is not None:
            await respond(send, fault.status, fault.body, retry_after(fault))
        else:
            body = f"<html><body>{fault.status} from the fake</body></html>".encode()
            await respond(send, fault.status, body, retry_after(fault), content_type=b"text/html")

    async def handle(self, request: Request, send: Send) -> None:
        if request.params.get("vs_currency", "").lower() != "usd":
            await respond(send, 400, b'{"error":"invalid vs_currency"}')
            return
        if request.path == "/api/v3/coins/markets":
            await self._markets(request, send)
            return
        match = _CHART.match(request.path)
        if match is None:
            await respond(send, 404, b"not served by the fake", content_type=b"text/plain")
            return
        chart = self.charts.get(match.group(1))
        if chart is None:
            await respond(send, 404, b'{"error":"coin not found"}')
            return
        await respond(send, 200, chart)

    async def _markets(self, request: Request, send: Send) -> None:
        params = request.params
        per_page = min(250, max(1, _whole(params.get("per_page"), 100)))
        page = max(1, _whole(params.get("page"), 1))
        coins = self.coins
        ids = [item.strip() for item in params.get("ids", "").split(",") if item.strip()]
        if ids:
            wanted = set(ids)
            coins = [coin for coin in coins if coin["id"] in wanted]
        chosen = coins[(page - 1) * per_page : page * per_page]
        await respond(send, 200, dumps_exact(chosen).encode())


def _whole(text: str | None, default: int) -> int:
    if text is None or not text.strip().isdigit():
        return default
    return int(text)
