"""A labelled counter for the request path: a plain int per label set, exported at scrape.

prometheus_client's ``Counter.inc`` takes a lock and checks its argument on every call; a
counter bumped on every request (the rate limiter's decisions) needs neither, because
increments and scrapes all run on the event loop thread.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class PlainChild:
    """One label set's count."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (not checked: callers add positive constants)."""
        self.value += amount


class PlainCounter(Collector):
    """``name_total{labels}``, like a ``prometheus_client.Counter`` without ``_created``."""

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...]) -> None:
        self.name = name.removesuffix("_total")
        self.documentation = documentation
        self.labelnames = labelnames
        self._children: dict[tuple[str, ...], PlainChild] = {}

    def labels(self, *values: str, **named: str) -> PlainChild:
        """The child of one label set (keep it: this lookup is not for the hot path)."""
        if named:
            values = tuple(named[name] for name in self.labelnames)
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
        key = tuple(str(value) for value in values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = PlainChild()
        return child

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in sorted(self._children.items()):
            family.add_metric(list(values), child.value)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
