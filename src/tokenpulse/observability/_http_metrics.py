"""HTTP request metrics by route template: plain dicts on the hot path, families at scrape."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


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
        # (method, route, status) -> [count] (a list, so a route may keep its cell: cells())
        self.requests: dict[tuple[str, str, str], list[int]] = {}
        # (method, route) -> [per-bucket counts…, +Inf count, sum]
        self.durations: dict[tuple[str, str], list[float]] = {}
        # route -> [count, request bytes, response bytes]
        self.sizes: dict[str, list[int]] = {}

    def observe(
        self, method: str, route: str, status: int, seconds: float, req_size: int, resp_size: int
    ) -> None:
        count, timing, sizes = self.cells(method, route, status)
        count[0] += 1
        timing[bisect_left(self.buckets, seconds)] += 1
        timing[-1] += seconds
        sizes[0] += 1
        sizes[1] += req_size
        sizes[2] += resp_size

    def cells(
        self, method: str, route: str, status: int
    ) -> tuple[list[int], list[float], list[int]]:
        """Where one (method, route, status) is counted: ``[count]``, the duration buckets and
        sum, ``[count, request bytes, response bytes]``. A direct route keeps them and counts
        a request with a few list increments (what :meth:`observe` does)."""
        key = (method, route, str(status))
        count = self.requests.get(key)
        if count is None:
            count = self.requests[key] = [0]
        timing = self.durations.get((method, route))
        if timing is None:
            timing = self.durations[(method, route)] = [0.0] * (len(self.buckets) + 2)
        sizes = self.sizes.get(route)
        if sizes is None:
            sizes = self.sizes[route] = [0, 0, 0]
        return count, timing, sizes

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "tokenpulse_http_requests",
            "HTTP requests by route template, method and status",
            labels=["method", "route", "status"],
        )
        for labels, count in sorted(self.requests.items()):
            requests.add_metric(list(labels), count[0])
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
        return self.requests.get((method, route, str(status)), [0])[0]


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)
