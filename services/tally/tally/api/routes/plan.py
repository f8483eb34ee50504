"""The plan: units (bulk JSON or CSV/XLSX import), campaigns and quotas. Tally owns it and publishes it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Path, Query, UploadFile
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select

from shared.auth import Principal
from shared.db import upsert
from shared.http import ApiError
from shared.uploads import Table, TableError, TableLimits, read_table
from tally.adapters import plan as plan_store
from tally.adapters.orm import campaigns, quotas, units
from tally.api.deps import ContextDep, PrincipalDep, SessionDep, check_scope, require_roles
from tally.domain.plan import CODE_PATTERN, CampaignIn, QuotaIn, UnitIn
from tally.settings import TallySettings

router = APIRouter(prefix="/api/v1", tags=["plan"])
CodePath = Annotated[str, Path(pattern=CODE_PATTERN)]
UNIT_COLUMNS = ("code", "name", "kind", "parent_code", "cluster", "member_count")


def _limit(ctx: Any, name: str) -> int:
    settings = ctx.settings
    return int(getattr(settings, name)) if isinstance(settings, TallySettings) else int(getattr(TallySettings, name))


async def _upsert_units(ctx: Any, session: Any, batch: list[UnitIn]) -> dict[str, int]:
    async with session.begin():
        payloads = await plan_store.upsert_units(session, batch)
        await ctx.emit(session, *[ctx.event("unit.upserted", p) for p in payloads])
    return {"upserted": len(batch), "changed": len(payloads)}


@router.put("/units")
async def put_units(
    ctx: ContextDep,
    session: SessionDep,
    body: Annotated[list[dict[str, Any]], Body()],
    _op: Principal = require_roles("operator"),
) -> dict[str, int]:
    if len(body) > _limit(ctx, "max_units_per_request"):
        raise ApiError(413, "payload_too_large", "Quá nhiều đơn vị trong một lần gửi")
    return await _upsert_units(ctx, session, _parse_units(body))


def _parse_units(rows: list[dict[str, Any]]) -> list[UnitIn]:
    batch: list[UnitIn] = []
    errors: list[dict[str, Any]] = []
    for i, raw in enumerate(rows):
        try:
            batch.append(UnitIn.model_validate(raw))
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or "row"
                errors.append({"row": i, "field": field, "message": str(err["msg"])})
    if errors:
        raise ApiError(422, "validation_error", "Danh sách đơn vị không hợp lệ", errors[:1000])
    return batch


def _unit_rows(table: Table) -> list[dict[str, Any]]:
    """The rows of a CSV (UTF-8, optional BOM) or XLSX table as unit payloads keyed by the header row."""
    header = [str(h).strip() if h is not None else "" for h in (table[0] if table else ())]
    rows = [dict(zip(header, r, strict=False)) for r in table[1:] if any(v is not None and v != "" for v in r)]
    out = []
    for r in rows:
        item: dict[str, Any] = {}
        for k in UNIT_COLUMNS:
            v = r.get(k)
            if v is None or (isinstance(v, str) and v.strip() == ""):
                continue
            item[k] = v.strip() if isinstance(v, str) else v
        if "member_count" in item:
            try:
                item["member_count"] = int(item["member_count"])
            except (TypeError, ValueError):
                pass
        if "code" in item:
            item["code"] = str(item["code"])
        if "parent_code" in item:
            item["parent_code"] = str(item["parent_code"])
        out.append(item)
    return out


@router.post("/units/import")
async def import_units(
    ctx: ContextDep,
    session: SessionDep,
    file: Annotated[UploadFile, File()],
    _op: Principal = require_roles("operator"),
) -> dict[str, int]:
    limit = _limit(ctx, "max_import_bytes")
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "payload_too_large", "Tệp quá lớn")
    max_units = _limit(ctx, "max_units_per_request")
    try:
        rows = _unit_rows(await read_table(file.filename or "", data, TableLimits(max_rows=max_units)))
    except TableError as exc:
        raise ApiError(
            422, "invalid_file", "Không đọc được tệp CSV/XLSX", [{"field": "file", "message": str(exc)[:200]}]
        ) from exc
    return await _upsert_units(ctx, session, _parse_units(rows))


@router.get("/units/{code}")
async def get_unit(code: CodePath, session: SessionDep, _p: PrincipalDep) -> dict[str, Any]:
    """The unit and its children. The organisation tree is not secret: any signed-in account may read it."""
    row = (await session.execute(select(units).where(units.c.code == code))).first()
    if row is None:
        raise ApiError(404, "not_found", "Không tìm thấy đơn vị")
    children = (await session.execute(select(units).where(units.c.parent_code == code).order_by(units.c.code))).all()
    return {
        **plan_store.unit_payload(row._asdict()),
        "children": [
            {"code": c.code, "name": c.name, "kind": c.kind, "cluster": c.cluster, "member_count": c.member_count}
            for c in children
        ],
    }


def _campaign_out(row: Any) -> dict[str, Any]:
    return {"code": row.code, "name": row.name, **row.body, "revision": row.revision}


@router.put("/campaigns/{code}")
async def put_campaign(
    code: CodePath,
    body: CampaignIn,
    ctx: ContextDep,
    session: SessionDep,
    _op: Principal = require_roles("operator"),
) -> dict[str, Any]:
    async with session.begin():
        revision = await plan_store.next_revisions(session, 1)
        row = {"code": code, "name": body.name, "body": body.body(), "revision": revision}
        stmt = upsert(campaigns, session.bind.dialect.name).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=["code"], set_={k: stmt.excluded[k] for k in row if k != "code"}
        )
        await session.execute(stmt)
        out = {"code": code, "name": body.name, **row["body"], "revision": revision}
        await ctx.emit(session, ctx.event("campaign.upserted", out))
    return out


@router.get("/campaigns")
async def list_campaigns(session: SessionDep, _p: PrincipalDep) -> dict[str, Any]:
    rows = (await session.execute(select(campaigns).order_by(campaigns.c.code).limit(1000))).all()
    return {"items": [_campaign_out(r) for r in rows]}


@router.get("/campaigns/{code}")
async def get_campaign(code: CodePath, session: SessionDep, _p: PrincipalDep) -> dict[str, Any]:
    row = (await session.execute(select(campaigns).where(campaigns.c.code == code))).first()
    if row is None:
        raise ApiError(404, "not_found", "Không tìm thấy đợt phát động")
    return _campaign_out(row)


@router.put("/campaigns/{code}/quotas")
async def put_quotas(
    code: CodePath,
    body: Annotated[list[dict[str, Any]], Body()],
    ctx: ContextDep,
    session: SessionDep,
    principal: Principal = require_roles("unit_admin"),
) -> dict[str, int]:
    """Operators set any quota; a unit_admin sets the quotas of the units below its own, and its own ``self_set``."""
    if len(body) > _limit(ctx, "max_quotas_per_request"):
        raise ApiError(413, "payload_too_large", "Quá nhiều chỉ tiêu trong một lần gửi")
    try:
        items = TypeAdapter(list[QuotaIn]).validate_python(body)
    except ValidationError as exc:
        details = [{"field": ".".join(str(p) for p in e["loc"]), "message": str(e["msg"])} for e in exc.errors()]
        raise ApiError(422, "validation_error", "Danh sách chỉ tiêu không hợp lệ", details[:1000]) from exc
    async with session.begin():
        campaign = (await session.execute(select(campaigns).where(campaigns.c.code == code))).first()
        if campaign is None:
            raise ApiError(404, "not_found", "Không tìm thấy đợt phát động")
        phases = {p["code"] for p in campaign.body.get("phases", [])}
        paths = await plan_store.unit_paths_of(session, [q.unit_code for q in items])
        current = await plan_store.quotas_of(session, code, [(q.unit_code, q.phase) for q in items])
        errors: list[dict[str, Any]] = []
        for i, q in enumerate(items):
            if q.phase not in phases:
                errors.append({"row": i, "field": "phase", "message": f"Giai đoạn {q.phase} không có trong đợt"})
            if q.unit_code not in paths:
                if principal.is_operator:
                    errors.append({"row": i, "field": "unit_code", "message": f"Đơn vị {q.unit_code} không tồn tại"})
                else:
                    raise ApiError(403, "forbidden", "Đơn vị nằm ngoài phạm vi của bạn")
        if errors:
            raise ApiError(422, "validation_error", "Danh sách chỉ tiêu không hợp lệ", errors[:1000])
        if not principal.is_operator:
            for q in items:
                path = paths[q.unit_code]
                if not principal.unit or f"/{principal.unit}/" not in path:
                    raise ApiError(403, "forbidden", "Đơn vị nằm ngoài phạm vi của bạn")
                # A unit's assigned quota comes from above: its own admin may only raise its self_set.
                if q.unit_code == principal.unit:
                    before = current.get((q.unit_code, q.phase))
                    if before is None or before[0] != q.assigned:
                        raise ApiError(403, "forbidden", "Chỉ tiêu được giao do đơn vị cấp trên đặt")
        first = await plan_store.next_revisions(session, len(items))
        rows = [
            {
                "campaign": code,
                "unit_code": q.unit_code,
                "phase": q.phase,
                "assigned": q.assigned,
                "self_set": q.self_set,
                "revision": first + i,
            }
            for i, q in enumerate(items)
        ]
        await plan_store.store_quotas(session, rows)
        await plan_store.recompute_effective_quotas(session, {q.unit_code for q in items})
        await ctx.emit(session, *[ctx.event("quota.set", r) for r in rows])
    return {"upserted": len(items)}


@router.get("/campaigns/{code}/quotas")
async def get_quotas(
    code: CodePath,
    session: SessionDep,
    unit: Annotated[str, Query(pattern=CODE_PATTERN)],
    principal: Principal = require_roles("unit_admin"),
) -> dict[str, Any]:
    """A unit's quotas: operators, and unit_admins inside their subtree (SPEC §6)."""
    path = (await session.execute(select(units.c.path).where(units.c.code == unit))).scalar_one_or_none()
    check_scope(principal, path)
    rows = (
        await session.execute(
            select(quotas).where(quotas.c.campaign == code, quotas.c.unit_code == unit).order_by(quotas.c.phase)
        )
    ).all()
    return {
        "items": [
            {"unit_code": r.unit_code, "phase": r.phase, "assigned": r.assigned, "self_set": r.self_set} for r in rows
        ]
    }
