"""Issue 2's skeleton in embedded mode: the five apps in one process, SQLite, the in-process bus."""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx

from sangkien_cli import build_embedded
from tests.flow import walking_skeleton


async def test_walking_skeleton_embedded(tmp_path: Path) -> None:
    gateway, services = build_embedded(tmp_path, log_json=False)
    async with contextlib.AsyncExitStack() as stack:
        for app in (*services.values(), gateway):
            await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=gateway, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=30) as client:
            await walking_skeleton(client)
            health = await client.get("/health")
            assert health.status_code == 200
