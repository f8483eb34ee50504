"""POST /api/v1/imports (CSV/XLSX), GET /api/v1/imports/{id}, GET /api/v1/imports/template.xlsx."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response

from intake.adapters.imports import template_xlsx
from intake.api.deps import ContextDep, PrincipalDep, require_roles
from intake.api.errors import IntakeRoute
from intake.service import imports
from shared.auth import Principal
from shared.http import JsonResponse

router = APIRouter(tags=["imports"], route_class=IntakeRoute)
IMPORTERS = ("support",)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


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
    content = await file.read(imports.max_import_bytes(ctx) + 1)
    job = await imports.start_import(ctx, principal, campaign, imports.Upload(file.filename or "", content))
    return JsonResponse(job, 202)


@router.get("/api/v1/imports/{job_id}")
async def import_status(job_id: str, ctx: ContextDep, principal: PrincipalDep) -> JsonResponse:
    return JsonResponse(await imports.import_status(ctx, principal, job_id))
