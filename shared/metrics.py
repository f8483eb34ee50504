"""Prometheus metrics of one service, on a registry of its own (embedded mode runs five in one process).

Every metric is also exposed as ``sangkien_<service>_*`` (issue 17: names that say whose they are, units
in the name): the counters are kept once, under the names below that tests and older dashboards know,
and renamed at scrape time (``ServiceNames``), so the request path pays nothing for the second name.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Metric, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "sangkien_http_requests_total", "HTTP requests", ["service", "method", "route", "status"], registry=r
        )
        self.http_latency = Histogram(
            "sangkien_http_request_duration_seconds",
            "HTTP request latency",
            ["service", "method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.events_published = Counter(
            "sangkien_events_published_total", "Events published (confirmed by the broker)", ["type"], registry=r
        )
        self.events_consumed = Counter(
            "sangkien_events_consumed_total", "Events handled and committed", ["type"], registry=r
        )
        self.events_failed = Counter(
            "sangkien_events_failed_total", "Event deliveries whose handler failed", ["type"], registry=r
        )
        self.events_duplicate = Counter(
            "sangkien_events_duplicate_total", "Deliveries skipped because the inbox had them", ["type"], registry=r
        )
        self.events_dead_lettered = Counter(
            "sangkien_events_dead_lettered_total", "Events sent to the dead-letter queue", ["type"], registry=r
        )
        self.outbox_backlog = Gauge(
            "sangkien_outbox_backlog",
            "Outbox rows not yet published (PostgreSQL: the span of their ids, an upper bound)",
            registry=r,
        )
        self.outbox_publish_failures = Counter(
            "sangkien_outbox_publish_failures_total", "Relay attempts that failed", registry=r
        )
        self.named: list[Counter | Gauge | Histogram] = [
            self.http_requests,
            self.http_latency,
            self.events_published,
            self.events_consumed,
            self.events_failed,
            self.events_duplicate,
            self.events_dead_lettered,
            self.outbox_backlog,
            self.outbox_publish_failures,
        ]
        r.register(ServiceNames(self))

    def counter(self, name: str, doc: str, labels: list[str] | None = None) -> Counter:
        made = Counter(name, doc, labels or [], registry=self.registry)
        self.named.append(made)
        return made

    def gauge(self, name: str, doc: str, labels: list[str] | None = None) -> Gauge:
        made = Gauge(name, doc, labels or [], registry=self.registry)
        self.named.append(made)
        return made

    def histogram(
        self, name: str, doc: str, labels: list[str] | None = None, buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> Histogram:
        made = Histogram(name, doc, labels or [], buckets=buckets, registry=self.registry)
        self.named.append(made)
        return made

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ServiceNames(Collector):
    """The service's metrics again under ``sangkien_<service>_*``, with a ``service`` label.

    ``sangkien_http_requests_total`` becomes ``sangkien_intake_http_requests_total``,
    ``intake_initiatives_accepted_total`` becomes ``sangkien_intake_initiatives_accepted_total``; a name
    already of that form is left alone, and the few without a unit get one (``UNITS``)."""

    UNITS = {"outbox_backlog": "outbox_backlog_events", "batch_size": "batch_size_items"}

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []  # no name checks at registration: the names below repeat nothing registered

    def renamed(self, name: str) -> str | None:
        service = self.metrics.service
        if name.startswith(f"sangkien_{service}_"):
            return None
        base = name.removeprefix("sangkien_").removeprefix(f"{service}_")
        return f"sangkien_{service}_{self.UNITS.get(base, base)}"

    def collect(self) -> Iterator[Metric]:
        service = self.metrics.service
        for collector in self.metrics.named:
            for family in collector.collect():
                name = self.renamed(family.name)
                if name is None:
                    continue
                out = Metric(name, family.documentation, family.type, family.unit)
                for sample in family.samples:
                    if sample.name.endswith("_created"):
                        continue  # the generic name carries it; half the cost of a counter's second name
                    labels = sample.labels if "service" in sample.labels else {**sample.labels, "service": service}
                    out.add_sample(name + sample.name[len(family.name) :], labels, sample.value, sample.timestamp)
                yield out
