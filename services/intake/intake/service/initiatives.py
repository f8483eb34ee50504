"""Reading an initiative, the scoped listing, and what its authors do afterwards: revise, withdraw."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from intake.adapters import changes
from intake.adapters.queries import decode_cursor, encode_cursor, listing, load, page, record_json
from intake.domain.access import SUBTREE_READERS, can_act_for, can_read, is_author
from intake.domain.errors import Conflict, NotAllowed, NotFound, invalid
from intake.domain.events import REVISED, WITHDRAWN, initiative_payload, withdrawn_payload
from intake.domain.models import InitiativeCreate, InitiativeUpdate, validation_details
from intake.domain.rules import OPEN_STATUSES, content_refusals, fingerprint, local_day, plan_refusals
from intake.service.context import clock, plan
from intake.service.submissions import duplicate
from shared.auth import Principal
from shared.service import ServiceContext


@dataclass(frozen=True, slots=True)
class ListFilters:
    campaign: str | None = None
    unit: str | None = None
    status: str | None = None
    author: str | None = None
    submitted_from: datetime | None = None
    submitted_to: datetime | None = None
    cursor: str | None = None
    limit: int = 50


def _not_found() -> NotFound:
    return NotFound("not_found", "Không tìm thấy sáng kiến")


def _changed() -> Conflict:
    return Conflict("conflict", "Sáng kiến vừa được thay đổi, vui lòng tải lại")


async def list_initiatives(ctx: ServiceContext, principal: Principal, filters: ListFilters) -> dict[str, Any]:
    """A page of the initiatives the caller may read, oldest first, and the cursor of the next page."""
    if not principal.is_operator and not principal.has("member", *SUBTREE_READERS):
        raise NotAllowed("forbidden", "Không có quyền xem sáng kiến")
    if filters.unit and not principal.is_operator:
        target = await plan(ctx).unit(filters.unit)
        if target is None or principal.unit is None or f"/{principal.unit}/" not in target.path:
            raise NotAllowed("out_of_scope", "Đơn vị nằm ngoài phạm vi của tài khoản")
    try:
        after = decode_cursor(filters.cursor) if filters.cursor else None
    except ValueError as exc:
        raise invalid([{"field": "cursor", "message": "Con trỏ phân trang không hợp lệ"}]) from exc
    stmt = listing(
        principal,
        campaign=filters.campaign,
        unit=filters.unit,
        status=filters.status,
        author=filters.author,
        submitted_from=filters.submitted_from,
        submitted_to=filters.submitted_to,
        after=after,
        limit=filters.limit,
    )
    async with ctx.engine.connect() as conn:
        rows = await page(conn, stmt)
    shown = rows[: filters.limit]
    more = len(rows) > filters.limit
    next_cursor = encode_cursor(shown[-1].submitted_at, shown[-1].id) if more else None
    return {"items": [record_json(r) for r in shown], "next_cursor": next_cursor}


async def get_initiative(ctx: ServiceContext, principal: Principal, initiative_id: str) -> dict[str, Any]:
    async with ctx.engine.connect() as conn:
        row = await load(conn, initiative_id[:36])
    if row is None or not can_read(principal, row.authors, row.unit_path):
        raise _not_found()
    return record_json(row)


async def _load_for_action(conn: AsyncConnection, initiative_id: str, principal: Principal) -> Any:
    row = await load(conn, initiative_id[:36], for_update=True)
    if row is None or not can_read(principal, row.authors, row.unit_path):
        raise _not_found()
    if not can_act_for(principal, row.authors, row.unit_path):
        raise NotAllowed("forbidden", "Chỉ tác giả hoặc tổ hỗ trợ của đơn vị được thao tác trên sáng kiến này")
    return row


async def revise_initiative(
    ctx: ServiceContext, principal: Principal, initiative_id: str, update: InitiativeUpdate
) -> dict[str, Any]:
    """Sửa sáng kiến theo yêu cầu của người xét duyệt: only while ``revision_requested``. The revised record is
    checked as a new submission would be (but in a closed phase), its fingerprints and authors rewritten and
    ``initiative.revised`` staged, in one transaction."""
    changes_given = update.model_dump(exclude_unset=True, mode="python")
    async with ctx.engine.begin() as conn:
        row = await _load_for_action(conn, initiative_id, principal)
        if row.status != "revision_requested":
            raise Conflict("not_revision_requested", "Chỉ sửa được sáng kiến đang được yêu cầu chỉnh sửa")
        current = record_json(row)
        merged = {k: current[k] for k in InitiativeCreate.model_fields} | {
            k: (v if k != "authors" else [dict(a) for a in v]) for k, v in changes_given.items()
        }
        try:
            candidate = InitiativeCreate.model_validate(merged)
        except ValidationError as exc:
            raise invalid(validation_details(exc)) from exc
        if not principal.is_operator and not principal.has("support") and not is_author(principal, merged["authors"]):
            raise NotAllowed("not_an_author", "Đoàn viên phải là một trong các tác giả", [{"field": "authors"}])
        campaign = await plan(ctx).campaign(candidate.campaign, conn)
        unit = await plan(ctx).unit(candidate.unit_code, conn)
        errors = content_refusals(candidate)
        plan_errors, _ = plan_refusals(candidate, campaign, unit, local_day(clock(ctx)), need_open_phase=False)
        errors.extend(e for e in plan_errors if e["field"] != "unit_code")
        if errors:
            raise invalid(errors)
        values = _revised_values(candidate, row.revision + 1, clock(ctx).astimezone(UTC))
        if not await changes.revise(conn, row, values):
            raise _changed()
        await changes.release_fingerprints(conn, row)
        member_ids = sorted({a.member_id for a in candidate.authors})
        if not await changes.claim_fingerprints_of(
            conn, row, fingerprint(candidate.title, values["solution"]), member_ids
        ):
            raise duplicate(None)
        await changes.replace_authors(conn, row.id, member_ids)
        record = dict(row._mapping) | values
        await changes.add_events(conn, ctx.event(REVISED, initiative_payload(record)))
        fresh = await load(conn, row.id)
    ctx.relay.wake()
    return record_json(fresh)


def _revised_values(candidate: InitiativeCreate, revision: int, now: datetime) -> dict[str, Any]:
    return {
        "field": candidate.field,
        "title": candidate.title,
        "problem": None if candidate.confidential else candidate.problem,
        "solution": None if candidate.confidential else candidate.solution,
        "effect": candidate.effect,
        "expected_benefit_vnd": candidate.expected_benefit_vnd,
        "applied_on": candidate.applied_on,
        "authors": [a.model_dump() for a in candidate.authors],
        "revision": revision,
        "status": "submitted",
        "updated_at": now,
    }


async def withdraw_initiative(ctx: ServiceContext, principal: Principal, initiative_id: str) -> dict[str, Any]:
    """Rút sáng kiến: allowed before a decision; terminal. Withdrawing twice answers the same."""
    async with ctx.engine.begin() as conn:
        row = await _load_for_action(conn, initiative_id, principal)
        if row.status == "withdrawn":
            return {"id": row.id, "status": "withdrawn"}
        if row.status not in OPEN_STATUSES:
            raise Conflict("already_decided", "Sáng kiến đã có kết quả xét duyệt, không thể rút")
        now = clock(ctx).astimezone(UTC)
        if not await changes.withdraw(conn, row, now):
            raise _changed()
        # A withdrawn initiative no longer blocks its author from submitting it again.
        await changes.release_fingerprints(conn, row)
        await changes.add_events(conn, ctx.event(WITHDRAWN, withdrawn_payload(dict(row._mapping), now)))
    ctx.relay.wake()
    return {"id": row.id, "status": "withdrawn"}
