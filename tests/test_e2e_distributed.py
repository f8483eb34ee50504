"""Issue 2's skeleton in distributed mode: five uvicorn processes, one PostgreSQL database each,
RabbitMQ (a run-unique prefix) and Redis; everything through the gateway over real HTTP."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import httpx
import pytest

from tests.flow import walking_skeleton
from tests.system import SERVICES, dump_logs, running_system

pytestmark = pytest.mark.integration

# Each under the service's own name: sangkien_<service>_<metric>.
REQUIRED_METRICS = (
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "events_published_total",
    "events_consumed_total",
    "events_failed_total",
    "outbox_backlog_events",
)


async def test_walking_skeleton_across_five_processes_on_rabbitmq_and_postgres(tmp_path: Path) -> None:
    try:
        async with running_system(tmp_path) as system:
            urls = system.urls
            async with httpx.AsyncClient(base_url=urls["gateway"], timeout=30) as client:
                await walking_skeleton(client)
            async with httpx.AsyncClient(timeout=10) as client:
                for name in SERVICES:
                    health = (await client.get(f"{urls[name]}/health")).json()
                    assert health["checks"] == {"database": True, "broker": True, "redis": True}, (name, health)
                    text = (await client.get(f"{urls[name]}/metrics")).text
                    for metric in REQUIRED_METRICS:
                        assert f"sangkien_{name}_{metric}" in text, (name, metric)
                    assert 'route="/health"' in text
                # Every event was published from an outbox and consumed somewhere.
                tally = (await client.get(f"{urls['tally']}/metrics")).text
                assert 'sangkien_tally_events_consumed_total{service="tally",type="initiative.submitted"} 1.0' in tally
                assert 'sangkien_tally_events_consumed_total{service="tally",type="initiative.reviewed"} 1.0' in tally
                intake = (await client.get(f"{urls['intake']}/metrics")).text
                published = 'sangkien_intake_events_published_total{service="intake",type="initiative.submitted"} 1.0'
                assert published in intake
                gateway = (await client.get(f"{urls['gateway']}/metrics")).text
                assert "sangkien_gateway_http_requests_total{" in gateway
            await _operator_view(urls["gateway"])
    except BaseException:
        print(dump_logs(tmp_path, 4000))
        raise


async def _operator_view(gateway: str) -> None:
    """``sangkien ops status`` through the real gateway: each service's queue as RabbitMQ reports it."""
    import argparse
    import json

    import sangkien_ops
    from shared.testing import token

    parser = argparse.ArgumentParser()
    sangkien_ops.add_arguments(parser)
    args = parser.parse_args(["--url", gateway, "--token", token("operator", "VN"), "--json", "status"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert await sangkien_ops.call(args) == 0
    for status in json.loads(out.getvalue()):
        queue = status["queue"]
        assert queue["broker_reached"] and queue["consumers"] == 1, status
        assert status["dead_letters"] == 0 and status["db_pool"]["max"] == 20, status
