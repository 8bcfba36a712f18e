"""The Redis pub/sub event bus: the :class:`~tokenpulse.bus.base.EventBus` for scale-out (§10).

An instance delivers what it publishes to its own handlers in-process, at once, and the
Redis channel only carries it to the *other* instances (SPEC §10): a Redis outage never
silences a single instance's streams. ``publish`` never waits for Redis: the event goes into
a bounded outbox that one sender task writes to ``PUBLISH <prefix><topic>`` in order (when
the outbox overflows, the oldest events are dropped and counted as publish failures). Each
event on the channel carries the id of the instance that sent it, so an instance ignores
its own echo. Every instance listens with one pattern subscription (``PSUBSCRIBE
<prefix>*``) on a dedicated connection; handlers run in the listener task, in publish order
per topic; a failing handler is counted and isolated.

Handlers registered with :meth:`RedisBus.watch` hear every change of health (a follower's
streams flag their keys stale while the bus is down and resync when it returns).

Fan-out failure is loud: each bus publishes a heartbeat to its own channel every
``heartbeat_interval`` seconds and :attr:`RedisBus.healthy` turns false (and the
``tokenpulse_bus_healthy`` gauge 0) when it has not heard its own heartbeat for
``heartbeat_timeout`` seconds. The listener reconnects with capped exponential backoff
when the connection drops and re-subscribes when Redis returns; a listener that stops
hearing its heartbeat although the socket looks open is restarted as well (a half-open
connection). Pub/sub is at-most-once: what is published while the listener is down is lost,
which is why stream clients resubscribe and get fresh snapshots.

:meth:`RedisBus.start` returns once Redis has acknowledged the subscription, so a publish
after it (from this instance or any other) reaches this bus's handlers: an instance that
reports itself started does not miss the first update. When Redis cannot be reached it
returns after the first failed attempt (bounded by ``start_timeout``) and keeps retrying in
the background, so the service starts without fan-out and says so in its health.

A Redis failure never reaches ``publish``: the sender counts it
(``tokenpulse_bus_publish_failures_total{topic}``) and logs an outage's first one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from redis.exceptions import RedisError

from tokenpulse._redis import glob_escape
from tokenpulse.bus.base import Handler, StateHandler, Subscribers

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from tokenpulse.observability.metrics import Metrics

log = structlog.get_logger(__name__)
_jitter = random.Random()  # reconnect jitter; the global ``random`` state is not ours to move

HEARTBEAT_TOPIC = "_heartbeat"
DEFAULT_HEARTBEAT_INTERVAL = 2.0
DEFAULT_PUBLISH_TIMEOUT = 1.0
DEFAULT_START_TIMEOUT = 5.0  # the longest start() waits for Redis to confirm the subscription
LISTEN_POLL_SECONDS = 1.0  # a read wakes up at least this often to check health and shutdown
BACKOFF_INITIAL = 0.05
BACKOFF_MAX = 2.0
DEFAULT_OUTBOX = 10_000  # events waiting for Redis; beyond it the oldest are dropped
SEND_BATCH = 256  # events per pipelined round-trip
#: Separates the sending instance's id from the event on the channel (never in an id).
ORIGIN_SEPARATOR = b"\x1f"


class RedisBus:
    """Topic fan-out through Redis pub/sub with self-heartbeat health and automatic recovery.

    ``client`` is a ``redis.asyncio.Redis`` (see :func:`tokenpulse.store.cache.redis.from_url`)
    owned by the caller: :meth:`close` stops the bus but does not close the client.
    Call :meth:`start` once inside the event loop before relying on delivery.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        metrics: Metrics | None = None,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_timeout: float | None = None,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_max: float = BACKOFF_MAX,
        on_error: Callable[[str, BaseException], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        outbox: int = DEFAULT_OUTBOX,
    ) -> None:
        self._client = client
        self.prefix = prefix
        self.metrics = metrics
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = (
            heartbeat_timeout if heartbeat_timeout is not None else 3 * heartbeat_interval
        )
        self.publish_timeout = publish_timeout
        self.start_timeout = start_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._on_error = on_error
        self._clock = clock
        self._subscribers = Subscribers()
        self._instance = f"{os.getpid()}-{os.urandom(6).hex()}".encode()
        self._beats = itertools.count(1)
        self._listener: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._started_at = clock()
        self._last_heard: float | None = None
        self._listening = False
        # Set when the first subscription is confirmed, or the first attempt failed.
        self._first_attempt: asyncio.Event | None = None
        self._publish_failing = False
        self._closed = False
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._outbox_max = outbox
        self._outbox_ready = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._watchers: list[StateHandler] = []
        self._was_healthy = False
        self.reconnects = 0  # listener (re)connections after the first one
        if metrics is not None:
            metrics.bus_healthy.set_function(lambda: 1.0 if self.healthy else 0.0)
            metrics.bus_heartbeat_age.set_function(self.heartbeat_age)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the listener and the heartbeat; return once Redis confirmed the subscription.

        Idempotent. If Redis cannot be reached, returns after the first failed attempt (at
        most ``start_timeout`` seconds) with the listener retrying in the background.
        """
        if self._listener is None:
            self._started_at = self._clock()
            self._first_attempt = asyncio.Event()
            self._listener = asyncio.create_task(self._listen_forever(), name="redis-bus-listener")
            self._heartbeat = asyncio.create_task(self._beat_forever(), name="redis-bus-heartbeat")
        if self._first_attempt is not None and not self._first_attempt.is_set():
            try:
                await asyncio.wait_for(self._first_attempt.wait(), self.start_timeout)
            except TimeoutError:
                log.warning("bus subscription not confirmed at start; still trying")

    async def flush(self) -> bool:
        """Publish what the outbox still holds, now (bounded by ``publish_timeout`` per batch);
        False when Redis did not take it. A short-lived publisher (``tokenpulse keys``) calls it,
        through :meth:`close`, so its announcement is not lost when the process ends."""
        while self._outbox and not self._closed:
            batch = [self._outbox.popleft() for _ in range(min(SEND_BATCH, len(self._outbox)))]
            if not await self._send(batch):
                return False
        return True

    async def close(self) -> None:
        """Publish what is queued (once, bounded), then stop listening, beating and sending;
        forget every handler. The client stays open."""
        if self._outbox and not self._closed:
            await self.flush()
        self._closed = True
        for task in (self._heartbeat, self._listener, self._sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._heartbeat = self._listener = self._sender = None
        self._subscribers.clear()
        self._watchers.clear()
        self._outbox.clear()
        self._listening = False

    # ------------------------------------------------------------------ the port

    async def publish(self, topic: str, payload: bytes) -> None:
        """Deliver ``payload`` here now, queue it for the others; never raises or waits."""
        await self.publish_many(topic, (payload,))

    async def publish_many(self, topic: str, payloads: Sequence[bytes]) -> None:
        """:meth:`publish` each of ``payloads`` in order, then yield to the loop once."""
        for payload in payloads:
            self._subscribers.deliver(topic, payload, self._handler_failed)
            if self._closed:
                continue
            if len(self._outbox) >= self._outbox_max:
                dropped, _ = self._outbox.popleft()
                self._count_failure(dropped, None)
            self._outbox.append((topic, payload))
        if self._outbox and not self._closed:
            self._outbox_ready.set()
            if self._sender is None:
                self._sender = asyncio.create_task(self._send_forever(), name="redis-bus-sender")
        await asyncio.sleep(0)

    async def _send_forever(self) -> None:
        """Write the outbox to Redis in order, in pipelined batches; a failed batch is
        counted and dropped (pub/sub is at-most-once: the others resync when it returns)."""
        backoff = self.backoff_initial
        while not self._closed:
            if not self._outbox:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
                continue
            batch = [self._outbox.popleft() for _ in range(min(SEND_BATCH, len(self._outbox)))]
            if await self._send(batch):
                backoff = self.backoff_initial
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max)

    async def _send(self, batch: list[tuple[str, bytes]]) -> bool:
        origin = self._instance + ORIGIN_SEPARATOR
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for topic, payload in batch:
                    pipe.publish(self.prefix + topic, origin + payload)
                await asyncio.wait_for(pipe.execute(), self.publish_timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            for topic, _ in batch:
                self._count_failure(topic, exc)
            return False
        if self._publish_failing:
            log.info("bus publishes recovered")
            self._publish_failing = False
        if self.metrics is not None:
            for topic, _ in batch:
                self.metrics.bus_published.labels(topic).inc()
        return True

    def _count_failure(self, topic: str, exc: BaseException | None) -> None:
        if self.metrics is not None:
            self.metrics.bus_publish_failures.labels(topic).inc()
        if not self._publish_failing:
            error = "outbox full" if exc is None else type(exc).__name__
            log.warning("bus publish failed", topic=topic, error=error)
        self._publish_failing = True

    async def _publish_heartbeat(self) -> None:
        """``PUBLISH`` one heartbeat straight away (it measures Redis, not the outbox)."""
        beat = self._instance + b":%d" % next(self._beats)
        try:
            await asyncio.wait_for(
                self._client.publish(self.prefix + HEARTBEAT_TOPIC, beat), self.publish_timeout
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._count_failure(HEARTBEAT_TOPIC, exc)

    def watch(self, handler: StateHandler) -> Callable[[], None]:
        """Call ``handler(healthy)`` whenever the bus turns healthy or unhealthy."""
        self._watchers.append(handler)

        def unwatch() -> None:
            if handler in self._watchers:
                self._watchers.remove(handler)

        return unwatch

    def _observe_health(self) -> None:
        """Tell the watchers when :attr:`healthy` changed since the last look."""
        healthy = self.healthy
        if healthy == self._was_healthy:
            return
        self._was_healthy = healthy
        if healthy:
            log.info("bus healthy: fan-out between instances works")
        else:
            log.warning("bus unhealthy: fan-out between instances is down")
        for handler in list(self._watchers):
            try:
                handler(healthy)
            except Exception:  # a watcher's bug must not stop the heartbeat
                log.exception("bus state watcher failed")

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler(topic, payload)`` for each event on ``topic``; returns unsubscribe."""
        return self._subscribers.add(topic, handler)

    def subscriber_count(self, topic: str) -> int:
        """Local handlers for ``topic``."""
        return self._subscribers.count(topic)

    # ------------------------------------------------------------------ health

    @property
    def healthy(self) -> bool:
        """True while this bus hears its own heartbeat through Redis."""
        if not self._listening or self._last_heard is None:
            return False
        return self._clock() - self._last_heard <= self.heartbeat_timeout

    def heartbeat_age(self) -> float:
        """Seconds since this bus last heard its own heartbeat (since start if never)."""
        since = self._last_heard if self._last_heard is not None else self._started_at
        return max(0.0, self._clock() - since)

    # ------------------------------------------------------------------ internals

    async def _beat_forever(self) -> None:
        # Not ``while True``: on Python 3.11 a cancellation that races with the end of the
        # publish's wait_for can be swallowed, and close() must still see this task end.
        while not self._closed:
            await self._publish_heartbeat()
            self._observe_health()
            await asyncio.sleep(self.heartbeat_interval)

    async def _listen_forever(self) -> None:
        backoff = self.backoff_initial
        first = True
        while not self._closed:
            try:
                await self._listen_once(first)
                backoff = self.backoff_initial  # a clean restart (deafness) retries at once
            except (RedisError, OSError, TimeoutError) as exc:
                if self._listening or first:
                    log.warning("bus listener lost Redis; reconnecting", error=type(exc).__name__)
                self._listening = False
                self._observe_health()
                if self._first_attempt is not None:
                    self._first_attempt.set()  # start() returns: the bus starts unhealthy
                await asyncio.sleep(backoff * (0.5 + _jitter.random()))
                backoff = min(backoff * 2, self.backoff_max)
            first = False

    async def _listen_once(self, first: bool) -> None:
        pubsub = self._client.pubsub()
        try:
            await pubsub.psubscribe(glob_escape(self.prefix) + "*")
            await self._subscription_confirmed(pubsub)
            if not first:
                self.reconnects += 1
                if self.metrics is not None:
                    self.metrics.bus_reconnects.inc()
            subscribed_at = self._clock()
            self._listening = True
            if self._first_attempt is not None:
                self._first_attempt.set()
            while not self._closed:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=LISTEN_POLL_SECONDS
                )
                if message is not None and message.get("type") == "pmessage":
                    self._dispatch(message)
                self._observe_health()
                if self._deaf(subscribed_at):
                    log.warning("bus stopped hearing its own heartbeat; resubscribing")
                    if self.metrics is not None:
                        self.metrics.bus_heartbeat_missed.inc()
                    return
        finally:
            self._listening = False
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _subscription_confirmed(self, pubsub: Any) -> None:
        """Read until Redis acknowledges the ``PSUBSCRIBE``: from then on it delivers every
        publish on the pattern to this connection. Times out like a lost connection."""
        async with asyncio.timeout(self.start_timeout):
            while True:
                message = await pubsub.get_message(timeout=LISTEN_POLL_SECONDS)
                if message is not None and message.get("type") == "psubscribe":
                    return

    def _deaf(self, subscribed_at: float) -> bool:
        """No heartbeat heard for the timeout since this subscription began."""
        since = max(subscribed_at, self._last_heard or 0.0)
        return self._clock() - since > self.heartbeat_timeout

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel: bytes = message["channel"]
        payload: bytes = message["data"]
        topic = channel[len(self.prefix) :].decode("utf-8", "replace")
        if topic == HEARTBEAT_TOPIC:
            if payload.partition(b":")[0] == self._instance:
                self._last_heard = self._clock()
                self._observe_health()
            return
        origin, separator, payload = payload.partition(ORIGIN_SEPARATOR)
        if not separator or origin == self._instance:
            return  # our own echo (delivered in-process already), or not one of ours
        if self.metrics is not None:
            self.metrics.bus_delivered.labels(topic).inc()
        self._subscribers.deliver(topic, payload, self._handler_failed)

    def _handler_failed(self, topic: str, exc: BaseException) -> None:
        if self.metrics is not None:
            self.metrics.bus_handler_errors.labels(topic).inc()
        if self._on_error is not None:
            self._on_error(topic, exc)
        else:
            log.error("bus handler failed", topic=topic, exc_info=exc)


__all__ = ["HEARTBEAT_TOPIC", "RedisBus"]
