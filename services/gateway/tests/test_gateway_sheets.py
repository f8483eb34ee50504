"""The support page's spreadsheets, composed by the gateway: the template with its sheet of codes, and an
import's failed rows. Intake's refusals come back unchanged, and the fast path does not take these routes."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from gateway.app import create
from gateway.settings import GatewaySettings
from openpyxl import load_workbook

from shared.testing import auth, running_app

sys.path.insert(0, str(Path(__file__).resolve().parent))  # importlib mode: the fakes beside this file
from pages_fakes import World, transports  # noqa: E402

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def test_template_lists_field_and_unit_codes_of_the_callers_subtree() -> None:
    app = create(GatewaySettings(redis_url=None, log_json=False), transports=transports(World()))
    async with running_app(app) as client:
        r = await client.get("/api/v1/imports/template.xlsx", headers=auth("support", "HN-BD"))
        assert r.status_code == 200 and r.headers["content-type"] == XLSX
        book = load_workbook(io.BytesIO(r.content))
        assert book.sheetnames == ["Sáng kiến", "Danh mục mã"]
        rows = list(book["Danh mục mã"].iter_rows(values_only=True))
        assert rows[0] == ("Lĩnh vực: mã", "Lĩnh vực: tên", None, "Đơn vị: mã", "Đơn vị: tên", "Cấp")
        assert [r[0] for r in rows[1:] if r[0]] == ["production", "digital"]
        # the subtree of HN-BD only: itself and its grassroots union, not its sibling HN-CG
        assert [r[3] for r in rows[1:] if r[3]] == ["HN-BD", "HN-BD-001"]
        assert rows[2][5] == "Công đoàn cơ sở"
        # intake decides who may have the template: its refusal is relayed
        r = await client.get("/api/v1/imports/template.xlsx", headers=auth("member", "HN-BD-001"))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        assert (await client.get("/api/v1/imports/template.xlsx")).status_code == 401


async def test_failed_rows_of_an_import_as_xlsx() -> None:
    world = World()
    app = create(GatewaySettings(redis_url=None, log_json=False), transports=transports(world))
    async with running_app(app) as client:
        headers = auth("support", "HN-BD")
        world.import_polls = 5  # the job has finished
        r = await client.get("/api/v1/imports/job-1/errors.xlsx", headers=headers)
        assert r.status_code == 200 and 'filename="loi-nhap-job-1.xlsx"' in r.headers["content-disposition"]
        rows = list(load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))
        assert rows == [
            ("Dòng", "Cột", "Lỗi"),
            (4, "unit_code", "Không tìm thấy đơn vị HN-XX"),
            (9, "title", "Trùng với sáng kiến đã gửi (#1017)"),  # the number, not intake's id
        ]
        r = await client.get("/api/v1/imports/job-9/errors.xlsx", headers=headers)
        assert r.status_code == 404 and r.json()["error"]["message"] == "Không tìm thấy lượt nhập"
        assert (await client.get("/api/v1/imports/job-1/errors.xlsx")).status_code == 401
    app = create(GatewaySettings(redis_url=None, log_json=False, intake_url="http://127.0.0.1:9"), transports={})
    async with running_app(app) as client:
        r = await client.get("/api/v1/imports/job-1/errors.xlsx", headers=auth("support", "HN-BD"))
        assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable"
