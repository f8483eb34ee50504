"""The unit pickers' search (issue 16): accents optional, code or name, only the caller's subtree, bounded,
on both dialects; and migration 0004 fills the search key of units stored before it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import inspect, select, text
from tally.adapters.orm import units
from tally.app import DEFINITION
from tally_testkit import OP

from shared.db import make_engine, run_migrations
from shared.testing import auth, pg_database


async def _codes(client: httpx.AsyncClient, q: str, headers: dict[str, str], **params: object) -> list[str]:
    r = await client.get("/api/v1/units", params={"q": q, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return [u["code"] for u in r.json()["items"]]


async def _search_finds_by_folded_name_and_code(client: httpx.AsyncClient) -> None:
    # "thanh hoa" without accents finds "LĐLĐ tỉnh Thanh Hóa"; "đông sơn" and "dong son" alike.
    assert await _codes(client, "thanh hoa", OP) == ["TH"]
    assert await _codes(client, "dong son", OP) == ["TH-01"]
    assert await _codes(client, "ĐÔNG SƠN", OP) == ["TH-01"]
    # Every word must match, in any order; the higher level first, then by code.
    assert await _codes(client, "cong ty cdcs", OP) == ["TH-01-001", "TH-01-002"]
    # An exact code comes before the units whose codes merely contain it.
    assert (await _codes(client, "TH-01", OP))[:3] == ["TH-01", "TH-01-001", "TH-01-002"]
    # The operator searches the whole tree.
    assert await _codes(client, "cdcs", OP) == ["HN-001", "TH-01-001", "TH-01-002"]


async def test_search_is_accent_insensitive_on_code_and_name(planned: tuple[FastAPI, httpx.AsyncClient]) -> None:
    await _search_finds_by_folded_name_and_code(planned[1])


@pytest.mark.integration
async def test_search_is_accent_insensitive_on_postgresql(planned_pg: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _app, client = planned_pg
    await _search_finds_by_folded_name_and_code(client)
    # The same units stay findable after a rename (the key follows the name).
    r = await client.put(
        "/api/v1/units",
        json=[{"code": "TH-01-002", "name": "CĐCS Nhà máy Bỉm Sơn", "kind": "grassroots", "parent_code": "TH-01"}],
        headers=OP,
    )
    assert r.status_code == 200
    assert await _codes(client, "bim son", OP) == ["TH-01-002"]
    assert "TH-01-002" not in await _codes(client, "cong ty", OP)


async def test_search_stays_inside_the_callers_subtree(planned: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _app, client = planned
    support_th = auth("support", "TH-01")
    assert await _codes(client, "cdcs", support_th) == ["TH-01-001", "TH-01-002"]
    # An empty query lists the subtree from its top.
    assert await _codes(client, "", support_th) == ["TH-01", "TH-01-001", "TH-01-002", "TH-01-001-A"]
    # A unit elsewhere is not found, and the answer says it exists outside the scope ...
    r = await client.get("/api/v1/units", params={"q": "nha may z"}, headers=support_th)
    assert r.json() == {"items": [], "more": False, "outside_scope": True}
    # ... which is not the answer for a unit that exists nowhere.
    r = await client.get("/api/v1/units", params={"q": "khong co dau"}, headers=support_th)
    assert r.json() == {"items": [], "more": False, "outside_scope": False}
    # A subtree role without a unit finds nothing (fails closed); a signed-out caller is refused.
    assert await _codes(client, "cdcs", auth("unit_admin", None)) == []
    assert await _codes(client, "", auth("support", "XX-9")) == []  # a unit the tree does not know
    assert (await client.get("/api/v1/units", params={"q": "cdcs"})).status_code == 401


async def test_search_is_bounded_and_refuses_bad_input(planned: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _app, client = planned
    r = await client.get("/api/v1/units", params={"q": "", "limit": 2}, headers=OP)
    body = r.json()
    assert [u["code"] for u in body["items"]] == ["VN", "HN"] and body["more"] is True
    assert body["items"][1]["path"] == ["VN", "HN"] and body["items"][1]["kind"] == "province"
    for params in ({"limit": 0}, {"limit": 51}, {"q": "x" * 101}, {"q": "a\x00b"}, {"limit": "many"}):
        r = await client.get("/api/v1/units", params=params, headers=OP)
        assert r.status_code == 422, params
        assert r.json()["error"]["code"] == "validation_error"
    # Wildcards are ordinary characters: "%" does not match everything.
    assert await _codes(client, "%", OP) == await _codes(client, "", OP)
    assert await _codes(client, "_x", OP) == ["TH-01-001"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/tally.db"
        return
    async with pg_database() as url:
        yield url


async def test_0004_fills_the_search_key_of_stored_units(database_url: str) -> None:
    engine = await make_engine(database_url)
    try:
        await run_migrations(engine, DEFINITION.migrations, revision="0003")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO units (code, name, kind, parent_code, path, depth, revision)"
                    " VALUES ('TH', 'LĐLĐ tỉnh Thanh Hóa', 'province', NULL, '/TH/', 0, 1)"
                )
            )
        await run_migrations(engine, DEFINITION.migrations)
        async with engine.connect() as conn:
            key = (await conn.execute(select(units.c.search_key).where(units.c.code == "TH"))).scalar_one()
            assert key == "th ldld tinh thanh hoa"
            if engine.dialect.name == "postgresql":
                found = await conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'units'"))
                indexes = {name: definition for name, definition in found.all()}
                assert "gin_trgm_ops" in indexes["ix_units_search_key_trgm"]
                assert "varchar_pattern_ops" in indexes["ix_units_path_prefix"]
                assert "ix_units_depth_code" in indexes
        await run_migrations(engine, DEFINITION.migrations, revision="0003", down=True)
        async with engine.connect() as conn:
            columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("units")})
            assert "search_key" not in columns and "path" in columns
    finally:
        await engine.dispose()
