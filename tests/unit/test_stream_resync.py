"""The hub when the bus goes down and comes back (SPEC §10): a follower flags every key
stale, then resyncs every subscriber with a snapshot; the resume store stays bounded."""

from __future__ import annotations

import time
from typing import Any

from tests.helpers import FakeClock
from tokenpulse.api.streams.hub import StreamHub, StreamLimits
from tokenpulse.api.streams.resume import ResumeStore
from tokenpulse.bus.topics import pair_key
from tokenpulse.domain.time import isoformat_z, utcnow

BTC = pair_key("BTC/USD")
ETH = pair_key("ETH/USD")


def ltp(pair: str, amount: float) -> dict[str, Any]:
    return {
        "pair": pair,
        "amount": amount,
        "source": "kraken_ws",
        "received_at": isoformat_z(utcnow()),
    }


def hub_with_values() -> StreamHub:
    hub = StreamHub(limits=StreamLimits(min_interval_ms=0), stale_after=60.0)
    hub.publish_pair("BTC/USD", ltp("BTC/USD", 100.0))
    hub.publish_pair("ETH/USD", ltp("ETH/USD", 10.0))
    return hub


async def test_mark_all_stale_sends_one_stale_delta_per_key_and_ages_say_stale() -> None:
    hub = hub_with_values()
    subscriber = hub.open("sse", lambda: None)
    subscriber.subscribe([BTC, ETH], interval_ms=0)
    assert {m.kind for m in subscriber.take()} == {"snapshot"}

    assert hub.mark_all_stale() == 2
    assert hub.mark_all_stale() == 0  # already flagged: nothing more to send
    deltas = subscriber.take()
    assert sorted(m.id for m in deltas) == ["BTC/USD", "ETH/USD"]
    assert all(m.kind == "delta" and m.body == {"stale": True} for m in deltas)
    fresh = hub.freshness(BTC, time.time())
    assert fresh is not None
    assert fresh[1] is True  # every message says stale while the bus is down
    assert deltas[0].payload(int(time.time() * 1000))["changes"]["stale"] is True


async def test_resync_sends_every_subscriber_a_snapshot_measured_again() -> None:
    hub = hub_with_values()
    first, second = hub.open("sse", lambda: None), hub.open("socketio", lambda: None)
    first.subscribe([BTC], interval_ms=0)
    second.subscribe([BTC, ETH], interval_ms=0)
    first.take()
    second.take()
    hub.mark_all_stale()
    first.take()
    second.take()

    assert hub.resync() == 2
    (snapshot,) = first.take()
    assert snapshot.kind == "snapshot"
    assert snapshot.body["stale"] is False  # young values are fresh again
    assert {m.id: m.kind for m in second.take()} == {"BTC/USD": "snapshot", "ETH/USD": "snapshot"}
    fresh = hub.freshness(BTC, time.time())
    assert fresh is not None
    assert fresh[1] is False


def test_the_resume_store_expires_on_save_so_a_churn_stays_bounded(clock: FakeClock) -> None:
    store = ResumeStore(ttl=60, max_entries=1000, clock=clock)
    for n in range(500):
        store.save(f"r{n}", None, {BTC: None}, {})
    assert len(store) == 500
    clock.advance(61)
    store.save("late", None, {BTC: None}, {})  # no take() ever: saving alone expires
    assert len(store) == 1
