"""Imports for support teams: CSV/XLSX with Vietnamese headers, stored row by row, processed in
chunks by a background worker that resumes after a restart without creating any row twice.

Each chunk is one transaction: the initiatives it creates, the rows' statuses and the job's
counters commit together, so a chunk interrupted by a crash is simply done again.
"""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from intake.adapters.orm import idempotency_keys, import_jobs, import_rows
from intake.adapters.store import Prepared, persist
from intake.domain.errors import Refusal, invalid
from intake.domain.events import submitted_event
from intake.domain.models import InitiativeCreate, validation_details
from intake.domain.rules import normalise
from intake.runtime import runtime_of
from intake.submission import prepare
from shared.auth import principal_from_claims
from shared.service import ServiceContext

log = logging.getLogger("intake.imports")

# Column header (Vietnamese, as support teams type it) → field of the row payload.
COLUMNS: dict[str, str] = {
    "Đơn vị": "unit_code",
    "Lĩnh vực": "field",
    "Tên sáng kiến": "title",
    "Thực trạng": "problem",
    "Giải pháp": "solution",
    "Hiệu quả": "effect",
    "Giá trị làm lợi (VNĐ)": "expected_benefit_vnd",
    "Ngày áp dụng": "applied_on",
    "Mật": "confidential",
    "Mã đoàn viên": "member_ids",
    "Họ và tên": "full_names",
}
REQUIRED = ("Đơn vị", "Lĩnh vực", "Tên sáng kiến", "Ngày áp dụng", "Mã đoàn viên", "Họ và tên")
HEADER_OF = {v: k for k, v in COLUMNS.items()} | {"authors": "Mã đoàn viên", "campaign": "Chiến dịch"}
_BY_NORMALISED = {normalise(k): v for k, v in COLUMNS.items()}
_YES = {"x", "có", "co", "1", "true", "yes", "mật", "mat"}
EXAMPLE = {
    "Đơn vị": "TH-01-001",
    "Lĩnh vực": "production",
    "Tên sáng kiến": "Cải tiến khuôn định vị",
    "Thực trạng": "Khuôn cũ lệch 2 mm",
    "Giải pháp": "Thêm chốt định vị",
    "Hiệu quả": "Giảm 30% phế phẩm",
    "Giá trị làm lợi (VNĐ)": "150000000",
    "Ngày áp dụng": "2022-03-01",
    "Mật": "",
    "Mã đoàn viên": "M-0001; M-0002",
    "Họ và tên": "Nguyễn Văn A; Trần Thị B",
}


class ImportFileError(Exception):
    """A table without the columns an import needs."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def rows_of(table: Sequence[Sequence[Any]]) -> list[tuple[int, dict[str, str]]]:
    """The non-empty rows of a table read by :func:`shared.uploads.read_table` (which already counted every
    row, empty ones included, toward the limit), as (row number in the sheet, header → cell)."""
    iterator = iter(table)
    try:
        header = [_cell(h) for h in next(iterator)]
    except StopIteration as exc:
        raise ImportFileError("Tệp trống") from exc
    fields = [_BY_NORMALISED.get(normalise(h)) for h in header]
    present = {f for f in fields if f}
    missing = [h for h in REQUIRED if COLUMNS[h] not in present]
    if missing:
        raise ImportFileError("Thiếu cột: " + ", ".join(missing))
    rows = []
    for number, values in enumerate(iterator, start=2):
        cells = [_cell(v) for v in values]
        if not any(cells):
            continue
        rows.append((number, {f: cells[i] if i < len(cells) else "" for i, f in enumerate(fields) if f}))
    return rows


def template_xlsx() -> bytes:
    """Blocking: the import template with its headers and one example row."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Sáng kiến"
    sheet.append(list(COLUMNS))
    sheet.append([EXAMPLE[h] for h in COLUMNS])
    for column in sheet.columns:
        sheet.column_dimensions[column[0].column_letter].width = 24
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _row_error(field: str, message: str) -> dict[str, str]:
    root = field.split(".")[0]
    return {"field": HEADER_OF.get(root, root), "message": message}


def row_to_model(payload: dict[str, str], campaign_code: str, field_code: str | None) -> InitiativeCreate:
    """Raises ``Invalid`` whose details name the column."""
    errors = []
    benefit_text = payload.get("expected_benefit_vnd", "").replace(".", "").replace(",", "").replace(" ", "")
    benefit: Any = benefit_text or 0
    if benefit_text and not benefit_text.isdigit():
        errors.append(_row_error("expected_benefit_vnd", "Phải là số nguyên không âm"))
    applied = payload.get("applied_on", "")
    if "/" in applied:
        try:
            d, m, y = (int(p) for p in applied.split("/"))
            applied = date(y, m, d).isoformat()
        except ValueError:
            errors.append(_row_error("applied_on", "Ngày không hợp lệ (dd/mm/yyyy hoặc yyyy-mm-dd)"))
    ids = [p.strip() for p in payload.get("member_ids", "").replace("\n", ";").split(";") if p.strip()]
    names = [p.strip() for p in payload.get("full_names", "").replace("\n", ";").split(";") if p.strip()]
    if len(ids) != len(names):
        errors.append(_row_error("authors", "Số mã đoàn viên và số họ tên không khớp"))
    if errors:
        raise invalid(errors)
    raw = {
        "campaign": campaign_code,
        "unit_code": payload.get("unit_code", ""),
        "field": field_code or payload.get("field", ""),
        "title": payload.get("title", ""),
        "problem": payload.get("problem") or None,
        "solution": payload.get("solution") or None,
        "effect": payload.get("effect") or None,
        "expected_benefit_vnd": benefit,
        "applied_on": applied,
        "confidential": normalise(payload.get("confidential")) in _YES,
        "authors": [{"member_id": i, "full_name": n} for i, n in zip(ids, names, strict=False)],
    }
    try:
        return InitiativeCreate.model_validate(raw)
    except ValidationError as exc:
        details = [_row_error(d["field"], d["message"]) for d in validation_details(exc)]
        raise invalid(details) from exc


async def create_job(
    conn: AsyncConnection,
    *,
    owner: str,
    claims: dict[str, Any],
    campaign: str,
    filename: str,
    rows: list[tuple[int, dict[str, str]]],
) -> str:
    job_id = str(uuid.uuid4())
    await conn.execute(
        import_jobs.insert().values(
            id=job_id,
            owner=owner,
            claims=claims,
            campaign=campaign,
            filename=filename[:300],
            status="queued",
            total=len(rows),
            done=0,
            failed=0,
            created_at=datetime.now(UTC),
        )
    )
    for start in range(0, len(rows), 2000):
        await conn.execute(
            import_rows.insert(),
            [
                {
                    "job_id": job_id,
                    "row_number": n,
                    "payload": p,
                    "status": "pending",
                    "initiative_id": None,
                    "errors": None,
                }
                for n, p in rows[start : start + 2000]
            ],
        )
    return job_id


async def process_chunk(ctx: ServiceContext, job: Any) -> int:
    """Process the next pending rows of ``job`` in one transaction; answer how many were handled."""
    runtime = runtime_of(ctx)
    m, plan = runtime.metrics, runtime.plan
    assert m is not None and plan is not None, "made when the service starts"
    principal = principal_from_claims(job.claims)
    chunk = int(getattr(ctx.settings, "import_chunk_rows", 500))
    async with ctx.engine.begin() as conn:
        stmt = (
            select(import_rows.c.row_number, import_rows.c.payload)
            .where(import_rows.c.job_id == job.id, import_rows.c.status == "pending")
            .order_by(import_rows.c.row_number)
            .limit(chunk)
        )
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = (await conn.execute(stmt)).all()
        if not rows:
            return 0
        campaign = await plan.campaign(job.campaign, conn)
        now = runtime.clock()
        updates: dict[int, dict[str, Any]] = {}
        prepared: list[Prepared] = []
        numbers: list[int] = []
        for row in rows:
            try:
                field_code = campaign.field_code(row.payload.get("field", "")) if campaign else None
                model = row_to_model(row.payload, job.campaign, field_code)
                prepared.append(await prepare(plan, principal, model, now, conn=conn))
                numbers.append(row.row_number)
            except Refusal as exc:
                details = exc.details if isinstance(exc.details, list) else []
                errs = [
                    _row_error(str(d.get("field", "")), str(d.get("message") or exc.message))
                    for d in details
                    if isinstance(d, dict)
                ] or [{"field": "", "message": exc.message}]
                updates[row.row_number] = {"status": "failed", "initiative_id": None, "errors": errs}
        outcomes = await persist(conn, prepared, submitted_event(ctx.name))
        for number, outcome in zip(numbers, outcomes, strict=True):
            if outcome.kind == "created":
                updates[number] = {"status": "done", "initiative_id": outcome.id, "errors": None}
            else:
                message = f"Trùng với sáng kiến đã gửi ({outcome.existing_id})"
                updates[number] = {"status": "failed", "initiative_id": None, "errors": [_row_error("title", message)]}
        await conn.execute(
            update(import_rows)
            .where(import_rows.c.job_id == job.id, import_rows.c.row_number == bindparam("n"))
            .values(status=bindparam("s"), initiative_id=bindparam("iid"), errors=bindparam("errs")),
            [{"n": n, "s": u["status"], "iid": u["initiative_id"], "errs": u["errors"]} for n, u in updates.items()],
        )
        done = sum(1 for u in updates.values() if u["status"] == "done")
        failed = len(updates) - done
        await conn.execute(
            update(import_jobs)
            .where(import_jobs.c.id == job.id)
            .values(status="running", done=import_jobs.c.done + done, failed=import_jobs.c.failed + failed)
        )
    ctx.relay.wake()
    m.import_rows.labels("done").inc(done)
    m.import_rows.labels("failed").inc(failed)
    return len(rows)


async def finish_if_complete(ctx: ServiceContext, job_id: str) -> None:
    async with ctx.engine.begin() as conn:
        pending = (
            await conn.execute(
                select(func.count())
                .select_from(import_rows)
                .where(import_rows.c.job_id == job_id, import_rows.c.status == "pending")
            )
        ).scalar_one()
        if pending == 0:
            await conn.execute(
                update(import_jobs)
                .where(import_jobs.c.id == job_id, import_jobs.c.status != "done")
                .values(status="done", finished_at=datetime.now(UTC))
            )


async def import_worker(ctx: ServiceContext) -> None:
    """Background worker: jobs in order of arrival, chunk after chunk; also expires idempotency keys."""
    wake = runtime_of(ctx).import_wake
    last_cleanup = 0.0
    loop = asyncio.get_running_loop()
    while True:
        try:
            if loop.time() - last_cleanup > 600:
                last_cleanup = loop.time()
                await _expire_idempotency_keys(ctx)
            async with ctx.engine.connect() as conn:
                job = (
                    await conn.execute(
                        select(import_jobs)
                        .where(import_jobs.c.status.in_(("queued", "running")))
                        .order_by(import_jobs.c.created_at)
                        .limit(1)
                    )
                ).first()
            if job is None:
                wake.clear()
                try:
                    # Not wait_for: on Python 3.11 it swallows a cancellation that meets the wake-up.
                    async with asyncio.timeout(1.0):
                        await wake.wait()
                except TimeoutError:
                    pass
                continue
            if await process_chunk(ctx, job) == 0:
                await finish_if_complete(ctx, job.id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("import worker failed; retrying shortly")
            await asyncio.sleep(1.0)


async def _expire_idempotency_keys(ctx: ServiceContext) -> None:
    hours = int(getattr(ctx.settings, "idempotency_ttl_hours", 48))
    async with ctx.engine.begin() as conn:
        await conn.execute(
            delete(idempotency_keys).where(idempotency_keys.c.created_at < datetime.now(UTC) - timedelta(hours=hours))
        )


async def job_of(conn: AsyncConnection, job_id: str) -> Any:
    return (await conn.execute(select(import_jobs).where(import_jobs.c.id == job_id))).first()


async def failed_rows(conn: AsyncConnection, job_id: str, limit: int) -> list[Any]:
    """The first ``limit`` failed rows of a job, in row order: their numbers and errors."""
    stmt = (
        select(import_rows.c.row_number, import_rows.c.errors)
        .where(import_rows.c.job_id == job_id, import_rows.c.status == "failed")
        .order_by(import_rows.c.row_number)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).all())
