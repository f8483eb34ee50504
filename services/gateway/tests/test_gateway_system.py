"""The gateway in front of the real services (embedded: one process, SQLite, one in-process broker)."""

from __future__ import annotations

import contextlib
import importlib.util
import re
from pathlib import Path

import pytest

from shared.testing import auth, running_app


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


async def test_merged_openapi_of_the_real_services_lists_every_spec_path(tmp_path: Path, spec_paths) -> None:
    missing = [n for n in ("intake", "review", "tally", "awards") if not _importable(f"{n}.app")]
    if missing:
        pytest.fail(f"not available: {', '.join(missing)}")
    from sangkien_cli import build_embedded

    gateway, services = build_embedded(tmp_path, log_json=False)
    async with contextlib.AsyncExitStack() as stack:
        for app in services.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(running_app(gateway))
        doc = (await client.get("/api/v1/openapi.json")).json()
        assert doc["x-missing-services"] == []
        have = {(m.upper(), _shape(p)) for p, item in doc["paths"].items() for m in item}
        wanted = {(m, _shape(p)) for paths in spec_paths.values() for m, p in paths}
        assert wanted - have == set()
        # the composed view over the real services: an unknown id is a 404 from intake, not a 500
        r = await client.get("/api/v1/initiatives/00000000-0000-0000-0000-000000000001", headers=auth("operator"))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        health = (await client.get("/health")).json()
        assert all(d["ok"] for d in health["checks"]["downstreams"].values()), health
