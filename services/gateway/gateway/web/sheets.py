"""Spreadsheets the support page offers, composed by the gateway: the import template with a sheet of the
valid field and unit codes, and the rows of an import that failed. Intake owns the template and the job (and
checks who may read them); tally gives the campaign's fields and the units of the caller's subtree."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from gateway.adapters.downstream import DownstreamUnavailable
from gateway.api.deps import ContextDep, PrincipalDep
from gateway.api.routes.compose import Part, _deadline, _json
from gateway.api.routes.proxy import unavailable
from shared.http import ApiError, JsonResponse

router = APIRouter(tags=["composed"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_UNITS = 2000  # units listed in the template's code sheet
MAX_UNIT_CALLS = 60
KIND_VI = {
    "national": "Toàn quốc",
    "province": "Tỉnh, thành phố",
    "sector": "Công đoàn ngành",
    "district": "Huyện, ngành",
    "grassroots": "Công đoàn cơ sở",
    "department": "Công đoàn bộ phận",
}


def _relay(resp: Any) -> Response:
    """Intake's refusal (401/403/404/422) as it gave it."""
    return JsonResponse(resp.json(), resp.status_code)


async def _units_below(part: Part, root: str) -> list[dict[str, Any]]:
    """The root and its descendants, breadth first, bounded in units and calls (only grassroots and
    departments take initiatives, but the levels above help a reader find them)."""
    out: list[dict[str, Any]] = []
    queue, calls = [root], 0
    while queue and calls < MAX_UNIT_CALLS and len(out) < MAX_UNITS:
        batch, queue = queue[:8], queue[8:]
        calls += len(batch)
        for unit in await asyncio.gather(*(part.get("tally", f"/api/v1/units/{code}") for code in batch)):
            doc = _json(unit)
            if doc is None:
                continue
            if not out:
                out.append(doc)
            for child in doc.get("children") or []:
                out.append(child)
                if child.get("kind") not in ("grassroots", "department"):
                    queue.append(child["code"])
    return out[:MAX_UNITS]


def _with_codes(template: bytes, fields: list[dict[str, Any]], units: list[dict[str, Any]]) -> bytes:
    """Blocking: the template with a sheet listing the codes to type in its columns."""
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(template))
    sheet = book.create_sheet("Danh mục mã")
    sheet.append(["Lĩnh vực: mã", "Lĩnh vực: tên", "", "Đơn vị: mã", "Đơn vị: tên", "Cấp"])
    rows = max(len(fields), len(units))
    for i in range(rows):
        f = fields[i] if i < len(fields) else {}
        u = units[i] if i < len(units) else {}
        sheet.append(
            [
                f.get("code", ""),
                f.get("name", ""),
                "",
                u.get("code", ""),
                u.get("name", ""),
                KIND_VI.get(u.get("kind") or "", u.get("kind") or ""),
            ]
        )
    for letter, width in zip("ABCDEF", (18, 36, 2, 18, 44, 18), strict=True):
        sheet.column_dimensions[letter].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
MAX_LOOKUPS = 50


async def _with_numbers(part: Part, errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Intake names the earlier initiative of a duplicate row by its id: write its number instead (as the
    caller may read it; an initiative out of the caller's scope keeps its id)."""
    ids = list(dict.fromkeys(m.group(0) for e in errors if (m := _UUID.search(str(e.get("message") or "")))))
    found = await asyncio.gather(*(part.get("intake", f"/api/v1/initiatives/{i}") for i in ids[:MAX_LOOKUPS]))
    seqs = {i: (_json(r) or {}).get("seq") for i, r in zip(ids, found, strict=False)}
    out = []
    for e in errors:
        m = _UUID.search(str(e.get("message") or ""))
        seq = seqs.get(m.group(0)) if m else None
        out.append({**e, "message": str(e["message"]).replace(m.group(0), f"#{seq}")} if m and seq else e)
    return out


def _errors_book(job: dict[str, Any]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Dòng lỗi"
    sheet.append(["Dòng", "Cột", "Lỗi"])
    for e in job.get("errors") or []:
        sheet.append([e.get("row"), e.get("field") or "", e.get("message") or ""])
    for letter, width in zip("ABC", (8, 24, 70), strict=True):
        sheet.column_dimensions[letter].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _unavailable() -> ApiError:
    return unavailable(DownstreamUnavailable("intake", "unavailable"))


def _download(content: bytes, filename: str) -> Response:
    return Response(content, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get(
    "/api/v1/imports/template.xlsx",
    response_class=Response,
    responses={200: {"description": "Mẫu nhập sáng kiến, với danh sách mã hợp lệ (XLSX)", "content": {XLSX: {}}}},
)
async def import_template(request: Request, ctx: ContextDep, principal: PrincipalDep) -> Response:
    """Intake's template, plus a sheet of the campaign's field codes and the units of the caller's subtree."""
    part = Part(ctx, request, _deadline(ctx) + 3.0)
    template = await part.get("intake", "/api/v1/imports/template.xlsx")
    if template is None:
        raise _unavailable()
    if template.status_code != 200:
        return _relay(template)
    campaign = _json(await part.get("tally", f"/api/v1/campaigns/{ctx.settings.demo_campaign}")) or {}
    units = await _units_below(part, principal.unit) if principal.unit else []
    content = await asyncio.to_thread(_with_codes, template.content, campaign.get("fields") or [], units)
    return _download(content, "mau-nhap-sang-kien.xlsx")


@router.get(
    "/api/v1/imports/{job_id}/errors.xlsx",
    response_class=Response,
    responses={200: {"description": "Các dòng nhập lỗi, để sửa và nhập lại (XLSX)", "content": {XLSX: {}}}},
)
async def import_errors(
    request: Request, ctx: ContextDep, _p: PrincipalDep, job_id: str = Path(min_length=1, max_length=36)
) -> Response:
    """The rows of an import that failed, with their column and message, to correct and upload again."""
    part = Part(ctx, request, _deadline(ctx) + 3.0)
    resp = await part.get("intake", f"/api/v1/imports/{job_id}")
    if resp is None:
        raise _unavailable()
    if resp.status_code != 200:
        return _relay(resp)
    job = resp.json()
    job["errors"] = await _with_numbers(part, job.get("errors") or [])
    content = await asyncio.to_thread(_errors_book, job)
    return _download(content, f"loi-nhap-{job_id[:8]}.xlsx")
