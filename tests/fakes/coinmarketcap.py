"""A fake CoinMarketCap Pro API on loopback, answering from recorded real responses.

Routes (``tests/fixtures/coinmarketcap/``, see its README):

* ``GET /v1/cryptocurrency/listings/latest?start=&limit=&convert=USD`` — slices of the
  recorded top-100 listing of 2021-08-31 (``start`` past the end gives ``"data": []``);
* ``GET /v2/cryptocurrency/quotes/latest?id=|slug=|symbol=`` — BTC is the recorded v2 quote
  of 2022-06-16, any other coin its entry in the listing; by id/slug ``data`` is keyed by id,
  by symbol ``data.SYM`` is an array. An unknown coin is a 400 unless ``skip_invalid=true``.

Like CMC it checks ``X-CMC_PRO_API_KEY``: missing → HTTP 401 with the **recorded** error body
(``error_code`` 1002); wrong, or after :meth:`FakeCmc.reject_key` → 401 ``error_code`` 1001.
Each answer's ``status.credit_count`` is computed like CMC does: 1 credit per 200 coins
returned for listings, 1 per 100 for quotes, at least 1; errors cost 0. Bodies of other errors
(1001, 1008–1011, 5xx) use the recorded status shape with the message from CMC's documented
error table — no recording of those exists. Numbers are served with the recorded digits.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.fakes._exact_json import dumps_exact
from tests.fakes._loopback import Fault, LoopbackFake, Request, Send, respond, retry_after

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "coinmarketcap"
LISTING_FILE = "listings_latest_2021-08-31_top100.json"
QUOTE_V2_FILE = "quotes_latest_v2_by_id_btc_2022-06-16.json"
KEY_MISSING_FILE = "error_http401_code1002_api_key_missing_2020-03-23.json"
KEY_HEADER = "x-cmc_pro_api_key"

#: CMC's documented messages ("Error Response Codes" table) for bodies never recorded.
MESSAGES = {
    400: "Invalid request",
    500: "An internal server error occurred",
    1001: "This API Key is invalid.",
    1006: "Your API Key subscription plan doesn't support this endpoint.",
    1008: "You've exceeded your API Key's HTTP request rate limit. Rate limits reset every minute.",
    1009: "You've exceeded your API Key's daily rate limit.",
    1010: "You've exceeded your API Key's monthly rate limit.",
    1011: "You've hit an IP rate limit.",
}
DEFAULT_CODES = {401: 1001, 403: 1006, 429: 1008}


def load_exact(name: str) -> Any:
    """A recorded file, numbers as Decimal (so they are served with their digits)."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"), parse_float=Decimal)


class FakeCmc(LoopbackFake):
    """CoinMarketCap's listings and quotes endpoints with a key check and controllable faults."""

    name = "fake CoinMarketCap"

    def __init__(self, api_key: str = "test-cmc-key") -> None:
        super().__init__()
        listing = load_exact(LISTING_FILE)
        self.coins: list[dict[str, Any]] = listing["data"]
        self.total_count = listing["status"].get("total_count")
        self.btc_v2: dict[str, Any] = load_exact(QUOTE_V2_FILE)["data"]["1"]
        self.key_missing_body = (FIXTURES / KEY_MISSING_FILE).read_bytes()
        self.api_key = api_key
        self.credits_charged = 0
        self._key_rejected = False
        self._charge: int | None = None

    # -- control ---------------------------------------------------------------------------

    def reject_key(self) -> None:
        """From now on answer 401 ``error_code`` 1001 (the key was revoked)."""
        self._key_rejected = True

    def charge(self, credits: int | None) -> None:
        """Charge ``credits`` per successful answer instead of CMC's rule (None: the rule)."""
        self._charge = credits

    def fail_with(
        self,
        status: int,
        times: int | None = 1,
        retry_after: float | None = None,
        error_code: int | None = None,
    ) -> None:
        """Answer the next ``times`` requests (None: all) with ``status`` and a CMC error body."""
        code = error_code if error_code is not None else DEFAULT_CODES.get(status, status)
        body = dumps_exact({"status": _status(code, MESSAGES.get(code, f"HTTP {status}"), 0)})
        self._faults.append(Fault(status, times, retry_after, body.encode()))

    def listing_requests(self) -> list[Request]:
        """Logged listings/latest requests."""
        return self.requests_to("/listings/latest")

    # -- answers ---------------------------------------------------------------------------

    async def answer_fault(self, send: Send, fault: Fault) -> None:
        await respond(send, fault.status, fault.body or b"", retry_after(fault))

    async def handle(self, request: Request, send: Send) -> None:
        key = request.headers.get(KEY_HEADER)
        if key is None:
            await respond(send, 401, self.key_missing_body)
            return
        if key != self.api_key or self._key_rejected:
            await self._error(send, 401, 1001)
            return
        if request.path == "/v1/cryptocurrency/listings/latest":
            await self._listings(request, send)
        elif request.path == "/v2/cryptocurrency/quotes/latest":
            await self._quotes(request, send)
        else:
            await respond(send, 404, b"not served by the fake", content_type=b"text/plain")

    async def _listings(self, request: Request, send: Send) -> None:
        params = request.params
        if params.get("convert", "USD").upper() != "USD":
            await self._error(send, 400, 400, 'Invalid value for "convert": only USD is served')
            return
        start, limit = _whole(params.get("start", "1")), _whole(params.get("limit", "100"))
        if start is None or start < 1 or limit is None or not 1 <= limit <= 5000:
            await self._error(send, 400, 400, 'Invalid value for "start" or "limit"')
            return
        data = self.coins[start - 1 : start - 1 + limit]
        credits = self._credits(len(data), 200)
        status = _status(0, None, credits)
        status["notice"] = None
        status["total_count"] = self.total_count
        await respond(send, 200, dumps_exact({"status": status, "data": data}).encode())

    async def _quotes(self, request: Request, send: Send) -> None:
        params = request.params
        skip_invalid = params.get("skip_invalid", "false").lower() == "true"
        kind = next((name for name in ("id", "slug", "symbol") if params.get(name)), None)
        if kind is None:
            await self._error(send, 400, 400, '"value" must contain at least one of [id, symbol]')
            return
        wanted = [value.strip() for value in params[kind].split(",") if value.strip()]
        data: dict[str, Any] = {}
        count = 0
        for value in wanted:
            matches = self._find(kind, value)
            if not matches and not skip_invalid:
                await self._error(send, 400, 400, f'Invalid value for "{kind}": "{value}"')
                return
            if kind == "symbol":
                data[value.upper()] = matches
                count += len(matches)
            else:
                for coin in matches:
                    data[str(coin["id"])] = coin
                    count += 1
        status = _status(0, None, self._credits(count, 100))
        status["notice"] = None
        await respond(send, 200, dumps_exact({"status": status, "data": data}).encode())

    def _find(self, kind: str, value: str) -> list[dict[str, Any]]:
        coins = [self.btc_v2, *(coin for coin in self.coins if coin["id"] != 1)]
        if kind == "id":
            return [coin for coin in coins if str(coin["id"]) == value]
        if kind == "slug":
            return [coin for coin in coins if coin["slug"] == value.lower()]
        return [coin for coin in coins if coin["symbol"] == value.upper()]

    def _credits(self, coins: int, per_credit: int) -> int:
        credits = (
            self._charge if self._charge is not None else max(1, math.ceil(coins / per_credit))
        )
        self.credits_charged += credits
        return credits

    async def _error(self, send: Send, http: int, code: int, message: str | None = None) -> None:
        text = message or MESSAGES.get(code, f"HTTP {http}")
        await respond(send, http, dumps_exact({"status": _status(code, text, 0)}).encode())


def _status(code: int, message: str | None, credits: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "error_code": code,
        "error_message": message,
        "elapsed": 1,
        "credit_count": credits,
    }


def _whole(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None
