"""Prometheus metrics of one service, on a registry of its own (embedded mode runs five in one process).

Every metric of a service is named ``sangkien_<service>_*`` (units in the name) and every sample carries
a ``service`` label, so one selector (``{__name__=~"sangkien_(intake|review)_http_requests_total"}``)
gathers a figure across services and ``by (service)`` tells them apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Metric, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

__all__ = ["CONTENT_TYPE_LATEST", "LATENCY_BUCKETS", "ServiceMetrics"]

M = TypeVar("M", Counter, Gauge, Histogram)


class ServiceMetrics:
    """The service's metrics. ``counter``/``gauge``/``histogram`` answer the metric already made under
    that name, so a service started again on the same app (tests, the embedded run) finds its own."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.prefix = f"sangkien_{service}_"
        self.registry = CollectorRegistry(auto_describe=True)
        self._made: dict[str, Counter | Gauge | Histogram] = {}
        self.registry.register(ServiceLabel(service, self._made))
        p = self.prefix
        # The HTTP metrics carry the service label themselves (ObservabilityMiddleware sets it).
        self.http_requests = self.counter(
            f"{p}http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
        )
        self.http_latency = self.histogram(
            f"{p}http_request_duration_seconds", "HTTP request latency", ["service", "method", "route"]
        )
        self.events_published = self.counter(
            f"{p}events_published_total", "Events published (confirmed by the broker)", ["type"]
        )
        self.events_consumed = self.counter(f"{p}events_consumed_total", "Events handled and committed", ["type"])
        self.events_failed = self.counter(f"{p}events_failed_total", "Event deliveries whose handler failed", ["type"])
        self.events_duplicate = self.counter(
            f"{p}events_duplicate_total", "Deliveries skipped because the inbox had them", ["type"]
        )
        self.events_redelivered = self.counter(
            f"{p}events_redelivered_total", "Deliveries made again (an earlier one was not settled)", ["type"]
        )
        self.events_dead_lettered = self.counter(
            f"{p}events_dead_lettered_total", "Events sent to the dead-letter queue", ["type"]
        )
        self.outbox_backlog = self.gauge(
            f"{p}outbox_backlog_events",
            "Outbox rows not yet published (PostgreSQL: the span of their ids, an upper bound)",
        )
        self.outbox_publish_failures = self.counter(f"{p}outbox_publish_failures_total", "Relay attempts that failed")

    def counter(self, name: str, doc: str, labels: list[str] | None = None) -> Counter:
        return self._make(Counter, name, lambda: Counter(name, doc, labels or [], registry=None))

    def gauge(self, name: str, doc: str, labels: list[str] | None = None) -> Gauge:
        return self._make(Gauge, name, lambda: Gauge(name, doc, labels or [], registry=None))

    def histogram(
        self, name: str, doc: str, labels: list[str] | None = None, buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> Histogram:
        return self._make(Histogram, name, lambda: Histogram(name, doc, labels or [], buckets=buckets, registry=None))

    def _make(self, kind: type[M], name: str, make: Callable[[], M]) -> M:
        if not name.startswith(self.prefix):
            raise ValueError(f"metric {name!r} of {self.service} must be named {self.prefix}*")
        existing = self._made.get(name)
        if existing is None:
            existing = self._made[name] = make()
        if not isinstance(existing, kind):
            raise ValueError(f"metric {name!r} already exists as a {type(existing).__name__}")
        return existing

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ServiceLabel(Collector):
    """The service's metrics with ``service="<name>"`` on every sample (prometheus_client has no constant
    labels): added at scrape time, so the request path and the consumers pay nothing for it."""

    def __init__(self, service: str, metrics: dict[str, Counter | Gauge | Histogram]) -> None:
        self.service = service
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []  # metrics are added while the service starts; no name checks at registration

    def collect(self) -> Iterator[Metric]:
        for collector in list(self.metrics.values()):
            for family in collector.collect():
                out = Metric(family.name, family.documentation, family.type, family.unit)
                for sample in family.samples:
                    labels = sample.labels if "service" in sample.labels else {"service": self.service, **sample.labels}
                    out.add_sample(sample.name, labels, sample.value, sample.timestamp, sample.exemplar)
                yield out
