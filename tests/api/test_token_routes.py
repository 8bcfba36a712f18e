"""The token routes through the ASGI app in process, on the bundled market replay."""

from __future__ import annotations

from decimal import Decimal

import httpx


async def test_tokens_are_paged_by_market_cap(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/tokens", params={"limit": 3})

    assert response.status_code == 200
    body = response.json()
    caps = [Decimal(str(token["market_cap_usd"])) for token in body["data"]]
    assert len(caps) == 3
    assert caps == sorted(caps, reverse=True)
    assert body["pagination"]["limit"] == 3
    following = await client.get("/api/v1/tokens", params={"cursor": body["pagination"]["next"]})
    assert following.status_code == 200
    assert following.json()["data"][0]["id"] not in {t["id"] for t in body["data"]}


async def test_one_token_by_symbol_or_id(client: httpx.AsyncClient) -> None:
    by_id = await client.get("/api/v1/tokens/bitcoin")
    by_symbol = await client.get("/api/v1/tokens/BTC")

    assert by_id.status_code == by_symbol.status_code == 200
    assert by_id.json()["data"]["id"] == by_symbol.json()["data"]["id"] == "bitcoin"


async def test_an_unknown_token_is_a_404_with_the_error_model(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/tokens/no-such-token-anywhere")

    assert response.status_code == 404
    body = response.json()
    assert body["status"] == "error"


async def test_a_bad_parameter_is_named(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/tokens", params={"limit": 0})

    assert response.status_code == 400
    assert "limit" in response.text
