"""The gateway's metrics: the shared per-route HTTP metrics plus downstream and rate-limit figures."""

from __future__ import annotations

from shared.metrics import ServiceMetrics


class GatewayMetrics:
    def __init__(self) -> None:
        self.base = ServiceMetrics("gateway")
        self.downstream_latency = self.base.histogram(
            "sangkien_gateway_downstream_seconds", "Time spent in a downstream call", ["downstream"]
        )
        self.downstream_failures = self.base.counter(
            "sangkien_gateway_downstream_failures_total", "Downstream calls that failed", ["downstream", "reason"]
        )
        self.rate_limited = self.base.counter("sangkien_gateway_rate_limited_total", "Requests refused with 429")
        self.ratelimit_fallback = self.base.counter(
            "sangkien_gateway_ratelimit_fallback_total", "Rate-limit decisions taken in-process because Redis was down"
        )
        self.composed_missing = self.base.counter(
            "sangkien_gateway_composed_missing_total", "Composed views answered without a part", ["view", "part"]
        )
