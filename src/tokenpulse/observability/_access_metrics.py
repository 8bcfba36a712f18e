"""Access-control metrics (SPEC §8, §9): per-key usage with a bounded number of series.

Requests and 429s are counted per key id in plain dicts (a dict increment on the hot path);
Prometheus sees them by tier and outcome only, plus the ``top`` busiest keys by id — never
one series per key without a bound. ``usage(key_id)`` answers the admin usage endpoint;
:meth:`KeyUsage.unsent` and :meth:`KeyUsage.sent` let a writer-behind add this instance's
counts to the totals every instance shares (``services/access/usage.py``) without touching
the hot path: what was sent is remembered apart and subtracted.
Blocks are a gauge read at scrape time and a counter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

DEFAULT_TOP = 10
OUTCOMES = ("allowed", "limited", "stream_connections", "stream_messages")
FIELDS = ("requests", "rate_limited", "stream_connections", "stream_messages")


class KeyUsage(Collector):
    """Counts per key id and outcome; exported as totals by tier and the top keys."""

    def __init__(self, top: int = DEFAULT_TOP) -> None:
        self.top = top
        self._counts: dict[str, list[int]] = {}  # key id -> counts by OUTCOMES index
        self._tiers: dict[str, str] = {}
        self._sent: dict[str, list[int]] = {}  # key id -> counts already in the shared totals
        self.blocked_ips: Callable[[], int] = lambda: 0

    def count(self, key_id: str, tier: str, outcome: int) -> None:
        """One request (0 allowed, 1 limited) or stream connection (2) of a key."""
        counts = self._counts.get(key_id)
        if counts is None:
            counts = self._counts[key_id] = [0, 0, 0, 0]
            self._tiers[key_id] = tier
        counts[outcome] += 1

    def messages(self, key_id: str, sent: int) -> None:
        """Stream messages written to a connection of a key (counted once it connected)."""
        counts = self._counts.get(key_id)
        if counts is not None:
            counts[3] += sent

    def usage(self, key_id: str) -> dict[str, int]:
        """This instance's counts for one key."""
        counts = self._counts.get(key_id, [0, 0, 0, 0])
        return dict(zip(FIELDS, counts, strict=True))

    def unsent(self) -> dict[str, list[int]]:
        """Each key's counts not yet sent to the shared totals (only keys with some)."""
        deltas: dict[str, list[int]] = {}
        for key_id, counts in self._counts.items():
            sent = self._sent.get(key_id)
            delta = (
                list(counts) if sent is None else [c - s for c, s in zip(counts, sent, strict=True)]
            )
            if any(delta):
                deltas[key_id] = delta
        return deltas

    def sent(self, deltas: dict[str, list[int]]) -> None:
        """Record that ``deltas`` (from :meth:`unsent`) are in the shared totals now."""
        for key_id, delta in deltas.items():
            base = self._sent.setdefault(key_id, [0, 0, 0, 0])
            for index, value in enumerate(delta):
                base[index] += value

    def forget(self, key_id: str) -> None:
        """Drop a deleted key's counts."""
        self._counts.pop(key_id, None)
        self._tiers.pop(key_id, None)
        self._sent.pop(key_id, None)

    def collect(self) -> Iterator[Metric]:
        by_tier = CounterMetricFamily(
            "tokenpulse_key_requests",
            "Authenticated requests and stream connections by key tier and outcome",
            labels=["tier", "outcome"],
        )
        totals: dict[tuple[str, str], int] = {}
        for key_id, counts in self._counts.items():
            for outcome, value in zip(OUTCOMES, counts, strict=True):
                label = (self._tiers[key_id], outcome)
                totals[label] = totals.get(label, 0) + value
        for (tier, outcome), value in sorted(totals.items()):
            by_tier.add_metric([tier, outcome], value)
        yield by_tier
        top = CounterMetricFamily(
            "tokenpulse_top_key_requests",
            f"Requests of the {self.top} busiest keys on this instance, by key id",
            labels=["key_id"],
        )
        busiest = sorted(self._counts.items(), key=lambda item: item[1][0], reverse=True)
        for key_id, counts in busiest[: self.top]:
            top.add_metric([key_id], counts[0])
        yield top
        blocked = GaugeMetricFamily(
            "tokenpulse_auth_blocked_ips", "Client IPs blocked for failed authentications"
        )
        blocked.add_metric([], self.blocked_ips())
        yield blocked


class AccessMetrics:
    """The access-control metrics, registered on the app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.usage = KeyUsage()
        registry.register(self.usage)
        self.auth_blocks = Counter(
            "tokenpulse_auth_blocks_total",
            "Client IPs blocked after AUTH_BLOCK_AFTER failed authentications",
            registry=registry,
        )
        self.auth_throttled = Counter(
            "tokenpulse_auth_throttled_total",
            "Failed authentications answered 429 (the per-IP failure bucket was empty)",
            registry=registry,
        )
        self.stream_slot_errors = Counter(
            "tokenpulse_stream_slot_errors_total",
            "Redis failures counting stream connections per key (the instance's own count "
            "decided instead)",
            registry=registry,
        )
