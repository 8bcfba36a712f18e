"""The Kraken WS shard state: subscribe batches, what acks and data prove, liveness (no I/O)."""

from __future__ import annotations

import itertools

import pytest

from tokenpulse.data import kraken_pair_registry
from tokenpulse.domain.pairs import Pair
from tokenpulse.sources._health import Backoff
from tokenpulse.sources.kraken.ws_parser import StatusUpdate, SubscribeAck
from tokenpulse.sources.kraken.ws_shard import PairFeedState, Shard, split_pairs

REGISTRY = kraken_pair_registry()
PAIRS = [Pair("BTC", "USD"), Pair("ETH", "USD"), Pair("ADA", "USD")]


def shard(pairs: list[Pair] = PAIRS) -> Shard:
    symbols = {REGISTRY.info(pair).ws_v2_symbol: pair for pair in pairs}
    return Shard(0, symbols, Backoff(0.1, 1.0))


@pytest.mark.parametrize(
    ("count", "per_chunk", "sizes"),
    [
        (0, 3, []),
        (1, 3, [1]),
        (3, 3, [3]),
        (4, 3, [2, 2]),
        (7, 3, [3, 2, 2]),
        (9, 2, [2] * 4 + [1]),
    ],
)
def test_split_pairs_makes_even_contiguous_chunks(
    count: int, per_chunk: int, sizes: list[int]
) -> None:
    pairs = [Pair(f"C{index}", "USD") for index in range(count)]
    chunks = split_pairs(pairs, per_chunk)
    assert [len(chunk) for chunk in chunks] == sizes
    assert [pair for chunk in chunks for pair in chunk] == pairs


def test_subscribe_requests_batch_the_symbols_and_record_each_request() -> None:
    s = shard()
    s.rejected[PAIRS[0]] = "old"
    s.pending[99] = [PAIRS[0]]
    requests = list(s.subscribe_requests(2, itertools.count(7)))
    symbols = list(s.by_symbol)
    assert requests == [(7, symbols[:2]), (8, symbols[2:])]
    assert s.pending == {7: PAIRS[:2], 8: PAIRS[2:]}
    assert s.rejected == {}


def test_an_error_ack_without_a_symbol_fails_the_unsubscribed_pairs_of_its_request() -> None:
    s = shard()
    list(s.subscribe_requests(2, itertools.count(1)))
    s.connected = True
    s.acknowledged(SubscribeAck(1, REGISTRY.info(PAIRS[0]).ws_v2_symbol, True, None), REGISTRY)
    ack = SubscribeAck(req_id=1, symbol=None, success=False, error="rate limited")
    assert s.rejected_by(ack, REGISTRY, "rate limited") == [PAIRS[1]]
    assert s.rejected == {PAIRS[1]: "rate limited"}
    assert s.state(PAIRS[0]).subscribed
    assert not s.state(PAIRS[1]).subscribed


def test_a_later_success_clears_the_rejection_and_data_proves_a_subscription() -> None:
    s = shard()
    symbol = REGISTRY.info(PAIRS[2]).ws_v2_symbol
    assert s.rejected_by(SubscribeAck(3, symbol, False, "nope"), REGISTRY, "nope") == [PAIRS[2]]
    s.acknowledged(SubscribeAck(4, symbol, True, None), REGISTRY)
    assert s.rejected == {}
    assert s.saw_data(PAIRS[1]) is True
    assert s.saw_data(PAIRS[1]) is False  # not news the second time
    assert s.saw_data(Pair("XYZ", "USD")) is False  # not this shard's pair
    assert s.subscribed == {PAIRS[1], PAIRS[2]}


def test_alive_resets_the_backoff_once_and_disconnected_forgets_subscriptions() -> None:
    s = shard()
    s.backoff.next_delay()
    s.alive()
    assert s.healthy
    assert s.backoff.attempt == 0
    s.backoff.next_delay()
    s.alive()  # already healthy: the backoff is left alone
    assert s.backoff.attempt == 1
    s.connected = True
    s.saw_data(PAIRS[0])
    s.disconnected()
    assert (s.connected, s.healthy, s.subscribed) == (False, False, set())
    assert s.state(PAIRS[0]) == PairFeedState(connected=False, subscribed=False, silent_for=None)


def test_status_changed_only_when_the_engine_state_changes() -> None:
    s = shard()
    assert s.status_changed(StatusUpdate("online", "v2", 1)) is True
    assert s.status_changed(StatusUpdate("online", "v2", 2)) is False
    assert s.connection_id == 2
    assert s.status_changed(StatusUpdate("maintenance", "v2", 2)) is True
