"""The stream contract (GET /asyncapi.json) against a real server and the official clients.

Real messages — received by a python-socketio client and an SSE client from the app on a
real port, fed by the fake Kraken WebSocket and the recorded token data — are validated with
jsonschema against the document's own schemas, in both number forms (SPEC §4.6, §7).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import jsonschema
import pytest
import socketio

from tests.contract._types import Census
from tests.e2e._streams import StreamingApp, streaming_app
from tests.fakes.kraken_rest import FakeKrakenRest
from tests.fakes.kraken_ws import FakeKrakenWs
from tests.helpers import wait_for
from tests.server import app_settings
from tokenpulse.api.streams.requests import ACK_ERROR_CODES, CLIENT_EVENTS
from tokenpulse.bus.topics import BULK_EVENT, LTP_EVENT, TOKEN_EVENT
from tokenpulse.settings import Settings
from tokenpulse.sources.replay.tokens import MarketReplaySource

DEADLINE = 10.0
SCHEMA_OF = {LTP_EVENT: "LtpUpdate", TOKEN_EVENT: "TokenUpdate", BULK_EVENT: "BulkUpdate"}


@pytest.fixture
def kraken(kraken_ws: FakeKrakenWs, kraken_rest: FakeKrakenRest) -> Callable[..., Settings]:
    def settings(**overrides: Any) -> Settings:
        return app_settings(
            kraken_ws_url=kraken_ws.url,
            kraken_rest_url=kraken_rest.base_url,
            kraken_fallback_timeout="30s",
            rate_limit_enabled=False,
            **overrides,
        )

    return settings


class Contract:
    """Validates payloads against one schema of the AsyncAPI document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def validate(self, schema: str, payload: Any) -> None:
        root = {"$ref": f"#/components/schemas/{schema}", "components": self.document["components"]}
        jsonschema.Draft202012Validator(root).validate(payload)

    def validate_client(self, event: str, payload: Any) -> None:
        message = self.document["components"]["messages"][event]
        root = {**message["payload"], "components": self.document["components"]}
        jsonschema.Draft202012Validator(root).validate(payload)


class Inbox:
    def __init__(self, client: socketio.AsyncClient) -> None:
        self.events: list[tuple[str, Any]] = []
        for name in SCHEMA_OF:
            client.on(name, lambda data, name=name: self.events.append((name, data)))

    def kinds(self) -> set[tuple[str, str]]:
        return {(event, data["type"]) for event, data in self.events}


@contextlib.asynccontextmanager
async def sio(app: StreamingApp, auth: dict[str, Any] | None = None) -> AsyncIterator[Any]:
    client = socketio.AsyncClient(reconnection=False)
    inbox = Inbox(client)
    await client.connect(app.base_url, auth=auth, transports=["websocket"], wait_timeout=5)
    try:
        yield client, inbox
    finally:
        await client.disconnect()


async def sse_events(http: httpx.AsyncClient, url: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` events of an SSE stream: ``{event, id, data}``."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async with http.stream("GET", url) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line == "" and "data" in current:
                events.append({**current, "data": json.loads(current["data"])})
                current = {}
                if len(events) >= count:
                    break
            elif line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                current[name] = value
    return events


def check_document(document: dict[str, Any]) -> None:
    """Basic AsyncAPI 3 structure, and every reference resolves."""
    assert document["asyncapi"] == "3.0.0"
    assert {"title", "version"} <= set(document["info"])
    channels, operations = document["channels"], document["operations"]
    messages = document["components"]["messages"]
    assert {"socketio", "sseLtp", "sseTokens", "sseToken"} <= set(channels)
    assert set(CLIENT_EVENTS) | {LTP_EVENT, TOKEN_EVENT, BULK_EVENT, "ack"} <= set(messages)
    for name, operation in operations.items():
        assert operation["action"] in {"send", "receive"}, name
        channel = operation["channel"]["$ref"].removeprefix("#/channels/")
        for ref in operation["messages"] + operation.get("reply", {}).get("messages", []):
            path = ref["$ref"].removeprefix("#/channels/").split("/messages/")
            assert path[0] in channels, ref
            assert path[1] in channels[path[0]]["messages"], ref
        assert channel in channels
    for event in CLIENT_EVENTS:  # every client event is received and acknowledged
        assert operations[event]["action"] == "receive"
        assert operations[event]["reply"]["messages"]
    for channel in channels.values():
        for ref in channel["messages"].values():
            assert ref["$ref"].removeprefix("#/components/messages/") in messages
    codes = document["components"]["schemas"]["AckError"]["properties"]["code"]["enum"]
    assert set(codes) == set(ACK_ERROR_CODES)
    jsonschema.Draft202012Validator.check_schema(document["components"]["schemas"]["Ack"])


async def test_real_messages_match_the_asyncapi_document(
    kraken_ws: FakeKrakenWs, kraken: Callable[..., Settings]
) -> None:
    async with (
        streaming_app(kraken(), bulk_interval=0.05) as app,
        httpx.AsyncClient(timeout=DEADLINE) as http,
    ):
        response = await http.get(f"{app.base_url}/asyncapi.json")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        document = response.json()
        check_document(document)
        contract = Contract(document)

        await wait_for(app.container.prices.views, DEADLINE, message="first prices")
        quotes = MarketReplaySource(
            sink=lambda q: None, interval=60, speed=60, metrics=None
        ).next_batch()
        await app.container.tokens.accept(quotes[:5])
        token_ids = [v.snapshot.id for v in app.container.tokens.views()][:2]
        assert token_ids

        async with sio(app) as (plain, plain_inbox), sio(app) as (exact, exact_inbox):
            for client, numbers in ((plain, None), (exact, "string")):
                extra = {} if numbers is None else {"numbers": numbers}
                acks = [
                    await client.call("subscribe_pair", {"pairs": ["BTC/USD"], **extra}),
                    await client.call("subscribe_token", {"token_ids": token_ids, **extra}),
                    await client.call("subscribe_all", extra),
                    await client.call("subscribe_pair", {"pair": "NOPE/USD"}),
                    await client.call("subscribe_token", {"token_id": 5}),
                    await client.call("resume", {"resume": ""}),
                ]
                for ack in acks:
                    contract.validate("Ack", ack)
                assert [a["ok"] for a in acks] == [True, True, True, False, False, False]
                assert acks[0]["numbers"] == (numbers or "number")
            for request, payload in (("subscribe_pair", {"pairs": ["BTC/USD"]}),):
                contract.validate_client(request, payload)
            await kraken_ws.send_ticker(
                "BTC/USD", last=Decimal("70100.123456789012345"), bid=Decimal("70100.1")
            )
            await app.container.tokens.accept(quotes[:5])  # the same values: nothing new
            await app.container.tokens.accept(quotes[5:10])

            def complete(inbox: Inbox) -> bool:
                wanted = {(LTP_EVENT, "snapshot"), (LTP_EVENT, "delta"), (BULK_EVENT, "bulk")}
                return wanted | {(TOKEN_EVENT, "snapshot")} <= inbox.kinds()

            await wait_for(lambda: complete(plain_inbox), DEADLINE, message="every kind")
            await wait_for(lambda: complete(exact_inbox), DEADLINE, message="every kind")
            for inbox, strings in ((plain_inbox, False), (exact_inbox, True)):
                census = Census()
                for event, data in inbox.events:
                    contract.validate(SCHEMA_OF[event], data)
                    census.add(data, event)
                census.check(strings=strings)
            delta = next(
                d for e, d in exact_inbox.events if d["type"] == "delta" and e == LTP_EVENT
            )
            assert delta["changes"]["amount"] == "70100.123456789012345"  # every digit

        for query, strings in (("", False), ("&numbers=string", True)):
            census = Census()
            for path in (
                "/api/v1/ltp/live?pair=BTC/USD",
                f"/api/v1/tokens/{token_ids[0]}/live?x=1",
            ):
                for item in await asyncio.wait_for(
                    sse_events(http, app.base_url + path + query, 1), DEADLINE
                ):
                    contract.validate(SCHEMA_OF[item["event"]], item["data"])
                    census.add(item["data"], item["event"])
            census.check(strings=strings)
        bad = await http.get(f"{app.base_url}/api/v1/ltp/live?numbers=float")
        assert bad.status_code == 400
        assert "numbers" in bad.text
