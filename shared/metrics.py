"""Prometheus metrics of one service, on a registry of its own (embedded mode runs five in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

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

    def counter(self, name: str, doc: str, labels: list[str] | None = None) -> Counter:
        return Counter(name, doc, labels or [], registry=self.registry)

    def gauge(self, name: str, doc: str, labels: list[str] | None = None) -> Gauge:
        return Gauge(name, doc, labels or [], registry=self.registry)

    def histogram(
        self, name: str, doc: str, labels: list[str] | None = None, buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> Histogram:
        return Histogram(name, doc, labels or [], buckets=buckets, registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
