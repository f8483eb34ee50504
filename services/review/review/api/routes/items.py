"""One initiative's review record, appraisals, and the queue statistics of a subtree."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import case, func, select

from review.adapters import queue
from review.adapters.orm import appraisals, decisions, items, units
from review.api.deps import ContextDep, PrincipalDep, SessionDep, require_roles
from review.domain.rules import CRITERIA, appraisal_summary
from shared.auth import Principal
from shared.http import ApiError
from shared.text import NO_NUL
from shared.units import path_in_scope, subtree_clause

router = APIRouter(prefix="/api/v1/review", tags=["review"])

InitiativeId = Annotated[str, Path(min_length=1, max_length=36)]
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
Score = Annotated[int, Field(ge=0, le=10)]


class AppraisalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    novelty: Score
    applicability: Score
    effectiveness: Score
    scope: Score
    note: str | None = Field(default=None, max_length=5000, pattern=NO_NUL)


@router.get("/items/{initiative_id}")
async def get_item(initiative_id: InitiativeId, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    """The internal contract of docs/events.md plus the content and ``similar`` for the workspace."""
    async with session.begin():
        row = await queue.scoped_item(session, principal, initiative_id)
        own = queue.is_author(principal, row.author_ids)
        # Not unit_admin: SPEC §6 gives it quotas and figures (the stats below), not the initiatives' text.
        staff = principal.has("support", "reviewer", "appraiser") or principal.is_operator
        if not (own or staff):
            raise ApiError(403, "forbidden", "Không có quyền xem sáng kiến này")
        decided = await queue.history(session, initiative_id)
    appraisal = None
    if row.appraisal_count:
        appraisal = {"count": row.appraisal_count, "mean": row.appraisal_mean, "grade": row.appraisal_grade}
    leased = (
        row.status == "pending"
        and row.lease_expires_at is not None
        and queue.aware(row.lease_expires_at) > queue.utcnow()
    )
    return {
        **queue.public_item(row),
        "status": row.status,
        "decisions": decided,
        "appraisal": appraisal,
        "lease": {"holder": row.lease_holder, "expires_at": queue.aware(row.lease_expires_at).isoformat()}  # type: ignore[union-attr]
        if leased
        else None,
    }


@router.post("/items/{initiative_id}/appraisals", status_code=201)
async def appraise(
    initiative_id: InitiativeId,
    body: AppraisalRequest,
    ctx: ContextDep,
    session: SessionDep,
    principal: Principal = require_roles("appraiser"),
) -> dict[str, Any]:
    async with session.begin():
        return await queue.appraise(session, ctx, principal, initiative_id, body.model_dump())


@router.get("/items/{initiative_id}/appraisals")
async def list_item_appraisals(
    initiative_id: InitiativeId,
    session: SessionDep,
    principal: Principal = require_roles("appraiser"),
) -> dict[str, Any]:
    """The appraisals given so far to one initiative of the caller's subtree (the appraiser's screen shows them)."""
    async with session.begin():
        row = await queue.scoped_item(session, principal, initiative_id)
        if queue.is_author(principal, row.author_ids):
            raise ApiError(403, "conflict_of_interest", "Không được thẩm định sáng kiến của chính mình")
        given = (
            await session.execute(
                select(appraisals).where(appraisals.c.initiative_id == initiative_id).order_by(appraisals.c.id)
            )
        ).all()
    scores = [{c: getattr(a, c) for c in CRITERIA} for a in given]
    return {
        "initiative_id": initiative_id,
        "items": [
            {
                **scores[i],
                "note": a.note,
                "appraised_at": queue.aware(a.appraised_at).isoformat(),  # type: ignore[union-attr]
                "mine": a.appraiser == principal.sub,
            }
            for i, a in enumerate(given)
        ],
        "summary": appraisal_summary(scores),
    }


@router.get("/appraisals")
async def appraisal_worklist(
    session: SessionDep,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[str, Query(pattern="^(todo|done|all)$")] = "todo",
    q: Annotated[str | None, Query(max_length=200)] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    principal: Principal = require_roles("appraiser"),
) -> dict[str, Any]:
    """Valid initiatives of the caller's subtree (or of ``unit`` inside it) to appraise, by ``seq``.

    Never the caller's own (SPEC §6). ``state=todo`` leaves out those the caller has appraised; each item
    carries the summary so far and the caller's own scores. ``after`` is the last ``seq`` of the page before.
    """
    root = unit or principal.unit
    mine = (
        select(func.count())
        .select_from(appraisals)
        .where(appraisals.c.initiative_id == items.c.initiative_id, appraisals.c.appraiser == principal.sub)
        .scalar_subquery()
    )
    query = (
        select(items, mine.label("mine"))
        .select_from(items.join(units, units.c.code == items.c.unit_code))
        .where(items.c.status == "valid", items.c.revision >= 0)
        .order_by(items.c.seq)
        .limit(limit + 1)
    )
    async with session.begin():
        if root is not None:
            path = (await session.execute(select(units.c.path).where(units.c.code == root))).scalar_one_or_none()
            if path is None and principal.is_operator:
                raise ApiError(404, "not_found", "Không tìm thấy đơn vị")
            if path is None or not path_in_scope(principal, path):
                raise ApiError(403, "out_of_scope", "Đơn vị nằm ngoài phạm vi của tài khoản")
            query = query.where(subtree_clause(units.c.path, root))
        elif not principal.is_operator:
            raise ApiError(403, "forbidden", "Tài khoản chưa gắn với đơn vị nào")
        if principal.member_id:
            query = query.where(~items.c.author_ids.contains(f"|{principal.member_id}|", autoescape=True))
        if state == "todo":
            query = query.where(mine == 0)
        elif state == "done":
            query = query.where(mine > 0)
        if q and q.strip():
            query = query.where(items.c.title.icontains(q.strip(), autoescape=True))
        if after is not None:
            query = query.where(items.c.seq > after)
        rows = (await session.execute(query)).all()
        page = rows[:limit]
        own: dict[str, dict[str, Any]] = {}
        if page:
            given = (
                await session.execute(
                    select(appraisals).where(
                        appraisals.c.appraiser == principal.sub,
                        appraisals.c.initiative_id.in_([r.initiative_id for r in page]),
                    )
                )
            ).all()
            own = {a.initiative_id: {c: getattr(a, c) for c in CRITERIA} | {"note": a.note} for a in given}
    out = []
    for r in page:
        item = queue.public_item(r)
        item.pop("similar", None)
        item["verified_benefit_vnd"] = r.verified_benefit_vnd
        item["appraisal"] = {"count": r.appraisal_count, "mean": r.appraisal_mean, "grade": r.appraisal_grade}
        item["mine"] = own.get(r.initiative_id)
        out.append(item)
    return {"items": out, "next_after": page[-1].seq if len(rows) > limit else None}


def _empty() -> dict[str, Any]:
    return {"pending": 0, "leased": 0, "decided": {"valid": 0, "invalid": 0, "revision": 0}, "withdrawn": 0}


@router.get("/stats")
async def stats(
    session: SessionDep,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    principal: Principal = require_roles("reviewer", "appraiser", "unit_admin"),
) -> dict[str, Any]:
    """Pending (not leased), leased, decided by outcome and the oldest pending age, for the subtree and each child."""
    root = unit or principal.unit
    now = queue.utcnow()
    async with session.begin():
        if root is not None:
            path = (await session.execute(select(units.c.path).where(units.c.code == root))).scalar_one_or_none()
            if path is None:
                if principal.is_operator:
                    raise ApiError(404, "not_found", "Không tìm thấy đơn vị")
                raise ApiError(403, "out_of_scope", "Đơn vị nằm ngoài phạm vi của tài khoản")
            if not path_in_scope(principal, path):
                raise ApiError(403, "out_of_scope", "Đơn vị nằm ngoài phạm vi của tài khoản")
        elif not principal.is_operator:
            raise ApiError(403, "forbidden", "Tài khoản chưa gắn với đơn vị nào")
        leased = case((items.c.lease_expires_at > now, 1), else_=0)
        query = (
            select(
                units.c.path,
                items.c.status,
                func.count().label("n"),
                func.sum(leased).label("leased"),
                func.min(items.c.queued_at).label("oldest"),
            )
            .select_from(items.join(units, units.c.code == items.c.unit_code))
            .where(items.c.revision >= 0)
            .group_by(units.c.path, items.c.status)
        )
        if root is not None:
            query = query.where(subtree_clause(units.c.path, root))
        groups = (await session.execute(query)).all()
        children = []
        if root is not None:
            children = (
                await session.execute(
                    select(units.c.code, units.c.name, units.c.kind)
                    .where(units.c.parent_code == root)
                    .order_by(units.c.code)
                )
            ).all()
        start_of_day = datetime.combine(now.astimezone(LOCAL).date(), time(0), LOCAL).astimezone(UTC)
        mine_today = (
            await session.execute(
                select(func.count())
                .select_from(decisions)
                .where(decisions.c.decided_by == principal.sub)
                .where(decisions.c.decided_at >= start_of_day)
            )
        ).scalar_one()
    total = _empty()
    per_child: dict[str, dict[str, Any]] = defaultdict(_empty)
    oldest: datetime | None = None
    for g in groups:
        parts = g.path.strip("/").split("/")
        child = None
        if root is not None and root in parts and parts.index(root) + 1 < len(parts):
            child = parts[parts.index(root) + 1]
        buckets = [total] + ([per_child[child]] if child else [])
        for b in buckets:
            if g.status == "pending":
                b["leased"] += int(g.leased or 0)
                b["pending"] += int(g.n) - int(g.leased or 0)
            elif g.status == "withdrawn":
                b["withdrawn"] += int(g.n)
            else:
                b["decided"]["revision" if g.status == "revision_requested" else g.status] += int(g.n)
        if g.status == "pending" and g.oldest is not None:
            at = queue.aware(g.oldest)
            oldest = at if oldest is None or (at is not None and at < oldest) else oldest
    return {
        "unit": root,
        **total,
        "oldest_pending_age_s": round((now - oldest).total_seconds(), 1) if oldest else None,
        "decided_today_by_me": int(mine_today),
        "children": [{"unit": {"code": c.code, "name": c.name, "kind": c.kind}, **per_child[c.code]} for c in children],
    }
