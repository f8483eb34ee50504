"""Issue 2's skeleton in embedded mode: the five apps in one process, SQLite, the in-process bus."""

from __future__ import annotations

from pathlib import Path

from tests.flow import embedded_system, walking_skeleton


async def test_walking_skeleton_embedded(tmp_path: Path) -> None:
    async with embedded_system(tmp_path) as (client, _apps):
        await walking_skeleton(client)
        health = await client.get("/health")
        assert health.status_code == 200
