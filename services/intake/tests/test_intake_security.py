"""Issue 14 in intake: scope that fails closed (5), CSV errors as 422 (7), uploads bombs (3), reads of
SPEC §6 only (10), titles that show (11)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from intake.adapters.imports import COLUMNS

from shared.testing import auth, xlsx_bytes


async def _submit(world: Any, kit: Any, **over: Any) -> str:
    r = await world.client.post("/api/v1/initiatives", json=kit.body(**over), headers=kit.support("TH"))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_a_subtree_token_without_unit_or_with_another_case_lists_nothing(world: Any, kit: Any) -> None:
    await _submit(world, kit)
    listing = "/api/v1/initiatives?campaign=1M"
    assert len((await world.client.get(listing, headers=kit.support("TH"))).json()["items"]) == 1
    for headers in (auth("support", None, sub="s-none"), auth("support", "th", sub="s-lower"), auth("reviewer", "")):
        r = await world.client.get(listing, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["items"] == []
    r = await world.client.get(listing, headers=auth("member", None, sub="m-none"))
    assert r.status_code == 200 and r.json()["items"] == []


async def test_a_unit_admin_does_not_read_initiatives(world: Any, kit: Any) -> None:
    iid = await _submit(world, kit)
    admin = auth("unit_admin", "TH", sub="admin-th")
    r = await world.client.get(f"/api/v1/initiatives/{iid}", headers=admin)
    assert r.status_code in (403, 404) and "solution" not in r.text
    r = await world.client.get("/api/v1/initiatives?campaign=1M", headers=admin)
    assert r.status_code == 403 and "items" not in r.json()


@pytest.mark.parametrize(
    "title",
    [
        "\x00\x00\x00\x00\x00\x00",
        "\u200b\u200b\u200b\u200b\u200b\u200b",
        "\u200b \u200c \u200d \ufeff \u2060 ",
        "ab\x00cdefg",
    ],
)
async def test_titles_of_nuls_or_zero_width_characters_are_refused(world: Any, kit: Any, title: str) -> None:
    r = await world.client.post("/api/v1/initiatives", json=kit.body(title=title), headers=kit.member())
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "title"
    batch = {"items": [kit.body(title=title), kit.body(title="Một tên hợp lệ")]}
    r = await world.client.post("/api/v1/initiatives/batch", json=batch, headers=kit.member())
    assert r.status_code == 200, r.text
    first, second = r.json()["items"]
    assert first["error"]["details"][0]["field"] == "title" and second["seq"] >= 1


async def test_a_nul_in_any_text_is_a_422_not_a_database_error(world: Any, kit: Any) -> None:
    for over in ({"solution": "a\x00b"}, {"authors": [{"member_id": "M-0001", "full_name": "A\x00"}]}):
        r = await world.client.post("/api/v1/initiatives", json=kit.body(**over), headers=kit.member())
        assert r.status_code == 422, r.text


async def _import(world: Any, kit: Any, name: str, content: bytes) -> Any:
    files = {"file": (name, content, "application/octet-stream")}
    return await world.client.post("/api/v1/imports", data={"campaign": "1M"}, files=files, headers=kit.support())


async def test_csv_without_delimiter_or_with_a_200kb_field_is_a_422(world: Any, kit: Any) -> None:
    r = await _import(world, kit, "x.csv", b"chi_mot_cot\ngia_tri\n")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "file", r.text
    header = ",".join(COLUMNS).encode()
    huge = header + b"\nTH-01-001,production," + b"x" * 200_000 + b",,,,,2022-03-01,,M-1,A\n"
    r = await _import(world, kit, "y.csv", huge)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "file", r.text


async def test_an_xlsx_declaring_a_huge_sheet_is_refused_quickly(world: Any, kit: Any) -> None:
    cpu = time.process_time()  # this process's CPU: the service's own, not the worker's
    r = await _import(
        world, kit, "bomb.xlsx", xlsx_bytes([list(COLUMNS), *([[]] * 19998), ["x"]], dimension="A1:XFD20000")
    )
    assert r.status_code == 422, r.text
    assert "cột" in r.json()["error"]["details"][0]["message"]
    assert time.process_time() - cpu < 1.0  # the same sheet took 13 s of this process's CPU before


async def test_empty_rows_count_toward_the_row_limit(tmp_path: Any, kit: Any) -> None:
    async with kit.world_on(tmp_path / "intake.db", import_max_rows=3) as world:
        header = ",".join(COLUMNS).encode()
        r = await _import(world, kit, "z.csv", header + b"\n" + b",,,,,,,,,,\n" * 5)
        assert r.status_code == 422 and "quá 3 dòng" in r.json()["error"]["details"][0]["message"], r.text


@pytest.mark.integration
async def test_concurrent_batches_never_starve_the_pool(kit: Any) -> None:
    """Finding 8: each batch holds two pooled connections; 30 at once used to take the whole pool (20) and
    wait on each other until its 30 s timeout, then answer 500. Now they queue for a slot and all succeed."""
    from shared.testing import pg_database

    async with pg_database() as url, kit.world_on(url) as w:

        async def batch(n: int) -> Any:
            items = [kit.body(title=f"Lô song song {n}-{i}") for i in range(20)]
            return await w.client.post("/api/v1/initiatives/batch", json={"items": items}, headers=kit.support("TH"))

        started = time.perf_counter()
        answers = await asyncio.gather(*(batch(n) for n in range(30)))
        elapsed = time.perf_counter() - started
        assert [r.status_code for r in answers] == [200] * 30
        assert sum(r.json()["accepted"] for r in answers) == 600
        assert elapsed < 20, elapsed


async def test_a_batch_that_finds_no_slot_answers_503_not_500(world: Any, kit: Any) -> None:
    slots = world.ctx.runtime.batch_slots
    held = [await slots.acquire() for _ in range(world.ctx.settings.batch_writers)]
    world.ctx.settings.batch_wait_s = 0.2
    try:
        r = await world.client.post("/api/v1/initiatives/batch", json={"items": [kit.body()]}, headers=kit.member())
        assert r.status_code == 503 and r.headers["retry-after"], r.text
        assert r.json()["error"]["code"] == "busy"
    finally:
        for _ in held:
            slots.release()
    r = await world.client.post("/api/v1/initiatives/batch", json={"items": [kit.body()]}, headers=kit.member())
    assert r.status_code == 200 and r.json()["accepted"] == 1
