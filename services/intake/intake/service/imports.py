"""Imports for support teams: a CSV/XLSX file queued row by row for the import worker, and its progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from intake.adapters.imports import ImportFileError, create_job, failed_rows, job_of, rows_of
from intake.domain.errors import NotFound, TooLarge, invalid
from intake.runtime import runtime_of
from intake.service.context import plan
from shared.auth import Principal
from shared.service import ServiceContext
from shared.units import path_in_scope
from shared.uploads import TableError, TableLimits, read_table

MAX_ERRORS_SHOWN = 1000


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str
    content: bytes


def max_import_bytes(ctx: ServiceContext) -> int:
    return int(getattr(ctx.settings, "import_max_bytes", 64 * 1024 * 1024))


async def start_import(ctx: ServiceContext, principal: Principal, campaign: str, upload: Upload) -> dict[str, Any]:
    """Read the table, store its rows as a queued job and wake the import worker."""
    limit = max_import_bytes(ctx)
    if len(upload.content) > limit:
        raise TooLarge("payload_too_large", f"Tệp vượt quá {limit // (1024 * 1024)} MB")
    if await plan(ctx).campaign(campaign) is None:
        raise invalid([{"field": "campaign", "message": "Chiến dịch không tồn tại"}])
    limits = TableLimits(max_rows=int(getattr(ctx.settings, "import_max_rows", 200_000)))
    try:
        rows = rows_of(await read_table(upload.filename, upload.content, limits))
    except (TableError, ImportFileError) as exc:
        raise invalid([{"field": "file", "message": str(exc)}], "Tệp không hợp lệ") from exc
    async with ctx.engine.begin() as conn:
        job_id = await create_job(
            conn,
            owner=principal.sub,
            claims=principal.claims,
            campaign=campaign,
            filename=upload.filename,
            rows=rows,
        )
    runtime_of(ctx).import_wake.set()
    return {"id": job_id, "status": "queued", "total": len(rows)}


async def import_status(ctx: ServiceContext, principal: Principal, job_id: str) -> dict[str, Any]:
    """The job's progress and the errors of its first failed rows; the job's owner, support teams above its
    owner's unit and operators may see it."""
    async with ctx.engine.connect() as conn:
        job = await job_of(conn, job_id[:36])
        if job is None or not _may_see(principal, job):
            raise NotFound("not_found", "Không tìm thấy lượt nhập")
        failed = await failed_rows(conn, job.id, MAX_ERRORS_SHOWN)
    errors: list[dict[str, Any]] = [
        {"row": r.row_number, "field": e.get("field"), "message": e.get("message")}
        for r in failed
        for e in r.errors or []
    ]
    return {
        "id": job.id,
        "status": job.status,
        "campaign": job.campaign,
        "filename": job.filename,
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "errors": errors,
    }


def _may_see(principal: Principal, job: Any) -> bool:
    if principal.is_operator or principal.sub == job.owner:
        return True
    owner_unit = (job.claims or {}).get("unit")
    return principal.has("support") and owner_unit is not None and path_in_scope(principal, f"/{owner_unit}/")
