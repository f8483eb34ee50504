"""The plan: units (a bulk upsert, from JSON or a CSV/XLSX table), campaigns and quotas; each change staged
as its event in the same transaction."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.service import ServiceContext
from shared.uploads import Table, TableError, TableLimits, read_table
from tally.adapters import plan as plan_store
from tally.domain.errors import Invalid, NotAllowed, NotFound, TooLarge, invalid
from tally.domain.plan import CampaignIn, QuotaIn, UnitIn, check_units
from tally.domain.scope import OUT_OF_SCOPE, check_scope
from tally.settings import TallySettings

UNIT_COLUMNS = ("code", "name", "kind", "parent_code", "cluster", "member_count")
UNITS_INVALID = "Danh sách đơn vị không hợp lệ"
QUOTAS_INVALID = "Danh sách chỉ tiêu không hợp lệ"


def limit(ctx: ServiceContext, name: str) -> int:
    settings = ctx.settings
    return int(getattr(settings, name)) if isinstance(settings, TallySettings) else int(getattr(TallySettings, name))


def _campaign_not_found() -> NotFound:
    return NotFound("not_found", "Không tìm thấy đợt phát động")


async def put_units(ctx: ServiceContext, session: AsyncSession, rows: list[dict[str, Any]]) -> dict[str, int]:
    if len(rows) > limit(ctx, "max_units_per_request"):
        raise TooLarge("payload_too_large", "Quá nhiều đơn vị trong một lần gửi")
    return await _upsert_units(ctx, session, _parse_units(rows))


async def import_units(ctx: ServiceContext, session: AsyncSession, filename: str, data: bytes) -> dict[str, int]:
    """The units of a CSV (UTF-8, optional BOM) or XLSX table whose header row names ``UNIT_COLUMNS``."""
    if len(data) > limit(ctx, "max_import_bytes"):
        raise TooLarge("payload_too_large", "Tệp quá lớn")
    try:
        table = await read_table(filename, data, TableLimits(max_rows=limit(ctx, "max_units_per_request")))
    except TableError as exc:
        raise Invalid(
            "invalid_file", "Không đọc được tệp CSV/XLSX", [{"field": "file", "message": str(exc)[:200]}]
        ) from exc
    return await _upsert_units(ctx, session, _parse_units(_unit_rows(table)))


async def _upsert_units(ctx: ServiceContext, session: AsyncSession, batch: list[UnitIn]) -> dict[str, int]:
    async with session.begin():
        stored = await plan_store.units_touched(session, batch)
        errors = check_units(batch, plan_store.unit_records(stored))
        if errors:
            raise invalid(UNITS_INVALID, errors)
        payloads = await plan_store.upsert_units(session, batch, stored)
        await ctx.emit(session, *[ctx.event("unit.upserted", p) for p in payloads])
    return {"upserted": len(batch), "changed": len(payloads)}


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
        raise invalid(UNITS_INVALID, errors[:1000])
    return batch


def _unit_rows(table: Table) -> list[dict[str, Any]]:
    """The rows of a table as unit payloads keyed by the header row."""
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


async def get_unit(session: AsyncSession, code: str) -> dict[str, Any]:
    """The unit and its children. The organisation tree is not secret: any signed-in account may read it."""
    found = await plan_store.unit_and_children(session, code)
    if found is None:
        raise NotFound("not_found", "Không tìm thấy đơn vị")
    row, children = found
    return {
        **plan_store.unit_payload(row._asdict()),
        "children": [
            {"code": c.code, "name": c.name, "kind": c.kind, "cluster": c.cluster, "member_count": c.member_count}
            for c in children
        ],
    }


def _campaign_out(row: Any) -> dict[str, Any]:
    return {"code": row.code, "name": row.name, **row.body, "revision": row.revision}


async def put_campaign(ctx: ServiceContext, session: AsyncSession, code: str, body: CampaignIn) -> dict[str, Any]:
    async with session.begin():
        revision = await plan_store.next_revisions(session, 1)
        row = {"code": code, "name": body.name, "body": body.body(), "revision": revision}
        await plan_store.store_campaign(session, row)
        out = {"code": code, "name": body.name, **row["body"], "revision": revision}
        await ctx.emit(session, ctx.event("campaign.upserted", out))
    return out


async def list_campaigns(session: AsyncSession) -> dict[str, Any]:
    return {"items": [_campaign_out(r) for r in await plan_store.all_campaigns(session)]}


async def get_campaign(session: AsyncSession, code: str) -> dict[str, Any]:
    row = await plan_store.campaign_of(session, code)
    if row is None:
        raise _campaign_not_found()
    return _campaign_out(row)


async def put_quotas(
    ctx: ServiceContext, session: AsyncSession, principal: Principal, code: str, body: list[dict[str, Any]]
) -> dict[str, int]:
    """Operators set any quota; a unit_admin sets the quotas of the units below its own, and its own ``self_set``."""
    if len(body) > limit(ctx, "max_quotas_per_request"):
        raise TooLarge("payload_too_large", "Quá nhiều chỉ tiêu trong một lần gửi")
    try:
        items = TypeAdapter(list[QuotaIn]).validate_python(body)
    except ValidationError as exc:
        details = [{"field": ".".join(str(p) for p in e["loc"]), "message": str(e["msg"])} for e in exc.errors()]
        raise invalid(QUOTAS_INVALID, details[:1000]) from exc
    async with session.begin():
        await plan_store.plan_each_statement(session)
        campaign = await plan_store.campaign_of(session, code)
        if campaign is None:
            raise _campaign_not_found()
        phases = {p["code"] for p in campaign.body.get("phases", [])}
        paths = await plan_store.unit_paths_of(session, [q.unit_code for q in items])
        errors: list[dict[str, Any]] = []
        for i, q in enumerate(items):
            if q.phase not in phases:
                errors.append({"row": i, "field": "phase", "message": f"Giai đoạn {q.phase} không có trong đợt"})
            if q.unit_code not in paths:
                if principal.is_operator:
                    errors.append({"row": i, "field": "unit_code", "message": f"Đơn vị {q.unit_code} không tồn tại"})
                else:
                    raise NotAllowed("forbidden", OUT_OF_SCOPE)
        if errors:
            raise invalid(QUOTAS_INVALID, errors[:1000])
        if not principal.is_operator:
            current = await plan_store.quotas_of(session, code, [(q.unit_code, q.phase) for q in items])
            for q in items:
                path = paths[q.unit_code]
                if not principal.unit or f"/{principal.unit}/" not in path:
                    raise NotAllowed("forbidden", OUT_OF_SCOPE)
                # A unit's assigned quota comes from above: its own admin may only raise its self_set.
                if q.unit_code == principal.unit:
                    before = current.get((q.unit_code, q.phase))
                    if before is None or before[0] != q.assigned:
                        raise NotAllowed("forbidden", "Chỉ tiêu được giao do đơn vị cấp trên đặt")
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


async def get_quotas(session: AsyncSession, principal: Principal, code: str, unit: str) -> dict[str, Any]:
    """A unit's quotas: operators, and unit_admins inside their subtree (SPEC §6)."""
    check_scope(principal, await plan_store.unit_path(session, unit))
    rows = await plan_store.unit_quotas(session, code, unit)
    return {
        "items": [
            {"unit_code": r.unit_code, "phase": r.phase, "assigned": r.assigned, "self_set": r.self_set} for r in rows
        ]
    }
