"""Metrics of failure behaviour (SPEC §10, §13): stream resyncs after a bus outage, ingestion
without the lock, rows that could not be written at shutdown."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class FaultMetrics:
    """What an operator watches when a store blinks or a leader changes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.stream_stale_signals = Counter(
            "tokenpulse_stream_stale_signals_total",
            "Times this instance flagged every stream key stale because the bus went down",
            registry=r,
        )
        self.stream_resyncs = Counter(
            "tokenpulse_stream_resyncs_total",
            "Times every stream subscriber got a fresh snapshot because the bus came back",
            registry=r,
        )
        self.ingesting_without_lock = Gauge(
            "tokenpulse_ingesting_without_lock",
            "1 while this instance ingests although it cannot hold the ingest lock "
            "(Redis unreachable: another instance may ingest too)",
            registry=r,
        )
        self.warm_start_values = Counter(
            "tokenpulse_warm_start_values_total",
            "Latest values loaded from Redis before reporting ready, by kind",
            ["kind"],
            registry=r,
        )
        self.shutdown_unwritten_rows = Counter(
            "tokenpulse_shutdown_unwritten_rows_total",
            "History rows still buffered when shutdown ran out of time, by table",
            ["table"],
            registry=r,
        )
