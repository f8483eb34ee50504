"""``sangkien migrate <service> [--wait]``: what the Kubernetes migration Job runs, and what each
Deployment's init container waits on (deploy/k8s), against a real PostgreSQL database."""

from __future__ import annotations

import asyncpg
import pytest

from sangkien_cli import migrate
from shared.testing import pg_database

pytestmark = pytest.mark.integration


async def test_migrate_then_wait_sees_the_head(monkeypatch: pytest.MonkeyPatch) -> None:
    async with pg_database() as url:
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("ENVIRONMENT", "development")
        assert await migrate("awards", wait=True, timeout_s=0) == 1  # nothing migrated yet: still waiting
        assert await migrate("awards") == 0
        assert await migrate("awards", wait=True, timeout_s=5) == 0
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            assert await conn.fetchval("SELECT count(*) FROM alembic_version") == 1
            assert await conn.fetchval("SELECT to_regclass('outbox') IS NOT NULL")
        finally:
            await conn.close()
