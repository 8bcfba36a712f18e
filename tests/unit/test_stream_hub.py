"""The stream hub without any transport: seq, deltas, conflation, adaptive interval, limits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.helpers import FakeClock
from tokenpulse.api.streams.hub import LimitExceeded, StreamHub, StreamLimits
from tokenpulse.api.streams.subscriber import Message, Subscriber
from tokenpulse.bus.memory import InProcessBus
from tokenpulse.bus.topics import (
    LTP_TOPIC,
    TOKENS_TOPIC,
    make_ltp_publisher,
    make_token_publisher,
    pair_key,
    token_key,
)
from tokenpulse.domain.pairs import Pair
from tokenpulse.domain.ticker import Ticker
from tokenpulse.domain.time import parse_iso
from tokenpulse.domain.tokens import TokenIdentity, TokenQuote, TokenSnapshot
from tokenpulse.observability.metrics import Metrics
from tokenpulse.wire.ltp import LtpView
from tokenpulse.wire.tokens import TokenView

BTC = pair_key("BTC/USD")
ETH = pair_key("ETH/USD")


def ltp(amount: float, **extra: Any) -> dict[str, Any]:
    return {"pair": "BTC/USD", "amount": amount, "source": "kraken_ws", **extra}


RECEIVED = parse_iso("2026-02-14T10:21:07.151Z")


def ticker(last: Decimal) -> Ticker:
    return Ticker(Pair("BTC", "USD"), last, "kraken_ws", RECEIVED)


def bitcoin(price: Decimal) -> TokenSnapshot:
    quote = TokenQuote("coingecko", "BTC", "Bitcoin", RECEIVED, price_usd=price)
    return TokenSnapshot(TokenIdentity("bitcoin", "BTC", "Bitcoin"), quote, None, None)


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def hub(clock: FakeClock, metrics: Metrics) -> StreamHub:
    return StreamHub(limits=StreamLimits(min_interval_ms=0), metrics=metrics, clock=clock)


def sub(hub: StreamHub, transport: str = "socketio") -> tuple[Subscriber, Wakes]:
    wakes = Wakes()
    return hub.open(transport, wakes), wakes


async def test_first_message_is_a_snapshot_then_deltas_with_only_changed_fields(
    hub: StreamHub, clock: FakeClock
) -> None:
    hub.publish_pair("BTC/USD", ltp(100.0, bid=99.5))
    s, wakes = sub(hub)
    s.subscribe([BTC], interval_ms=0)
    assert wakes.count >= 1
    (snapshot,) = s.take()
    assert (snapshot.event, snapshot.kind, snapshot.id, snapshot.seq) == (
        "ltp_update",
        "snapshot",
        "BTC/USD",
        1,
    )
    assert snapshot.body == ltp(100.0, bid=99.5)
    hub.publish_pair("BTC/USD", ltp(101.0, bid=99.5))
    (delta,) = s.take()
    assert (delta.kind, delta.seq, delta.base_seq, delta.body) == ("delta", 2, 1, {"amount": 101.0})
    payload = delta.payload(1234)
    assert payload == {
        "type": "delta",
        "id": "BTC/USD",
        "seq": 2,
        "base_seq": 1,
        "ts": 1234,
        "changes": {"amount": 101.0},
    }


async def test_nothing_changed_nothing_sent_and_seq_unchanged(hub: StreamHub) -> None:
    assert hub.publish_pair("BTC/USD", ltp(100.0)) is True
    s, _ = sub(hub)
    s.subscribe([BTC], interval_ms=0)
    s.take()
    assert hub.publish_pair("BTC/USD", ltp(100.0)) is False
    assert hub.publish_pair("BTC/USD", {**ltp(100.0), "age_ms": 5}) is False  # volatile field
    assert s.take() == []
    stream = hub.stream(BTC)
    assert stream is not None
    assert stream.seq == 1


async def test_removed_fields_are_sent_as_null(hub: StreamHub) -> None:
    hub.publish_pair("BTC/USD", ltp(100.0, bid=1.0))
    s, _ = sub(hub)
    s.subscribe([BTC], interval_ms=0)
    s.take()
    hub.publish_pair("BTC/USD", ltp(100.0))
    (delta,) = s.take()
    assert delta.body == {"bid": None}


async def test_seq_is_monotonic_per_key(hub: StreamHub) -> None:
    for n in range(5):
        hub.publish_pair("BTC/USD", ltp(100.0 + n))
    hub.publish(ETH, {"pair": "ETH/USD", "amount": 1.0})
    btc, eth = hub.stream(BTC), hub.stream(ETH)
    assert btc is not None
    assert eth is not None
    assert (btc.seq, eth.seq) == (5, 1)


async def test_a_slow_reader_gets_one_merged_delta_with_its_base_seq(
    hub: StreamHub, metrics: Metrics
) -> None:
    hub.publish_pair("BTC/USD", ltp(100.0, bid=1.0))
    fast, _ = sub(hub)
    slow, _ = sub(hub)
    fast.subscribe([BTC], interval_ms=0)
    slow.subscribe([BTC], interval_ms=0)
    fast.take()
    slow.take()
    seen = []
    for n in range(1, 11):
        hub.publish_pair("BTC/USD", ltp(100.0 + n, bid=1.0 if n < 5 else 2.0))
        seen.extend(fast.take())
    assert [m.seq for m in seen] == list(range(2, 12))
    assert all(m.base_seq == m.seq - 1 for m in seen)
    assert slow.pending_count == 1  # one pending message per key, whatever the backlog
    (merged,) = slow.take()
    assert (merged.seq, merged.base_seq) == (11, 1)
    assert merged.body == {"amount": 110.0, "bid": 2.0}
    conflated = metrics.registry.get_sample_value(
        "tokenpulse_stream_messages_conflated_total", {"transport": "socketio"}
    )
    assert conflated == 9


async def test_merging_never_mutates_the_delta_other_clients_share(hub: StreamHub) -> None:
    hub.publish_pair("BTC/USD", ltp(100.0))
    a, _ = sub(hub)
    b, _ = sub(hub)
    for s in (a, b):
        s.subscribe([BTC], interval_ms=0)
        s.take()
    hub.publish_pair("BTC/USD", ltp(101.0, bid=3.0))
    (first,) = a.take()
    hub.publish_pair("BTC/USD", ltp(102.0, bid=3.0))
    assert first.body == {"amount": 101.0, "bid": 3.0}
    (merged,) = b.take()
    assert merged.body == {"amount": 102.0, "bid": 3.0}


async def test_resubscribe_gives_a_fresh_snapshot(hub: StreamHub) -> None:
    hub.publish_pair("BTC/USD", ltp(100.0))
    s, _ = sub(hub)
    s.subscribe([BTC], interval_ms=0)
    s.take()
    hub.publish_pair("BTC/USD", ltp(101.0))
    s.subscribe([BTC], interval_ms=0)
    (message,) = s.take()
    assert (message.kind, message.seq, message.body["amount"]) == ("snapshot", 2, 101.0)


async def test_a_key_without_state_sends_its_snapshot_when_it_first_appears(
    hub: StreamHub,
) -> None:
    s, _ = sub(hub)
    s.subscribe([token_key("bitcoin")], interval_ms=0)
    assert s.take() == []
    hub.publish_token("bitcoin", {"id": "bitcoin", "price_usd": 1.0})
    (message,) = s.take()
    assert (message.event, message.kind, message.id) == ("token_update", "snapshot", "bitcoin")


async def test_explicit_interval_holds_deltas_until_due(hub: StreamHub, clock: FakeClock) -> None:
    hub.publish_pair("BTC/USD", ltp(100.0))
    s, _ = sub(hub)
    s.subscribe([BTC], interval_ms=500)
    assert s.take()[0].kind == "snapshot"  # snapshots are never delayed
    hub.publish_pair("BTC/USD", ltp(101.0))
    assert s.take() == []
    assert s.has_timer
    clock.advance(0.499)
    assert s.take() == []
    clock.advance(0.001)
    (delta,) = s.take()
    assert delta.body == {"amount": 101.0}


async def test_adaptive_interval_is_fast_when_the_price_moves_and_slow_when_flat(
    clock: FakeClock,
) -> None:
    limits = StreamLimits(fast_interval_ms=100, flat_interval_ms=1000, fast_move_bps=5)
    hub = StreamHub(limits=limits, clock=clock)
    hub.publish_pair("BTC/USD", ltp(10_000.0))
    s, _ = sub(hub)
    s.subscribe([BTC])  # no min_interval_ms: adaptive
    s.take()
    hub.publish_pair("BTC/USD", ltp(10_001.0))  # 1 bp: flat
    clock.advance(0.1)
    assert s.take() == []
    clock.advance(0.9)
    assert s.take()[0].body == {"amount": 10_001.0}
    hub.publish_pair("BTC/USD", ltp(10_011.0))  # 10 bp from what the client last got: fast
    clock.advance(0.099)
    assert s.take() == []
    clock.advance(0.001)
    assert s.take()[0].body == {"amount": 10_011.0}
    # A flat tick pending, then a big move: the earlier (fast) deadline wins.
    hub.publish_pair("BTC/USD", ltp(10_011.5))
    hub.publish_pair("BTC/USD", ltp(10_100.0))
    clock.advance(0.1)
    assert s.take()[0].body == {"amount": 10_100.0}


async def test_bulk_subscribers_get_one_bulk_update_per_interval(
    clock: FakeClock,
) -> None:
    hub = StreamHub(limits=StreamLimits(bulk_interval=1.0), clock=clock)
    hub.publish_pair("BTC/USD", ltp(100.0))
    s, _ = sub(hub)
    s.subscribe_prefix("pair:", bulk=True)
    s.subscribe_prefix("token:", bulk=True)
    (first,) = s.take()
    assert first.kind == "bulk"
    assert [m.kind for m in first.items] == ["snapshot"]
    hub.publish_pair("BTC/USD", ltp(101.0))
    hub.publish_token("bitcoin", {"id": "bitcoin", "price_usd": 1.0})  # a new key is adopted
    assert s.take() == []
    clock.advance(1.0)
    (bulk,) = s.take()
    payload = bulk.payload(99)
    assert payload["type"] == "bulk"
    assert payload["ts"] == 99
    assert sorted((u["event"], u["type"], u["id"]) for u in payload["updates"]) == [
        ("ltp_update", "delta", "BTC/USD"),
        ("token_update", "snapshot", "bitcoin"),
    ]
    assert s.unsubscribe_prefix("token:") is True
    assert s.keys(explicit=False) == [BTC]


async def test_subscription_limit_per_connection(clock: FakeClock) -> None:
    hub = StreamHub(limits=StreamLimits(max_subscriptions=3), clock=clock)
    s, _ = sub(hub)
    s.subscribe([token_key(f"t{n}") for n in range(3)])
    s.subscribe([token_key("t0")])  # resubscribing is not a new subscription
    with pytest.raises(LimitExceeded):
        s.subscribe([token_key("t3")])
    assert s.explicit_count == 3
    s.unsubscribe([token_key("t0")])
    s.subscribe([token_key("t3")])


async def test_connection_limit(clock: FakeClock) -> None:
    hub = StreamHub(limits=StreamLimits(max_connections=2), clock=clock)
    sub(hub)
    sub(hub)
    with pytest.raises(LimitExceeded) as raised:
        sub(hub)
    assert raised.value.code == "LIMIT_EXCEEDED"


async def test_close_leaves_nothing_behind(hub: StreamHub, metrics: Metrics) -> None:
    hub.publish_pair("BTC/USD", ltp(100.0))
    subscribers = []
    for n in range(50):
        s, _ = sub(hub, "socketio" if n % 2 else "sse")
        s.subscribe([BTC, ETH], interval_ms=1000)
        s.subscribe_prefix("token:", bulk=n % 3 == 0)
        subscribers.append(s)
    hub.publish_pair("BTC/USD", ltp(101.0))
    stats = hub.stats()
    assert stats.connections == {"socketio": 25, "sse": 25}
    assert stats.pending == 50
    gauge = metrics.registry.get_sample_value(
        "tokenpulse_stream_subscriptions", {"transport": "sse"}
    )
    assert gauge == 50
    for s in subscribers:
        hub.close(s)
        hub.close(s)  # idempotent
    stats = hub.stats()
    assert stats.connections == {"socketio": 0, "sse": 0}
    assert stats.subscriptions == {"socketio": 0, "sse": 0}
    assert (stats.pending, stats.timers, stats.index_entries) == (0, 0, 0)
    dropped = metrics.registry.get_sample_value(
        "tokenpulse_stream_messages_dropped_total", {"transport": "sse", "reason": "disconnect"}
    )
    assert dropped == 25
    assert subscribers[0].take() == []


async def test_the_hub_is_fed_by_the_bus(hub: StreamHub) -> None:
    bus = InProcessBus()
    detach = hub.attach(bus)
    assert bus.subscriber_count(LTP_TOPIC) == 1
    assert bus.subscriber_count(TOKENS_TOPIC) == 1
    await make_ltp_publisher(bus)([LtpView.of(ticker(Decimal("100.0")))])
    await make_token_publisher(bus)(TokenView.of(bitcoin(Decimal("2.5"))))
    btc, token = hub.stream(BTC), hub.stream(token_key("bitcoin"))
    assert btc is not None
    assert btc.data["amount"] == "100.0"  # the bus carries the exact digits
    assert btc.data["received_at"] == "2026-02-14T10:21:07.151Z"
    assert token is not None
    assert (token.data["id"], token.data["price_usd"]) == ("bitcoin", "2.5")
    assert token.data["quality"]["flags"] == []
    detach()
    assert bus.subscriber_count(LTP_TOPIC) == 0


def test_message_cache_key_is_shared_only_by_identical_messages() -> None:
    a = Message("ltp_update", "delta", BTC, "BTC/USD", 5, 4, {"amount": 1}, 0.0)
    b = Message("ltp_update", "delta", BTC, "BTC/USD", 5, 3, {"amount": 1}, 0.0)
    assert a.cache_key != b.cache_key
    assert Message("bulk_update", "bulk", "", "", 0, None, {}, 0.0).cache_key is None


def test_resume_store_keeps_subscriptions_per_principal_with_a_ttl_and_a_cap(
    clock: FakeClock,
) -> None:
    from tokenpulse.api.streams.resume import ResumeStore

    store = ResumeStore(ttl=60, max_entries=2, clock=clock)
    store.save("empty", None, {}, {})
    assert len(store) == 0  # nothing subscribed, nothing kept
    store.save("a", "key_1", {BTC: 100}, {})
    assert store.take("a", "key_2") is None  # another principal cannot take it
    saved = store.take("a", "key_1")
    assert saved is not None
    assert saved.keys == {BTC: 100}
    assert store.take("a", "key_1") is None  # taken once
    store.save("b", None, {BTC: None}, {"token:": True})
    clock.advance(61)
    assert store.take("b", None) is None  # expired
    for name in ("c", "d", "e"):
        store.save(name, None, {ETH: None}, {})
    assert len(store) == 2
    assert store.take("c", None) is None


class Timers:
    """The hub's ``call_later``: records what it arms; the test fires them by hand."""

    def __init__(self) -> None:
        self.armed: list[tuple[float, Callable[[], None], asyncio.TimerHandle]] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(delay, callback, (), asyncio.get_running_loop())
        self.armed.append((delay, callback, handle))
        return handle

    def fire_due(self) -> int:
        """Run every armed, uncancelled callback once; returns how many ran."""
        due, self.armed = self.armed, []
        ran = 0
        for _, callback, handle in due:
            if not handle.cancelled():
                callback()
                ran += 1
        return ran


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock(RECEIVED.timestamp() + 1.5)


@pytest.fixture
def timers() -> Timers:
    return Timers()


@pytest.fixture
def timed_hub(clock: FakeClock, wall: FakeClock, timers: Timers) -> StreamHub:
    return StreamHub(
        limits=StreamLimits(min_interval_ms=0),
        clock=clock,
        call_later=timers,
        stale_after=60.0,
        wall_clock=wall,
    )


def ltp_body(last: str) -> dict[str, Any]:
    import orjson

    data: dict[str, Any] = orjson.loads(LtpView.of(ticker(Decimal(last))).body)
    return data


def ts_ms(moment: float) -> int:
    return round(moment * 1000)


async def test_every_message_carries_age_ms_and_stale_at_its_ts(
    timed_hub: StreamHub, wall: FakeClock
) -> None:
    timed_hub.publish_pair("BTC/USD", ltp_body("100.5"))
    s, _ = sub(timed_hub)
    s.subscribe([BTC], interval_ms=0)
    (snapshot,) = s.take()
    data = snapshot.payload(ts_ms(wall.now))["data"]
    assert (data["age_ms"], data["stale"]) == (1500, False)
    later = snapshot.payload(ts_ms(wall.now + 60))["data"]  # the same message, sent later
    assert (later["age_ms"], later["stale"]) == (61_500, True)
    assert "age_ms" not in timed_hub.stream(BTC).data  # type: ignore[union-attr]
    timed_hub.publish_pair("BTC/USD", ltp_body("101"))
    (delta,) = s.take()
    assert delta.payload(ts_ms(wall.now))["changes"] == {
        "amount": 101.0,
        "age_ms": 1500,
        "stale": False,
    }
    # Inside a bulk a message has no ts of its own: its age is at the bulk's ts.
    in_bulk = snapshot.payload(None, at_ms=ts_ms(wall.now + 2))
    assert "ts" not in in_bulk
    assert in_bulk["data"]["age_ms"] == 3500
    # numbers=string: the same message with market values as the exact decimal strings.
    exact = snapshot.payload(ts_ms(wall.now), strings=True)["data"]
    assert (exact["amount"], exact["age_ms"]) == ("100.5", 1500)
    assert data["amount"] == 100.5
    assert delta.payload(ts_ms(wall.now), strings=True)["changes"]["amount"] == "101"


async def test_a_value_that_stops_updating_is_sent_stale_true_when_it_crosses_stale_after(
    timed_hub: StreamHub, wall: FakeClock, timers: Timers
) -> None:
    timed_hub.publish_pair("BTC/USD", ltp_body("100.5"))
    s, _ = sub(timed_hub)
    s.subscribe([BTC], interval_ms=0)
    s.take()
    ((delay, _, _),) = timers.armed
    assert delay == pytest.approx(60.001 - 1.5 + 0.001)  # one more ms: whole-ms state
    wall.advance(delay)
    assert timers.fire_due() == 1
    (delta,) = s.take()
    assert (delta.kind, delta.seq, delta.body) == ("delta", 2, {"stale": True})
    changes = delta.payload(ts_ms(wall.now))["changes"]
    assert changes == {"stale": True, "age_ms": 60_002}
    assert timers.armed == []  # stale: nothing more to check until the next value
    timed_hub.publish_pair("BTC/USD", ltp_body("100.5"))  # the same reading, published again
    wall.advance(0.25)
    assert s.take() == []  # nothing changed: still the same (stale) state
    assert timers.armed == []


async def test_a_new_value_clears_stale_and_rearms_the_check(
    timed_hub: StreamHub, wall: FakeClock, timers: Timers
) -> None:
    timed_hub.publish_pair("BTC/USD", ltp_body("100.5"))
    s, _ = sub(timed_hub)
    s.subscribe([BTC], interval_ms=0)
    s.take()
    wall.advance(120)
    timers.fire_due()
    s.take()
    fresh = {**ltp_body("102"), "received_at": "2026-02-14T10:23:08.000Z"}
    timed_hub.publish_pair("BTC/USD", fresh)
    (delta,) = s.take()
    assert delta.body["stale"] is False
    assert delta.body["amount"] == "102"  # the bus carries the exact digits ...
    assert delta.payload(ts_ms(wall.now))["changes"]["amount"] == 102.0  # ... sent as a number
    assert len(timers.armed) == 1


async def test_a_heartbeat_of_the_source_keeps_a_pair_fresh(
    clock: FakeClock, wall: FakeClock, timers: Timers
) -> None:
    confirmed = {"kraken_ws": RECEIVED.timestamp() + 50}
    hub = StreamHub(
        clock=clock,
        call_later=timers,
        stale_after=60.0,
        wall_clock=wall,
        pair_fresh_at=lambda source, received: max(received, confirmed.get(source, 0.0)),
    )
    hub.publish_pair("BTC/USD", ltp_body("100.5"))
    wall.advance(59)  # 60.5 s after receipt, 10.5 s after the heartbeat
    timers.fire_due()
    assert hub.stream(BTC).data["stale"] is False  # type: ignore[union-attr]
    ((delay, _, _),) = timers.armed  # checks again when the heartbeat's value would be stale
    assert delay == pytest.approx(50 + 60.001 - 60.5 + 0.001)
    assert hub.freshness(BTC, wall.now) == (10_500, False)
