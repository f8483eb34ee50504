"""Imports: CSV and XLSX with Vietnamese headers, per-row errors, the template, and resume after a stop."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

from intake.adapters.imports import COLUMNS
from intake.adapters.orm import import_rows, initiatives
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from shared.testing import auth, eventually

HEADERS = list(COLUMNS)


def _row(title: str, **over: str) -> list[str]:
    values = {
        "Đơn vị": "TH-01-001",
        "Lĩnh vực": "Sản xuất kinh doanh",
        "Tên sáng kiến": title,
        "Thực trạng": "Thực trạng",
        "Giải pháp": f"Giải pháp cho {title}",
        "Hiệu quả": "Hiệu quả",
        "Giá trị làm lợi (VNĐ)": "1.500.000",
        "Ngày áp dụng": "01/03/2022",
        "Mật": "",
        "Mã đoàn viên": "M-0001; M-0002",
        "Họ và tên": "Nguyễn Văn A; Trần Thị B",
    } | over
    return [values[h] for h in HEADERS]


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADERS)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


async def _wait_done(client: Any, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {}

    async def done() -> bool:
        result.update((await client.get(f"/api/v1/imports/{job_id}", headers=headers)).json())
        return result.get("status") == "done"

    await eventually(done, timeout_s=30)
    return result


async def test_csv_import_reports_per_row_errors(world: Any, kit: Any) -> None:
    rows = [
        _row("Sáng kiến nhập 1"),
        _row("abc"),
        _row("Sáng kiến nhập 3", **{"Ngày áp dụng": "31/02/2022"}),
        _row("Sáng kiến nhập 4", **{"Đơn vị": "HN-01-001"}),
        _row("Sáng kiến nhập 5", **{"Giá trị làm lợi (VNĐ)": "nhiều"}),
        _row("Sáng kiến nhập 1"),
        _row("Sáng kiến mật", **{"Mật": "x"}),
        _row("Sáng kiến nhập 8", **{"Lĩnh vực": "safety", "Mã đoàn viên": "M-0003", "Họ và tên": "Lê C"}),
    ]
    headers = kit.support("TH")
    files = {"file": ("sang-kien.csv", _csv(rows), "text/csv")}
    r = await world.client.post("/api/v1/imports", data={"campaign": "1M"}, files=files, headers=headers)
    assert r.status_code == 202, r.text
    job = await _wait_done(world.client, r.json()["id"], headers)
    assert (job["total"], job["done"], job["failed"]) == (8, 2, 6)
    fields: dict[int, set[str]] = {}
    for e in job["errors"]:
        fields.setdefault(e["row"], set()).add(e["field"])
    assert fields == {
        3: {"Tên sáng kiến"},
        4: {"Ngày áp dụng"},
        5: {"Đơn vị"},
        6: {"Giá trị làm lợi (VNĐ)"},
        7: {"Tên sáng kiến"},  # an exact duplicate of row 2
        8: {"Thực trạng", "Giải pháp"},  # a confidential row may not carry that text
    }
    assert "Trùng" in next(e["message"] for e in job["errors"] if e["row"] == 7)
    assert all(e["message"] for e in job["errors"])
    # Another support team does not see the job.
    assert (await world.client.get(f"/api/v1/imports/{job['id']}", headers=kit.support("HN"))).status_code == 404
    listed = (await world.client.get("/api/v1/initiatives?limit=200", headers=headers)).json()["items"]
    assert {i["title"] for i in listed} == {"Sáng kiến nhập 1", "Sáng kiến nhập 8"}
    assert next(i for i in listed if i["title"] == "Sáng kiến nhập 1")["expected_benefit_vnd"] == 1_500_000
    assert (
        'sangkien_intake_import_rows_total{outcome="done",service="intake"} 2.0'
        in (await world.client.get("/metrics")).text
    )


async def test_xlsx_import_and_template(world: Any, kit: Any) -> None:
    headers = kit.support("TH")
    r = await world.client.get("/api/v1/imports/template.xlsx", headers=headers)
    assert r.status_code == 200
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert [c.value for c in sheet[1]] == HEADERS
    assert (await world.client.get("/api/v1/imports/template.xlsx", headers=kit.member())).status_code == 403

    book = Workbook()
    ws = book.active
    ws.append(HEADERS)
    ws.append(_row("Sáng kiến từ Excel"))
    ws.append(_row("Sáng kiến lỗi lĩnh vực", **{"Lĩnh vực": "Nấu ăn"}))
    out = io.BytesIO()
    book.save(out)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    files = {"file": ("sk.xlsx", out.getvalue(), xlsx)}
    r = await world.client.post("/api/v1/imports", data={"campaign": "1M"}, files=files, headers=headers)
    assert r.status_code == 202
    job = await _wait_done(world.client, r.json()["id"], headers)
    assert (job["done"], job["failed"]) == (1, 1)
    assert job["errors"] == [{"row": 3, "field": "Lĩnh vực", "message": "Lĩnh vực không thuộc chiến dịch"}]


async def test_bad_files_and_roles_are_refused(world: Any, kit: Any) -> None:
    c = world.client
    files = {"file": ("x.csv", b"Ten,Khac\n1,2\n", "text/csv")}
    r = await c.post("/api/v1/imports", data={"campaign": "1M"}, files=files, headers=kit.support())
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "file"
    r = await c.post("/api/v1/imports", data={"campaign": "NOPE"}, files=files, headers=kit.support())
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "campaign"
    assert (
        await c.post("/api/v1/imports", data={"campaign": "1M"}, files=files, headers=kit.member())
    ).status_code == 403
    assert (await c.get("/api/v1/imports/nope", headers=auth("operator", None))).status_code == 404


async def test_import_resumes_after_a_stop_without_creating_any_row_twice(tmp_path: Path, kit: Any) -> None:
    db = tmp_path / "resume.db"
    total = 2000
    rows = [_row(f"Sáng kiến hàng loạt {i}") for i in range(total)]
    headers = kit.support("TH")
    async with kit.world_on(db, import_chunk_rows=5) as first:
        r = await first.client.post(
            "/api/v1/imports",
            data={"campaign": "1M"},
            files={"file": ("a.csv", _csv(rows), "text/csv")},
            headers=headers,
        )
        job_id = r.json()["id"]

        async def partly_done() -> bool:
            job = (await first.client.get(f"/api/v1/imports/{job_id}", headers=headers)).json()
            return bool(job["done"] >= 20)

        await eventually(partly_done, interval_s=0.005)
        # Leaving the lifespan cancels the worker wherever it is, even inside a chunk's transaction.
    async with kit.world_on(db, import_chunk_rows=5) as second:
        stopped_at = (await second.client.get(f"/api/v1/imports/{job_id}", headers=headers)).json()["done"]
        assert 20 <= stopped_at < total, "the first app should have stopped mid-job"
        job = await _wait_done(second.client, job_id, headers)
        assert (job["done"], job["failed"]) == (total, 0)
        async with second.ctx.engine.connect() as conn:
            created = (await conn.execute(select(func.count()).select_from(initiatives))).scalar_one()
            distinct_links = (
                await conn.execute(select(func.count(func.distinct(import_rows.c.initiative_id))))
            ).scalar_one()
            seqs = (await conn.execute(select(initiatives.c.seq))).scalars().all()
        assert created == distinct_links == total
        assert sorted(seqs) == list(range(1, total + 1))
    await asyncio.sleep(0)
