"""One contract for every EventBus: the in-process one and Redis pub/sub (real server).

The ``bus`` fixture is parametrised over both, so each contract test runs once per bus; the
Redis run uses the test's own channel prefix. Non-delivery is asserted without sleeping: a
sentinel published *after* the event must arrive, and since a bus keeps publish order on
one connection, the event would have arrived first.

RedisBus alone: recovery after its pub/sub connection is killed on the server, and the
self-heartbeat health when Redis goes away (a TCP proxy the test cuts) and comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.fakes._loopback import free_port
from tests.helpers import wait_for
from tokenpulse.bus.base import EventBus
from tokenpulse.bus.memory import InProcessBus
from tokenpulse.bus.redis import RedisBus
from tokenpulse.observability.metrics import Metrics
from tokenpulse.store.cache.redis import from_url

DEADLINE = 5.0


class Recorder:
    """A handler that records (topic, payload) pairs."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []

    def __call__(self, topic: str, payload: bytes) -> None:
        self.events.append((topic, payload))

    def payloads(self, topic: str | None = None) -> list[bytes]:
        return [p for t, p in self.events if topic is None or t == topic]


class Errors:
    def __init__(self) -> None:
        self.seen: list[tuple[str, BaseException]] = []

    def __call__(self, topic: str, exc: BaseException) -> None:
        self.seen.append((topic, exc))


@pytest.fixture
def errors() -> Errors:
    return Errors()


@pytest.fixture(params=["inprocess", "redis"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    """(bus, Redis URL, prefix); only the Redis run needs (and may skip for) Redis."""
    if request.param == "inprocess":
        return "inprocess", "", ""
    # A sync fixture, because async fixtures cannot request fixtures dynamically.
    return "redis", request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")


@pytest.fixture
async def bus(
    backend: tuple[str, str, str], errors: Errors, metrics: Metrics
) -> AsyncIterator[EventBus]:
    """Each bus in turn; the Redis one on the real server under this test's prefix."""
    name, redis_url, prefix = backend
    if name == "inprocess":
        memory = InProcessBus(on_error=errors)
        yield memory
        await memory.close()
        return
    client = from_url(redis_url)
    redis_bus = RedisBus(
        client, prefix=prefix, metrics=metrics, heartbeat_interval=0.05, on_error=errors
    )
    await redis_bus.start()
    try:
        await wait_for(lambda: redis_bus.healthy, DEADLINE, message="the bus to hear itself")
        yield redis_bus
    finally:
        await redis_bus.close()
        await client.aclose()


async def delivered(recorder: Recorder, count: int, topic: str | None = None) -> None:
    await wait_for(
        lambda: len(recorder.payloads(topic)) >= count,
        DEADLINE,
        message=f"{count} events delivered",
    )


async def test_delivers_to_every_subscriber(bus: EventBus) -> None:
    first, second = Recorder(), Recorder()
    bus.subscribe("ltp", first)
    bus.subscribe("ltp", second)
    await bus.publish("ltp", b'{"pair":"BTC/USD"}')
    await delivered(first, 1)
    await delivered(second, 1)
    assert first.events == [("ltp", b'{"pair":"BTC/USD"}')]
    assert second.events == first.events


async def test_topics_are_isolated(bus: EventBus) -> None:
    ltp, tokens = Recorder(), Recorder()
    bus.subscribe("ltp", ltp)
    bus.subscribe("tokens", tokens)
    await bus.publish("tokens", b"t1")
    await bus.publish("ltp", b"l1")
    await delivered(ltp, 1)
    await delivered(tokens, 1)
    assert ltp.payloads() == [b"l1"]
    assert tokens.payloads() == [b"t1"]


async def test_unsubscribe_stops_delivery(bus: EventBus) -> None:
    gone, sentinel = Recorder(), Recorder()
    unsubscribe = bus.subscribe("ltp", gone)
    bus.subscribe("ltp", sentinel)
    await bus.publish("ltp", b"before")
    await delivered(gone, 1)
    unsubscribe()
    unsubscribe()  # idempotent
    await bus.publish("ltp", b"after")
    await delivered(sentinel, 2)
    assert gone.payloads() == [b"before"]
    assert sentinel.payloads() == [b"before", b"after"]


async def test_a_failing_handler_does_not_affect_the_others(bus: EventBus, errors: Errors) -> None:
    def explode(topic: str, payload: bytes) -> None:
        raise RuntimeError("handler bug")

    before, after = Recorder(), Recorder()
    bus.subscribe("ltp", before)
    bus.subscribe("ltp", explode)
    bus.subscribe("ltp", after)
    for n in range(3):
        await bus.publish("ltp", b"%d" % n)
    await delivered(after, 3)
    assert before.payloads() == after.payloads() == [b"0", b"1", b"2"]
    assert len(errors.seen) == 3
    assert all(topic == "ltp" and isinstance(exc, RuntimeError) for topic, exc in errors.seen)


async def test_order_is_kept_per_topic(bus: EventBus) -> None:
    recorder = Recorder()
    bus.subscribe("ltp", recorder)
    bus.subscribe("tokens", recorder)
    expected_ltp = [b"ltp-%04d" % n for n in range(300)]
    expected_tokens = [b"tok-%04d" % n for n in range(300)]
    for ltp, token in zip(expected_ltp, expected_tokens, strict=True):
        await bus.publish("ltp", ltp)
        await bus.publish("tokens", token)
    await delivered(recorder, 600)
    assert recorder.payloads("ltp") == expected_ltp
    assert recorder.payloads("tokens") == expected_tokens


async def test_payload_bytes_are_exact(bus: EventBus) -> None:
    recorder = Recorder()
    bus.subscribe("ltp", recorder)
    payloads = [
        b"",
        b"\x00\xff\xfe binary \x80",
        "price 69 767,6 € ✓".encode(),
        bytes(range(256)) * 256,  # 64 KiB
    ]
    for payload in payloads:
        await bus.publish("ltp", payload)
    await delivered(recorder, len(payloads))
    assert recorder.payloads() == payloads


# ----------------------------------------------------------------------------- Redis only


async def _pubsub_client_ids(admin: aioredis.Redis, name: str) -> list[str]:
    listing = await admin.execute_command("CLIENT", "LIST", "TYPE", "pubsub")
    text = listing.decode() if isinstance(listing, bytes) else str(listing)
    ids = []
    for line in text.splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if fields.get("name") == name:
            ids.append(fields["id"])
    return ids


START_ROUNDS = 50


async def test_redis_bus_hears_a_publish_made_right_after_start(
    redis_url: str, redis_prefix: str
) -> None:
    """The scale-out race: start() returns only once Redis confirmed the subscription, so
    what this or another instance publishes right afterwards is never lost. Many rounds,
    each a new bus and a new pub/sub connection."""
    client = from_url(redis_url)
    other_instance = RedisBus(client, prefix=redis_prefix)  # publishes only: never started
    try:
        for round_ in range(START_ROUNDS):
            recorder = Recorder()
            bus = RedisBus(client, prefix=redis_prefix)
            bus.subscribe("ltp", recorder)
            await bus.start()
            try:
                mine, theirs = b"own-%d" % round_, b"other-%d" % round_
                await bus.publish("ltp", mine)
                await other_instance.publish("ltp", theirs)
                await delivered(recorder, 2)
                assert recorder.payloads() == [mine, theirs], f"round {round_}"
            finally:
                await bus.close()
    finally:
        await other_instance.close()
        await client.aclose()


async def test_redis_bus_start_returns_when_redis_is_unreachable(metrics: Metrics) -> None:
    """No Redis at start: start() returns after the first failed attempt, unhealthy, and the
    listener keeps trying (the service starts without fan-out and says so)."""
    client = from_url(f"redis://127.0.0.1:{free_port()}/0", retry=None)
    bus = RedisBus(client, prefix="tokenpulse-test:", metrics=metrics, backoff_max=0.05)
    try:
        await asyncio.wait_for(bus.start(), DEADLINE)
        assert not bus.healthy
    finally:
        await bus.close()
        await client.aclose()


async def test_redis_bus_recovers_after_its_connection_is_killed(
    redis_url: str, redis_prefix: str, metrics: Metrics
) -> None:
    # A client name of its own, so the test kills only this bus's pub/sub connection and
    # not those of other tests sharing the server.
    name = f"bus-test-{uuid.uuid4().hex[:12]}"
    client = from_url(redis_url, client_name=name)
    admin = aioredis.Redis.from_url(redis_url)
    bus = RedisBus(client, prefix=redis_prefix, metrics=metrics, heartbeat_interval=0.05)
    recorder = Recorder()
    bus.subscribe("ltp", recorder)
    await bus.start()
    try:
        await wait_for(lambda: bus.healthy, DEADLINE, message="the bus to be healthy")
        ids = await _pubsub_client_ids(admin, name)
        assert len(ids) == 1
        await admin.execute_command("CLIENT", "KILL", "ID", ids[0])

        other = RedisBus(client, prefix=redis_prefix)  # another instance, publishing only

        async def published_and_delivered() -> bool:
            await other.publish("ltp", b"after-kill")
            return b"after-kill" in recorder.payloads()

        try:
            took = await wait_for(published_and_delivered, DEADLINE, message="delivery after kill")
        finally:
            await other.close()
        assert took < DEADLINE
        new_ids = await _pubsub_client_ids(admin, name)
        assert len(new_ids) == 1
        assert new_ids != ids  # a new connection, subscribed again
        await wait_for(lambda: bus.healthy, DEADLINE, message="healthy again")
    finally:
        await bus.close()
        await client.aclose()
        await admin.aclose()


class TcpProxy:
    """A loopback TCP proxy to Redis that the test can cut (Redis "goes away") and restore."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        # Not port 0: the proxy comes back on the same port, which must stay ours meanwhile.
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop listening and abort every proxied connection."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            sink.transport.abort()
            self._writers.discard(sink)


@pytest.fixture
async def redis_proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    from urllib.parse import urlsplit

    parts = urlsplit(redis_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    await proxy.start()
    yield proxy
    with contextlib.suppress(AssertionError):
        await proxy.cut()


def _sample(metrics: Metrics, name: str, labels: dict[str, Any] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


async def test_redis_bus_health_follows_its_heartbeat_and_recovers(
    redis_url: str, redis_prefix: str, redis_proxy: TcpProxy, metrics: Metrics
) -> None:
    db = redis_url.rsplit("/", 1)[-1] if redis_url.count("/") > 2 else "0"
    client = from_url(f"redis://127.0.0.1:{redis_proxy.port}/{db}", retry=None)
    bus = RedisBus(
        client,
        prefix=redis_prefix,
        metrics=metrics,
        heartbeat_interval=0.05,
        heartbeat_timeout=0.3,
        publish_timeout=0.2,
        backoff_max=0.1,
    )
    recorder = Recorder()
    bus.subscribe("ltp", recorder)
    assert not bus.healthy  # not started: it has heard nothing
    await bus.start()
    try:
        await wait_for(lambda: bus.healthy, DEADLINE, message="healthy once started")
        assert _sample(metrics, "tokenpulse_bus_healthy") == 1.0

        await redis_proxy.cut()  # Redis is gone for this instance
        await wait_for(lambda: not bus.healthy, DEADLINE, message="unhealthy without Redis")
        assert _sample(metrics, "tokenpulse_bus_healthy") == 0.0
        await bus.publish("ltp", b"local")  # does not raise; delivered here, counted as failed
        assert b"local" in recorder.payloads()  # in-process delivery never needs Redis
        await wait_for(
            lambda: _sample(metrics, "tokenpulse_bus_publish_failures_total", {"topic": "ltp"}),
            DEADLINE,
            message="the failed publish to be counted",
        )
        await wait_for(
            lambda: _sample(metrics, "tokenpulse_bus_heartbeat_age_seconds") > 0.3,
            DEADLINE,
            message="the heartbeat age metric to grow past the timeout",
        )
        assert not bus.healthy

        await redis_proxy.start()  # Redis returns on the same address
        await wait_for(lambda: bus.healthy, DEADLINE, message="healthy after Redis returns")

        async def delivered_again() -> bool:
            await bus.publish("ltp", b"back")
            return b"back" in recorder.payloads()

        await wait_for(delivered_again, DEADLINE, message="delivery after Redis returns")
        assert recorder.payloads().count(b"local") == 1  # its own echo is not delivered twice
        assert bus.reconnects >= 1
        assert _sample(metrics, "tokenpulse_bus_reconnects_total") >= 1
    finally:
        await bus.close()
        await client.aclose()


async def test_redis_bus_carries_events_to_other_instances_once_each(
    redis_url: str, redis_prefix: str
) -> None:
    """Local delivery is in-process; the channel carries the event to the other instance,
    and neither sees it twice (the echo of its own publish is dropped)."""
    client = from_url(redis_url)
    here, there = RedisBus(client, prefix=redis_prefix), RedisBus(client, prefix=redis_prefix)
    mine, theirs = Recorder(), Recorder()
    here.subscribe("ltp", mine)
    there.subscribe("ltp", theirs)
    await here.start()
    await there.start()
    try:
        await here.publish("ltp", b"one")
        assert mine.payloads() == [b"one"]  # at once, before any Redis round-trip
        await there.publish("ltp", b"sentinel")
        await delivered(mine, 2)
        await delivered(theirs, 2)
        assert mine.payloads() == [b"one", b"sentinel"]
        assert theirs.payloads() == [b"one", b"sentinel"] or theirs.payloads() == [
            b"sentinel",
            b"one",
        ]
    finally:
        await here.close()
        await there.close()
        await client.aclose()
