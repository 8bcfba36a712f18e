"""A fake of the three venues' pair-list endpoints on loopback (one server for all three).

``GET /0/public/AssetPairs`` answers the bundled Kraken AssetPairs capture (2021-04-17, plus
the 2026 ticker's pairs), ``GET /products`` the bundled Coinbase product capture
(2021-04-17), both as recorded. Binance's ``GET /api/v3/exchangeInfo`` was never recorded:
its body is **written by us** in the documented shape (``{"symbols":[{"symbol","status",
"baseAsset","quoteAsset"}]}``) from the symbols of the recorded Binance frames (BTCUSDT,
ETHUSDT, ETHBTC, NKNUSDT, BLZETH, LRCBTC, RUNEEUR). :meth:`FakePairLists.drop` removes a pair
from a venue's list (a delisting), :meth:`FakePairLists.add` adds one (a new listing);
``fail_with`` answers 5xx; ``delay`` makes every answer slow (a timeout).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from tests.fakes._loopback import LoopbackFake, Request, Send, respond, to_json
from tokenpulse.data import bundled_coinbase_products, bundled_kraken_asset_pairs

RECORDED_BINANCE_SYMBOLS = [
    ("BTC", "USDT"),
    ("ETH", "USDT"),
    ("ETH", "BTC"),
    ("NKN", "USDT"),
    ("BLZ", "ETH"),
    ("LRC", "BTC"),
    ("RUNE", "EUR"),
]


class FakePairLists(LoopbackFake):
    """Kraken, Coinbase and Binance pair lists under one base URL."""

    name = "fake-pair-lists"

    def __init__(self) -> None:
        super().__init__()
        self.kraken: dict[str, Any] = copy.deepcopy(bundled_kraken_asset_pairs())
        products = bundled_coinbase_products()
        assert isinstance(products, list)
        self.coinbase: list[dict[str, Any]] = copy.deepcopy(products)
        self.binance: dict[str, Any] = {
            "timezone": "UTC",
            "symbols": [
                {"symbol": b + q, "status": "TRADING", "baseAsset": b, "quoteAsset": q}
                for b, q in RECORDED_BINANCE_SYMBOLS
            ],
        }
        self.delay_seconds = 0.0

    def drop(self, venue: str, base: str, quote: str) -> None:
        """The venue no longer lists ``base/quote``."""
        if venue == "kraken":
            result = self.kraken["result"]
            for key in [k for k, v in result.items() if v.get("wsname") in _wsnames(base, quote)]:
                del result[key]
        elif venue == "coinbase":
            self.coinbase = [p for p in self.coinbase if p["id"] != f"{base}-{quote}"]
        else:
            self.binance["symbols"] = [
                s for s in self.binance["symbols"] if s["symbol"] != base + quote
            ]

    def add(self, venue: str, base: str, quote: str) -> None:
        """The venue lists ``base/quote`` now."""
        if venue == "kraken":
            key = f"{base}{quote}"
            self.kraken["result"][key] = {"altname": key, "wsname": f"{base}/{quote}"}
        elif venue == "coinbase":
            self.coinbase.append(
                {"id": f"{base}-{quote}", "base_currency": base, "quote_currency": quote}
            )
        else:
            self.binance["symbols"].append(
                {
                    "symbol": base + quote,
                    "status": "TRADING",
                    "baseAsset": base,
                    "quoteAsset": quote,
                }
            )

    async def handle(self, request: Request, send: Send) -> None:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)  # the fake's slowness, not a test wait
        bodies = {
            "/0/public/AssetPairs": self.kraken,
            "/products": self.coinbase,
            "/api/v3/exchangeInfo": self.binance,
        }
        body = bodies.get(request.path)
        if body is None:
            await respond(send, 404, to_json({"message": "NotFound"}))
            return
        await respond(send, 200, to_json(body))


def _wsnames(base: str, quote: str) -> set[str]:
    aliases = {"BTC": "XBT", "DOGE": "XDG"}
    return {f"{base}/{quote}", f"{aliases.get(base, base)}/{quote}"}
