"""Prometheus metrics, all named ``tokenpulse_*``, owned by one :class:`Metrics` object.

Each app builds its own ``Metrics`` on its own ``CollectorRegistry`` (tests build many apps
in one process); nothing registers on the global default registry. The service runs one
worker per instance, so metrics are never split per worker.
"""

from __future__ import annotations

import platform
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from tokenpulse import __version__

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
CIRCUIT_STATES = {"closed": 0, "half_open": 1, "open": 2}


class Metrics:
    """Every metric tokenpulse exports."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.build_info = Info("tokenpulse_build", "Build information", registry=r)
        self.build_info.info({"version": __version__, "python": platform.python_version()})
        self.start_time = Gauge(
            "tokenpulse_start_time_seconds", "Unix time the process started", registry=r
        )
        self.start_time.set(time.time())

        # HTTP: counted by our own collector, ~10x cheaper per request than client objects
        self.http = HttpMetrics()
        r.register(self.http)

        # access control
        self.rate_limit_decisions = Counter(
            "tokenpulse_rate_limit_decisions_total",
            "Rate-limit decisions",
            ["decision"],
            registry=r,
        )
        self.auth_failures = Counter(
            "tokenpulse_auth_failures_total",
            "Requests rejected for a missing or invalid API key",
            ["reason"],
            registry=r,
        )

        # cache
        self.cache_operations = Counter(
            "tokenpulse_cache_operations_total",
            "Cache operations by backend, operation and result (hit, miss, ok, error)",
            ["backend", "operation", "result"],
            registry=r,
        )
        self.cache_keys = Gauge(
            "tokenpulse_cache_keys", "Live entries in the cache", ["backend"], registry=r
        )
        self.cache_evictions = Counter(
            "tokenpulse_cache_evictions_total",
            "Entries removed by expiry or capacity",
            ["backend", "reason"],
            registry=r,
        )

        # sources
        self.source_messages = Counter(
            "tokenpulse_source_messages_total",
            "Provider messages received, by kind",
            ["source", "kind"],
            registry=r,
        )
        self.source_parse_errors = Counter(
            "tokenpulse_source_parse_errors_total",
            "Provider messages dropped as malformed, by kind",
            ["source", "kind"],
            registry=r,
        )
        self.source_errors = Counter(
            "tokenpulse_source_errors_total",
            "Source failures (connect, protocol, upstream error) by kind",
            ["source", "kind"],
            registry=r,
        )
        self.source_reconnects = Counter(
            "tokenpulse_source_reconnects_total", "Reconnects", ["source"], registry=r
        )
        self.source_requests = Counter(
            "tokenpulse_source_requests_total",
            "Requests made to a provider, by outcome",
            ["source", "outcome"],
            registry=r,
        )
        self.source_request_duration = Histogram(
            "tokenpulse_source_request_duration_seconds",
            "Provider request latency",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.source_retries = Counter(
            "tokenpulse_source_retries_total", "Retried provider requests", ["source"], registry=r
        )
        self.source_connected = Gauge(
            "tokenpulse_source_connected",
            "1 while the source's connection is up",
            ["source"],
            registry=r,
        )
        self.source_circuit_state = Gauge(
            "tokenpulse_source_circuit_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open",
            ["source"],
            registry=r,
        )
        self.source_last_message_age = Gauge(
            "tokenpulse_source_last_message_age_seconds",
            "Seconds since the source last heard from its provider",
            ["source"],
            registry=r,
        )
        self.source_buffer_conflated = Counter(
            "tokenpulse_source_buffer_conflated_total",
            "Events replaced in the reader hand-off buffer by a newer one for the same key",
            ["source"],
            registry=r,
        )
        self.source_buffer_dropped = Counter(
            "tokenpulse_source_buffer_dropped_total",
            "Events dropped because the hand-off buffer was full of other keys",
            ["source"],
            registry=r,
        )
        self.source_serving = Gauge(
            "tokenpulse_pair_serving_source",
            "1 for the source currently serving a pair",
            ["pair", "source"],
            registry=r,
        )
        self.source_failovers = Counter(
            "tokenpulse_source_failovers_total",
            "Changes of the source that serves a pair",
            ["pair", "source", "reason"],
            registry=r,
        )

        # prices
        self.price = Gauge("tokenpulse_price", "Last traded price per pair", ["pair"], registry=r)
        self.price_age = Gauge(
            "tokenpulse_price_age_seconds",
            "Seconds since the last accepted price per pair",
            ["pair"],
            registry=r,
        )
        self.price_updates = Counter(
            "tokenpulse_price_updates_total",
            "Accepted price updates per pair and source",
            ["pair", "source"],
            registry=r,
        )
        self.ingest_lag = Histogram(
            "tokenpulse_ingest_lag_seconds",
            "Time from receiving a provider message to the value being served",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.bus_published = Counter(
            "tokenpulse_bus_published_total", "Events published on the bus", ["topic"], registry=r
        )
        self.bus_publish_failures = Counter(
            "tokenpulse_bus_publish_failures_total",
            "Events the bus failed to publish",
            ["topic"],
            registry=r,
        )

    def gauge_function(self, gauge: Gauge, labels: dict[str, str], fn: Callable[[], float]) -> None:
        """Make a labelled gauge child compute its value at scrape time."""
        gauge.labels(**labels).set_function(fn)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class HttpMetrics(Collector):
    """HTTP request metrics by route template, kept in plain dicts and exported at scrape time.

    The request path is the hottest code in the service; prometheus_client's labelled
    objects take a lock and several calls per observation. This collector does a dict
    lookup and a bisect instead, and exposes the standard counter/histogram/summary
    families (``tokenpulse_http_requests_total``, ``…_request_duration_seconds``,
    ``…_request_size_bytes``, ``…_response_size_bytes``). Observations and scrapes both run
    on the event loop thread, so no lock is needed.
    """

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.requests: dict[tuple[str, str, str], int] = {}
        # (method, route) -> [per-bucket counts…, +Inf count, sum]
        self.durations: dict[tuple[str, str], list[float]] = {}
        # route -> [count, request bytes, response bytes]
        self.sizes: dict[str, list[int]] = {}

    def observe(
        self, method: str, route: str, status: int, seconds: float, req_size: int, resp_size: int
    ) -> None:
        key = (method, route, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        timing = self.durations.get((method, route))
        if timing is None:
            timing = self.durations[(method, route)] = [0.0] * (len(self.buckets) + 2)
        timing[bisect_left(self.buckets, seconds)] += 1
        timing[-1] += seconds
        sizes = self.sizes.get(route)
        if sizes is None:
            sizes = self.sizes[route] = [0, 0, 0]
        sizes[0] += 1
        sizes[1] += req_size
        sizes[2] += resp_size

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "tokenpulse_http_requests",
            "HTTP requests by route template, method and status",
            labels=["method", "route", "status"],
        )
        for labels, count in sorted(self.requests.items()):
            requests.add_metric(list(labels), count)
        yield requests
        duration = HistogramMetricFamily(
            "tokenpulse_http_request_duration_seconds",
            "HTTP request duration by route template",
            labels=["method", "route"],
        )
        for (method, route), timing in sorted(self.durations.items()):
            cumulative, buckets = 0.0, []
            for bound, hits in zip((*self.buckets, float("inf")), timing[:-1], strict=True):
                cumulative += hits
                buckets.append((_bound(bound), cumulative))
            duration.add_metric([method, route], buckets, sum_value=timing[-1])
        yield duration
        for index, name, doc in (
            (1, "tokenpulse_http_request_size_bytes", "HTTP request body size by route template"),
            (2, "tokenpulse_http_response_size_bytes", "HTTP response body size by route"),
        ):
            family = SummaryMetricFamily(name, doc, labels=["route"])
            for route, sizes in sorted(self.sizes.items()):
                family.add_metric([route], count_value=sizes[0], sum_value=sizes[index])
            yield family

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def count(self, method: str, route: str, status: int) -> int:
        """Requests seen so far (for tests)."""
        return self.requests.get((method, route, str(status)), 0)


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)
