"""Prometheus metrics, all named ``tokenpulse_*``, owned by one :class:`Metrics` object.

Each app builds its own ``Metrics`` on its own ``CollectorRegistry`` (tests build many apps
in one process); nothing registers on the global default registry. The service runs one
worker per instance, so metrics are never split per worker.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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

        # HTTP
        self.http_requests = Counter(
            "tokenpulse_http_requests_total",
            "HTTP requests by route template, method and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "tokenpulse_http_request_duration_seconds",
            "HTTP request duration by route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.http_request_size = Summary(
            "tokenpulse_http_request_size_bytes",
            "HTTP request body size by route template",
            ["route"],
            registry=r,
        )
        self.http_response_size = Summary(
            "tokenpulse_http_response_size_bytes",
            "HTTP response body size by route template",
            ["route"],
            registry=r,
        )
        self.http_in_flight = Gauge(
            "tokenpulse_http_requests_in_flight", "HTTP requests being served", registry=r
        )

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
