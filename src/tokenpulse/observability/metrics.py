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
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tokenpulse import __version__
from tokenpulse.observability._fault_metrics import FaultMetrics
from tokenpulse.observability._http_metrics import LATENCY_BUCKETS, HttpMetrics
from tokenpulse.observability._plain_counter import PlainCounter

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
        self.faults = FaultMetrics(r)  # failure behaviour: resyncs, lock, unwritten rows

        # access control
        self.rate_limit_decisions = PlainCounter(  # bumped on every request: no lock
            "tokenpulse_rate_limit_decisions_total", "Rate-limit decisions", ("decision",)
        )
        r.register(self.rate_limit_decisions)
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
        # tokens
        self.token_velocity = Gauge(
            "tokenpulse_token_velocity",
            "Token velocity (24 h volume / market cap) per token",
            ["token"],
            registry=r,
        )
        self.token_quality_flags = Counter(
            "tokenpulse_token_quality_flags_total",
            "Quality flags raised on served token snapshots",
            ["flag"],
            registry=r,
        )
        self.token_updates = Counter(
            "tokenpulse_token_updates_total",
            "Token quotes applied, by source",
            ["source"],
            registry=r,
        )
        # scale-out
        self.leader = Gauge(
            "tokenpulse_ingest_leader", "1 while this instance holds the ingest lock", registry=r
        )
        self.leader_changes = Counter(
            "tokenpulse_ingest_leader_changes_total",
            "Times this instance was elected or deposed",
            ["change"],
            registry=r,
        )
        self.replicated = Counter(
            "tokenpulse_replicated_updates_total",
            "Updates applied from the bus on an instance that does not ingest",
            ["kind"],
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

        # token market data: provider credits, rate limits, CMC/CoinGecko failover (§3.4, §3.5)
        self.provider_credits_used = Counter(
            "tokenpulse_provider_credits_used_total",
            "API credits the provider charged (its status.credit_count)",
            ["source"],
            registry=r,
        )
        self.provider_credits_left = Gauge(
            "tokenpulse_provider_credits_left",
            "API credits left in this calendar month's budget",
            ["source"],
            registry=r,
        )
        self.provider_rate_limited = Counter(
            "tokenpulse_provider_rate_limited_total",
            "Provider answers that told us to slow down (HTTP 429 or a rate-limit error code)",
            ["source"],
            registry=r,
        )
        self.market_source_active = Gauge(
            "tokenpulse_market_source_active",
            "1 for the provider currently serving token market data",
            ["source"],
            registry=r,
        )
        self.market_failovers = Counter(
            "tokenpulse_market_failovers_total",
            "Switches of the provider serving token market data",
            ["from", "to", "reason"],
            registry=r,
        )

        # --- streams and the Redis bus (§7, §10): api/streams/, bus/redis.py -----------------
        self.bus_delivered = Counter(
            "tokenpulse_bus_delivered_total",
            "Events received from the Redis bus, by topic",
            ["topic"],
            registry=r,
        )
        self.bus_handler_errors = Counter(
            "tokenpulse_bus_handler_errors_total",
            "Bus handlers that raised, by topic (either bus; not a failed publish)",
            ["topic"],
            registry=r,
        )
        self.bus_reconnects = Counter(
            "tokenpulse_bus_reconnects_total",
            "Times the Redis bus listener re-subscribed after losing its connection",
            registry=r,
        )
        self.bus_heartbeat_missed = Counter(
            "tokenpulse_bus_heartbeat_missed_total",
            "Times the Redis bus stopped hearing its own heartbeat and restarted its listener",
            registry=r,
        )
        self.bus_healthy = Gauge(
            "tokenpulse_bus_healthy",
            "1 while this instance hears its own heartbeat through the Redis bus",
            registry=r,
        )
        self.bus_heartbeat_age = Gauge(
            "tokenpulse_bus_heartbeat_age_seconds",
            "Seconds since this instance last heard its own bus heartbeat",
            registry=r,
        )
        self.stream_connections = Gauge(
            "tokenpulse_stream_connections",
            "Open streaming connections by transport",
            ["transport"],
            registry=r,
        )
        self.stream_subscriptions = Gauge(
            "tokenpulse_stream_subscriptions",
            "Stream subscriptions (connection x key) by transport",
            ["transport"],
            registry=r,
        )
        self.stream_messages_sent = Counter(
            "tokenpulse_stream_messages_sent_total",
            "Stream messages written to clients, by transport and event",
            ["transport", "event"],
            registry=r,
        )
        self.stream_messages_conflated = Counter(
            "tokenpulse_stream_messages_conflated_total",
            "Updates merged into a newer pending message for the same client and key",
            ["transport"],
            registry=r,
        )
        self.stream_messages_dropped = Counter(
            "tokenpulse_stream_messages_dropped_total",
            "Pending stream messages discarded (client gone, cut off), by transport and reason",
            ["transport", "reason"],
            registry=r,
        )
        self.stream_send_latency = Histogram(
            "tokenpulse_stream_send_latency_seconds",
            "Time from an update being accepted by the stream hub to its write to a client",
            ["transport"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stream_slow_disconnects = Counter(
            "tokenpulse_stream_slow_client_disconnects_total",
            "Clients cut off because a send blocked longer than the send timeout",
            ["transport"],
            registry=r,
        )
        self.stream_rejected = Counter(
            "tokenpulse_stream_rejected_total",
            "Refused stream connections and client messages, by transport and reason",
            ["transport", "reason"],
            registry=r,
        )
        # --- end of streams and Redis bus metrics ---------------------------------------------

        # --- history store (§5.2–§5.4): store/history/ ---------------------------------------
        self.history_write_batches = Counter(
            "tokenpulse_history_write_batches_total",
            "History write transactions, by table",
            ["table"],
            registry=r,
        )
        self.history_rows_written = Counter(
            "tokenpulse_history_rows_written_total",
            "History rows written, by table and origin (live, backfill)",
            ["table", "origin"],
            registry=r,
        )
        self.history_write_lag = Gauge(
            "tokenpulse_history_write_lag_seconds",
            "Age of the oldest row accepted by the history writer and not yet written",
            registry=r,
        )
        self.history_buffered_rows = Gauge(
            "tokenpulse_history_buffered_rows",
            "Rows waiting in the history writer's buffer",
            registry=r,
        )
        self.history_write_errors = Counter(
            "tokenpulse_history_write_errors_total",
            "History flushes that failed (rows kept in the buffer and retried)",
            registry=r,
        )
        self.history_dropped_rows = Counter(
            "tokenpulse_history_dropped_rows_total",
            "Oldest buffered rows dropped because the history buffer was full, by table",
            ["table"],
            registry=r,
        )
        self.backfill_rows = Counter(
            "tokenpulse_backfill_rows_total",
            "History rows written by backfill, by kind (token, pair)",
            ["kind"],
            registry=r,
        )
        self.backfill_runs = Counter(
            "tokenpulse_backfill_runs_total",
            "Backfill attempts per key, by kind and outcome (filled, complete, failed)",
            ["kind", "outcome"],
            registry=r,
        )
        # --- end of history store metrics ----------------------------------------------------

    def gauge_function(self, gauge: Gauge, labels: dict[str, str], fn: Callable[[], float]) -> None:
        """Make a labelled gauge child compute its value at scrape time."""
        gauge.labels(**labels).set_function(fn)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
