"""POST /api/v1/imports (CSV/XLSX), GET /api/v1/imports/{id}, GET /api/v1/imports/template.xlsx."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response
from sqlalchemy import select

from intake.adapters.imports import ImportFileError, create_job, rows_of, template_xlsx
from intake.adapters.orm import import_jobs, import_rows
from intake.api.deps import ContextDep, PrincipalDep, plan, require_roles
from intake.runtime import runtime_of
from shared.auth import Principal
from shared.http import ApiError, JsonResponse
from shared.units import path_in_scope
from shared.uploads import TableError, TableLimits, read_table

router = APIRouter(tags=["imports"])
IMPORTERS = ("support",)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_ERRORS_SHOWN = 1000


@router.get(
    "/api/v1/imports/template.xlsx",
    response_class=Response,
    responses={200: {"description": "Mẫu nhập sáng kiến (XLSX)", "content": {XLSX: {}}}},
)
async def import_template(_p: Principal = require_roles(*IMPORTERS)) -> Response:
    content = await asyncio.to_thread(template_xlsx)
    headers = {"Content-Disposition": 'attachment; filename="mau-nhap-sang-kien.xlsx"'}
    return Response(content, media_type=XLSX, headers=headers)


@router.post("/api/v1/imports", status_code=202)
async def start_import(
    ctx: ContextDep,
    file: Annotated[UploadFile, File()],
    campaign: Annotated[str, Form(min_length=1, max_length=64)],
    principal: Principal = require_roles(*IMPORTERS),
) -> JsonResponse:
    limit = int(getattr(ctx.settings, "import_max_bytes", 64 * 1024 * 1024))
    content = await file.read(limit + 1)
    if len(content) > limit:
        raise ApiError(413, "payload_too_large", f"Tệp vượt quá {limit // (1024 * 1024)} MB")
    if await plan(ctx).campaign(campaign) is None:
        raise ApiError(
            422,
            "validation_error",
            "Dữ liệu không hợp lệ",
            [{"field": "campaign", "message": "Chiến dịch không tồn tại"}],
        )
    limits = TableLimits(max_rows=int(getattr(ctx.settings, "import_max_rows", 200_000)))
    try:
        rows = rows_of(await read_table(file.filename or "", content, limits))
    except (TableError, ImportFileError) as exc:
        raise ApiError(422, "validation_error", "Tệp không hợp lệ", [{"field": "file", "message": str(exc)}]) from exc
    async with ctx.engine.begin() as conn:
        job_id = await create_job(
            conn,
            owner=principal.sub,
            claims=principal.claims,
            campaign=campaign,
            filename=file.filename or "",
            rows=rows,
        )
    runtime_of(ctx).import_wake.set()
    return JsonResponse({"id": job_id, "status": "queued", "total": len(rows)}, 202)


@router.get("/api/v1/imports/{job_id}")
async def import_status(job_id: str, ctx: ContextDep, principal: PrincipalDep) -> JsonResponse:
    async with ctx.engine.connect() as conn:
        job = (await conn.execute(select(import_jobs).where(import_jobs.c.id == job_id[:36]))).first()
        if job is None or not _may_see(principal, job):
            raise ApiError(404, "not_found", "Không tìm thấy lượt nhập")
        failed_rows = (
            await conn.execute(
                select(import_rows.c.row_number, import_rows.c.errors)
                .where(import_rows.c.job_id == job.id, import_rows.c.status == "failed")
                .order_by(import_rows.c.row_number)
                .limit(MAX_ERRORS_SHOWN)
            )
        ).all()
    errors: list[dict[str, Any]] = [
        {"row": r.row_number, "field": e.get("field"), "message": e.get("message")}
        for r in failed_rows
        for e in r.errors or []
    ]
    return JsonResponse(
        {
            "id": job.id,
            "status": job.status,
            "campaign": job.campaign,
            "filename": job.filename,
            "total": job.total,
            "done": job.done,
            "failed": job.failed,
            "errors": errors,
        }
    )


def _may_see(principal: Principal, job: Any) -> bool:
    if principal.is_operator or principal.sub == job.owner:
        return True
    owner_unit = (job.claims or {}).get("unit")
    return principal.has("support") and owner_unit is not None and path_in_scope(principal, f"/{owner_unit}/")
