"""One JSON type per field over a real server's REST answers (SPEC §4.6).

The app on a real port replays the bundled recordings (Kraken WS v2 prices, CoinGecko token
markets and their history, ``sources=replay``), and every endpoint that returns market values
is asked in both number forms; the census of every field's JSON type must show one type per
field: numbers by default, the exact decimal strings with ``numbers=string``, computed values
numbers either way. Streams are checked the same way in ``tests/e2e/test_asyncapi.py``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.contract._types import Census
from tests.helpers import wait_for
from tests.server import app_settings, running_app

DEADLINE = 20.0


async def test_every_rest_answer_has_one_json_type_per_field(tmp_path: Path) -> None:
    settings = app_settings(
        sources="replay",
        replay_speed=10_000,
        rate_limit_enabled=False,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/history.db",
    )
    async with running_app(settings) as app, httpx.AsyncClient(timeout=DEADLINE) as http:
        base = app.base_url

        async def get(path: str) -> Any:
            response = await http.get(base + path)
            assert response.status_code == 200, (path, response.text[:300])
            return response.json()

        async def served() -> bool:
            tokens = (await http.get(f"{base}/api/v1/tokens?limit=5")).json()
            ltp = (await http.get(f"{base}/api/v1/ltp")).status_code
            return ltp == 200 and tokens.get("pagination", {}).get("total", 0) >= 5

        await wait_for(served, DEADLINE, message="replayed prices and tokens")
        ids = [t["id"] for t in (await get("/api/v1/tokens?limit=5"))["data"]]
        await wait_for(
            lambda: _has_history(http, base, ids[0]), DEADLINE, message="replayed history"
        )
        paths = ["/api/v1/ltp?x=1", "/api/v1/ltp/cached?x=1", "/api/v1/tokens?limit=500"]
        paths += ["/api/v1/tokens?detail=basic&limit=500"]
        for token_id in ids:
            paths += [
                f"/api/v1/tokens/{token_id}?history=7d",
                f"/api/v1/tokens/{token_id}/velocity?window=7d",
                f"/api/v1/tokens/{token_id}/history?granularity=1d&from=2020-01-01T00:00:00Z",
                f"/api/v1/tokens/{token_id}/history?granularity=raw&from=0",
            ]
        exact: dict[str, Any] = {}
        for strings in (False, True):
            census = Census()
            for path in paths:
                body = await get(path + ("&numbers=string" if strings else ""))
                census.add(body)
                if strings and path.startswith("/api/v1/ltp?"):
                    exact = body
            census.check(strings=strings)
            for field in ("amount", "price_usd", "market_cap_usd", "velocity", "close"):
                assert census.paths(field), f"no {field} was served"
        # The exact strings are decimals as the provider wrote them (plain notation).
        for item in exact["ltp"]:
            assert Decimal(item["amount"]).is_finite()
            assert "E" not in item["amount"].upper()

        bad = await http.get(f"{base}/api/v1/tokens?numbers=decimal")
        assert bad.status_code == 400
        assert bad.json()["error"]["details"]["parameter"] == "numbers"
        flat = await http.get(f"{base}/api/v1/ltp?numbers=decimal")
        assert (flat.status_code, flat.json()["error"]) == (400, "INVALID_PARAMETER")


async def _has_history(http: httpx.AsyncClient, base: str, token_id: str) -> bool:
    url = f"{base}/api/v1/tokens/{token_id}/history?granularity=1d&from=2020-01-01T00:00:00Z"
    response = await http.get(url)
    return response.status_code == 200 and response.json()["data"]["count"] > 0
