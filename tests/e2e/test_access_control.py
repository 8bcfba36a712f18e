"""Access control end to end (SPEC §8): the official Socket.IO client with session tokens and
tier limits, SSE with ``?token=``, and two instances sharing keys, limits and blocks on Redis."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from typer.testing import CliRunner

from tests.helpers import wait_for
from tests.server import RunningApp, app_settings, running_app
from tokenpulse.cli import app as cli
from tokenpulse.services.access.keys import KeyService
from tokenpulse.store.cache.redis import from_url
from tokenpulse.store.keyrevision import RedisKeyRevision
from tokenpulse.store.keys import SqlKeyStore

ADMIN = "bootstrap-admin-key-0123456789"
PEPPER = "pepper-for-the-tests-0123456789"
ADMIN_HEADERS = {"X-API-Key": ADMIN}


def settings_for(tmp: Path, **overrides: Any) -> Any:
    return app_settings(
        sources="replay",
        auth_enabled=True,
        auth_api_key=ADMIN,
        auth_key_pepper=PEPPER,
        database_url=f"sqlite+aiosqlite:///{tmp}/history.db",
        **overrides,
    )


async def create_key(http: httpx.AsyncClient, app: RunningApp, **body: Any) -> dict[str, Any]:
    response = await http.post(
        f"{app.base_url}/api/v1/admin/keys", json={"name": "e2e", **body}, headers=ADMIN_HEADERS
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def session(http: httpx.AsyncClient, app: RunningApp, api_key: str) -> str:
    response = await http.post(f"{app.base_url}/api/v1/sessions", headers={"X-API-Key": api_key})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


_PROBES = itertools.count(1)


async def _status(
    http: httpx.AsyncClient, app: RunningApp, headers: dict[str, str], status: int
) -> bool:
    """Whether a call answers ``status``, each from an address of its own: a probe refused
    with 401 is a failed authentication, and the test must not get itself blocked."""
    n = next(_PROBES)
    probe = {**headers, "X-Forwarded-For": f"198.18.{n // 250}.{n % 250 + 1}"}
    return (await http.get(f"{app.base_url}/api/v1/pairs", headers=probe)).status_code == status


@contextlib.asynccontextmanager
async def connected(
    app: RunningApp, auth: dict[str, Any]
) -> AsyncIterator[tuple[socketio.AsyncClient, list[tuple[str, Any]]]]:
    client = socketio.AsyncClient(reconnection=False)
    events: list[tuple[str, Any]] = []
    for name in ("session_expired", "key_revoked"):
        client.on(name, lambda data, name=name: events.append((name, data)))
    await client.connect(app.base_url, auth=auth, transports=["websocket"], wait_timeout=5)
    try:
        yield client, events
    finally:
        await client.disconnect()


async def refused(app: RunningApp, auth: dict[str, Any]) -> dict[str, Any]:
    client = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    client.on("connect_error", refusals.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(app.base_url, auth=auth, transports=["websocket"], wait_timeout=5)
    (refusal,) = refusals
    result: dict[str, Any] = refusal
    return result


async def test_socketio_session_token_tier_limits_and_expiry(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    settings = settings_for(
        tmp_path,
        auth_session_ttl="4s",
        tier_free_stream_connections=1,
        tier_free_subscriptions=2,
        tier_free_min_interval_ms=1000,
    )
    async with running_app(settings) as app:
        created = await create_key(http, app, tier="free")
        token = await session(http, app, created["key"])
        async with connected(app, {"token": token}) as (client, events):
            too_fast = await client.call(
                "subscribe_pair", {"pair": "BTC/USD", "min_interval_ms": 100}
            )
            assert too_fast["ok"] is False
            assert too_fast["error"]["code"] == "INVALID_PARAMETER"
            assert "1000" in too_fast["error"]["message"]
            ok = await client.call("subscribe_pair", {"pairs": ["BTC/USD", "ETH/USD"]})
            assert ok["ok"] is True
            over = await client.call("subscribe_pair", {"pair": "LTC/USD"})
            assert over["ok"] is False
            assert over["error"]["code"] == "LIMIT_EXCEEDED"
            # the free tier holds one stream connection per key
            second = await refused(app, {"api_key": created["key"]})
            assert second["code"] == "LIMIT_EXCEEDED"

            await wait_for(lambda: not client.connected, 20, message="the token to expire")
            assert events == [
                (
                    "session_expired",
                    {
                        "code": "TOKEN_EXPIRED",
                        "message": "session token expired: refresh it and reconnect",
                    },
                )
            ]
        expired = await refused(app, {"token": token})
        assert expired["code"] == "UNAUTHORIZED"
        assert "expired" in expired["message"]
        # refreshed without the key, the session goes on (and the slot is free again)
        refreshed = await http.post(
            f"{app.base_url}/api/v1/sessions/refresh", json={"token": token}
        )
        assert refreshed.status_code == 200, refreshed.text
        async with connected(app, {"token": refreshed.json()["token"]}) as (client, _):
            assert (await client.call("subscribe_pair", {"pair": "BTC/USD"}))["ok"] is True
            usage_url = f"{app.base_url}/api/v1/admin/keys/{created['key_id']}/usage"

            async def messages_counted() -> bool:
                usage = await http.get(usage_url, headers=ADMIN_HEADERS)
                return bool(usage.json()["stream_messages"] >= 1)

            await wait_for(messages_counted, 10, message="the key's stream messages counted")


async def test_revoking_a_key_ends_its_streams_and_its_tokens(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with running_app(settings_for(tmp_path)) as app:
        created = await create_key(http, app, tier="pro")
        token = await session(http, app, created["key"])
        async with (
            connected(app, {"api_key": created["key"]}) as (by_key, key_events),
            connected(app, {"token": token}) as (by_token, token_events),
        ):
            revoked = await http.post(
                f"{app.base_url}/api/v1/admin/keys/{created['key_id']}/revoke",
                headers=ADMIN_HEADERS,
            )
            assert revoked.status_code == 200
            took = await wait_for(
                lambda: not by_key.connected and not by_token.connected, 5, message="both ended"
            )
            assert took < 1.0
            assert [name for name, _ in key_events + token_events] == ["key_revoked"] * 2
        assert (await refused(app, {"token": token}))["code"] == "UNAUTHORIZED"
        assert (await refused(app, {"api_key": created["key"]}))["code"] == "UNAUTHORIZED"


async def test_wrong_handshakes_are_throttled_then_blocked(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    settings = settings_for(
        tmp_path, auth_failure_capacity=2, auth_failure_refill_rate=0.001, auth_block_after=4
    )
    async with running_app(settings) as app:
        codes = []
        for auth in ({"api_key": "wrong"}, {"token": "forged"}, {"api_key": "x"}, {"token": "y"}):
            codes.append((await refused(app, auth))["code"])
        assert codes[:3] == ["UNAUTHORIZED", "UNAUTHORIZED", "RATE_LIMIT_EXCEEDED"]
        assert codes[3] == "RATE_LIMIT_EXCEEDED"
        blocked = await refused(app, {"api_key": ADMIN})  # this address is blocked now
        assert blocked["code"] == "RATE_LIMIT_EXCEEDED"
        assert "blocked" in blocked["message"]
        assert (
            await http.get(f"{app.base_url}/api/v1/pairs", headers=ADMIN_HEADERS)
        ).status_code == 429


async def test_sse_with_a_session_token_limits_and_expiry(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, auth_session_ttl="4s", tier_free_stream_connections=1)
    async with running_app(settings) as app:
        created = await create_key(http, app, tier="free")
        token = await session(http, app, created["key"])
        url = f"{app.base_url}/api/v1/ltp/live?pair=BTC/USD"
        assert (await http.get(f"{url}&token=forged")).status_code == 401
        events: list[str] = []
        async with http.stream("GET", f"{url}&token={token}") as response:
            assert response.status_code == 200
            # the free tier's one stream connection is taken: a second one is refused
            second = await http.get(url, headers={"X-API-Key": created["key"]})
            assert second.status_code == 429
            assert second.json()["error"]["code"] == "LIMIT_EXCEEDED"
            async for line in response.aiter_lines():  # ends when the token expires
                if line.startswith("event: "):
                    events.append(line.removeprefix("event: "))
                elif line.startswith("data: ") and events[-1] == "session_expired":
                    assert '"code":"TOKEN_EXPIRED"' in line
        assert events[0] == "ltp_update"
        assert events[-1] == "session_expired"
        usage = await http.get(
            f"{app.base_url}/api/v1/admin/keys/{created['key_id']}/usage", headers=ADMIN_HEADERS
        )
        assert usage.json()["stream_connections"] == 1
        assert usage.json()["stream_messages"] >= 1
        contract = (await http.get(f"{app.base_url}/asyncapi.json")).json()
        for channel in ("socketio", "sseLtp"):
            assert {"session_expired", "key_revoked"} <= set(
                contract["channels"][channel]["messages"]
            )
        # the slot is free again once the stream ended
        async with http.stream("GET", url, headers={"X-API-Key": created["key"]}) as again:
            assert again.status_code == 200


async def refused_within_a_second(
    http: httpx.AsyncClient,
    apps: tuple[RunningApp, ...],
    key_id: str,
    headers: dict[str, str],
    revoked_at: float,
) -> None:
    """Every instance of ``apps`` refuses the key less than a second after ``revoked_at``.

    The bound is read from each instance's key cache, the state every request is checked
    against (polling it over HTTP would load the very event loop the instances share with
    the test); then each instance answers a request with the key: 401."""

    def keys_of(app: RunningApp) -> Any:
        assert app.container.access is not None
        return app.container.access.keys

    async def refused_by(app: RunningApp) -> float:
        keys = keys_of(app)
        await wait_for(lambda: keys.principal(key_id) is None, 5)
        return time.monotonic() - revoked_at

    took = await asyncio.gather(*(refused_by(app) for app in apps))
    assert all(seconds < 1.0 for seconds in took), f"refused after {took} s"
    for app in apps:
        assert await _status(http, app, headers, 401)


@pytest.mark.services
async def test_two_instances_share_keys_revocations_limits_and_blocks(
    http: httpx.AsyncClient, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    settings = settings_for(
        tmp_path,
        cache_backend="redis",
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        tier_free_capacity=4,
        tier_free_refill_rate=0.001,
        auth_failure_capacity=100,
        auth_block_after=3,
    )
    async with running_app(settings) as one, running_app(settings) as two:
        created = await create_key(http, one, tier="free")
        headers = {"X-API-Key": created["key"]}

        await wait_for(
            lambda: _status(http, two, headers, 200), 5, message="the new key known on two"
        )
        # four tokens in the shared bucket: one spent above, three more across both instances
        statuses = [
            (await http.get(f"{app.base_url}/api/v1/pairs", headers=headers)).status_code
            for app in (one, two, one, two)
        ]
        assert statuses == [200, 200, 200, 429]

        revoked = await http.post(
            f"{one.base_url}/api/v1/admin/keys/{created['key_id']}/revoke", headers=ADMIN_HEADERS
        )
        assert revoked.status_code == 200

        took = await wait_for(
            lambda: _status(http, two, headers, 401), 5, message="the revocation on two"
        )
        assert took < 1.0

        # the CLI revokes through Redis too: both instances refuse the key within a second
        other = await create_key(http, one, tier="pro")
        other_headers = {"X-API-Key": other["key"]}

        async def known_everywhere() -> bool:
            return all([await _status(http, app, other_headers, 200) for app in (one, two)])

        await wait_for(known_everywhere, 5, message="the second key known on both")
        cli_env = {
            "DATABASE_URL": settings.database_url,
            "AUTH_KEY_PEPPER": PEPPER,
            "CACHE_BACKEND": "redis",
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": redis_prefix,
        }
        client = from_url(redis_url)
        revision = RedisKeyRevision(client, key_prefix=redis_prefix)
        try:
            before = await revision.current()
            result = await asyncio.to_thread(
                CliRunner().invoke, cli, ["keys", "revoke", other["key_id"]], env=cli_env
            )
            assert result.exit_code == 0, result.output
            assert await revision.current() == before + 1  # the path that needs no message
        finally:
            await client.aclose()

        await refused_within_a_second(
            http, (one, two), other["key_id"], other_headers, time.monotonic()
        )

        attacker = {"X-Forwarded-For": "203.0.113.5"}
        wrong = {**attacker, "X-API-Key": "tp_live_0123456789ab_" + "x" * 43}
        for _ in range(3):
            await http.get(f"{one.base_url}/api/v1/pairs", headers=wrong)
        from_attacker = {**attacker, **ADMIN_HEADERS}

        async def blocked_on_two() -> bool:
            response = await http.get(f"{two.base_url}/api/v1/pairs", headers=from_attacker)
            return response.status_code == 429

        await wait_for(blocked_on_two, 5, message="the block to reach instance two")
        listed = await http.get(f"{two.base_url}/api/v1/admin/blocks", headers=ADMIN_HEADERS)
        assert [b["ip"] for b in listed.json()["blocks"]] == ["203.0.113.5"]
        lifted = await http.delete(
            f"{one.base_url}/api/v1/admin/blocks/203.0.113.5", headers=ADMIN_HEADERS
        )
        assert lifted.status_code == 204

        async def lifted_on_two() -> bool:
            response = await http.get(f"{two.base_url}/api/v1/pairs", headers=from_attacker)
            return response.status_code == 200

        await wait_for(lifted_on_two, 5, message="the lifted block to reach instance two")


@pytest.mark.services
async def test_a_revocation_whose_bus_message_never_comes_lands_within_a_second(
    http: httpx.AsyncClient, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """The change is written with no bus at all (a publisher whose PUBLISH was lost): the
    keys' shared revision alone carries it to both instances and ends the key's streams."""
    settings = settings_for(
        tmp_path, cache_backend="redis", redis_url=redis_url, redis_key_prefix=redis_prefix
    )
    async with running_app(settings) as one, running_app(settings) as two:
        created = await create_key(http, one, tier="pro")
        headers = {"X-API-Key": created["key"]}
        await wait_for(lambda: _status(http, two, headers, 200), 5, message="key known on two")
        store = SqlKeyStore.from_url(settings.database_url)
        client = from_url(redis_url)
        try:
            writer = KeyService(
                store,
                pepper=PEPPER,
                bus=None,
                revision=RedisKeyRevision(client, key_prefix=redis_prefix),
            )
            async with connected(two, {"api_key": created["key"]}) as (stream, events):
                await writer.revoke(created["key_id"])
                revoked_at = time.monotonic()
                ended, _ = await asyncio.gather(
                    wait_for(lambda: not stream.connected, 5, message="the stream to end"),
                    refused_within_a_second(
                        http, (one, two), created["key_id"], headers, revoked_at
                    ),
                )
                assert ended < 1.0
                assert [name for name, _ in events] == ["key_revoked"]
        finally:
            await store.close()
            await client.aclose()


@pytest.mark.services
async def test_key_usage_is_summed_over_two_instances(
    http: httpx.AsyncClient, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    settings = settings_for(
        tmp_path,
        cache_backend="redis",
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        tier_free_capacity=4,
        tier_free_refill_rate=0.001,
    )
    async with running_app(settings) as one, running_app(settings) as two:
        created = await create_key(http, one, tier="free")
        key_id, headers = created["key_id"], {"X-API-Key": created["key"]}
        keys = two.container.access.keys if two.container.access is not None else None
        assert keys is not None
        await wait_for(lambda: keys.principal(key_id) is not None, 5, message="key on two")
        statuses = [
            (await http.get(f"{app.base_url}/api/v1/pairs", headers=headers)).status_code
            for app in (one, two, two, one, two)
        ]
        assert statuses == [200, 200, 200, 200, 429]  # one shared bucket of four
        expected = {"requests": 4, "rate_limited": 1, "scope": "all_instances"}

        async def summed_on(app: RunningApp) -> bool:
            answer = await http.get(
                f"{app.base_url}/api/v1/admin/keys/{key_id}/usage", headers=ADMIN_HEADERS
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            return all(body[name] == value for name, value in expected.items())

        async def summed_on_one() -> bool:
            return await summed_on(one)

        async def summed_on_two() -> bool:
            return await summed_on(two)

        # each instance writes its counts within a second
        await wait_for(summed_on_one, 5, message="usage summed on one")
        await wait_for(summed_on_two, 5, message="usage summed on two")
