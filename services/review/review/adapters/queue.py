"""The work queue on the database: leases, decisions (with their audit rows) and appraisals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from review.adapters import claims
from review.adapters.claims import identities
from review.adapters.orm import appraisals, decisions, items, units
from review.domain.rules import (
    CRITERIA,
    DECIDED,
    STATUS_OF,
    appraisal_summary,
    appraised_event,
    decision_problems,
    reviewed_event,
)
from review.runtime import ReviewRuntime
from shared.auth import Principal
from shared.http import ApiError
from shared.service import ServiceContext
from shared.units import path_in_scope, subtree_clause


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _is_pg(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "postgresql"


def is_author(principal: Principal, author_ids: str) -> bool:
    return bool(principal.member_id) and f"|{principal.member_id}|" in author_ids


def conflicted(principal: Principal, author_ids: str) -> bool:
    """Conflict of interest (SPEC §6): nobody reviews or appraises an initiative they authored."""
    return any(f"|{i}|" in author_ids for i in identities(principal))


def public_item(row: Any) -> dict[str, Any]:
    """What a reviewer sees of an initiative (confidential ones carry only title and summary)."""
    return {
        "initiative_id": row.initiative_id,
        "seq": row.seq,
        "campaign": row.campaign,
        "phase": row.phase,
        "unit_code": row.unit_code,
        "field": row.field,
        "title": row.title,
        "problem": row.problem,
        "solution": row.solution,
        "effect": row.effect,
        "authors": row.authors,
        "expected_benefit_vnd": row.expected_benefit_vnd,
        "applied_on": row.applied_on,
        "confidential": row.confidential,
        "submitted_at": aware(row.submitted_at).isoformat() if row.submitted_at else None,
        "revision": row.revision,
        "similar": row.similar,
    }


# ---- claims --------------------------------------------------------------------------------------


async def claim(
    session: AsyncSession, runtime: ReviewRuntime, principal: Principal, count: int
) -> tuple[datetime, list[Any]]:
    """Lease the ``count`` oldest claimable initiatives (by ``seq``) of the caller's subtree."""
    now = utcnow()
    expires = now + timedelta(minutes=runtime.settings.lease_minutes)
    if _is_pg(session):
        units_total = await runtime.units_total(session, claims.unit_count)
        picked, expired = await claims.lease(session, principal, count, now, expires, units_total)
    else:
        picked, expired = await _claim_sqlite(session, principal, count, now, expires)
    if expired and runtime.metrics:
        runtime.metrics.leases_expired.inc(expired)
    return expires, sorted(picked, key=lambda r: r.seq)


async def _claim_sqlite(
    session: AsyncSession, principal: Principal, count: int, now: datetime, expires: datetime
) -> tuple[list[Any], int]:
    """One writer at a time: select, lease, read back."""
    query = (
        select(items.c.initiative_id, items.c.lease_expires_at)
        .select_from(items.join(units, units.c.code == items.c.unit_code))
        .where(items.c.status == "pending")
        .where(or_(items.c.lease_expires_at.is_(None), items.c.lease_expires_at <= now))
        .order_by(items.c.seq)
        .limit(count)
    )
    if not principal.is_operator:
        query = query.where(subtree_clause(units.c.path, str(principal.unit)))
    for identity in identities(principal):
        query = query.where(~items.c.author_ids.contains(f"|{identity}|", autoescape=True))
    picked = (await session.execute(query)).all()
    if not picked:
        return [], 0
    ids = [r.initiative_id for r in picked]
    await session.execute(
        update(items).where(items.c.initiative_id.in_(ids)).values(lease_holder=principal.sub, lease_expires_at=expires)
    )
    rows = (await session.execute(select(items).where(items.c.initiative_id.in_(ids)))).all()
    return list(rows), sum(1 for r in picked if r.lease_expires_at is not None)


async def release(session: AsyncSession, principal: Principal, initiative_ids: Sequence[str] | None) -> int:
    stmt = (
        update(items)
        .where(items.c.status == "pending")
        .where(items.c.lease_holder == principal.sub)
        .where(items.c.lease_expires_at > utcnow())
    )
    if initiative_ids is not None:
        stmt = stmt.where(items.c.initiative_id.in_(list(initiative_ids)))
    result = await session.execute(stmt.values(lease_holder=None, lease_expires_at=None))
    return int(result.rowcount)  # type: ignore[attr-defined]


# ---- decisions -----------------------------------------------------------------------------------


async def scoped_item(session: AsyncSession, principal: Principal, initiative_id: str, *, lock: bool = False) -> Any:
    """The item with its unit path; 404 when unknown, 403 when outside the caller's subtree (SPEC §6)."""
    query = (
        select(items, units.c.path)
        .select_from(items.outerjoin(units, units.c.code == items.c.unit_code))
        .where(items.c.initiative_id == initiative_id)
        .where(items.c.revision >= 0)
    )
    if lock and _is_pg(session):
        query = query.with_for_update(of=items)
    row = (await session.execute(query)).first()
    if row is None:
        raise ApiError(404, "not_found", "Không tìm thấy sáng kiến trong hàng chờ xét duyệt")
    if not path_in_scope(principal, row.path):
        raise ApiError(403, "out_of_scope", "Sáng kiến nằm ngoài phạm vi đơn vị của tài khoản")
    return row


async def decide(
    session: AsyncSession,
    ctx: ServiceContext,
    runtime: ReviewRuntime,
    principal: Principal,
    initiative_id: str,
    body: dict[str, Any],
) -> dict[str, Any]:
    """Record one decision and stage ``initiative.reviewed.v1``; raises ApiError when refused."""
    (result,) = await decide_many(session, ctx, runtime, principal, [{**body, "initiative_id": initiative_id}])
    if isinstance(result, ApiError):
        raise result
    return result


async def decide_many(
    session: AsyncSession,
    ctx: ServiceContext,
    runtime: ReviewRuntime,
    principal: Principal,
    requests: Sequence[dict[str, Any]],
) -> list[dict[str, Any] | ApiError]:
    """Check each decision on its own, then write the accepted ones (audit rows, items, events) in bulk.

    Returns, in order, the decision made or the ApiError refusing it; nothing is written for a refusal.
    """
    ids = sorted({r["initiative_id"] for r in requests})
    rows = await claims.lock_for_decision(session, ids)
    now = utcnow()
    results: list[dict[str, Any] | ApiError] = []
    accepted: list[tuple[Any, dict[str, Any]]] = []
    seen: set[str] = set()
    for req in requests:
        initiative_id = req["initiative_id"]
        if initiative_id in seen:
            results.append(ApiError(409, "duplicate_in_batch", "Sáng kiến xuất hiện hai lần trong lô"))
            continue
        seen.add(initiative_id)
        try:
            decision = _check_decision(principal, rows.get(initiative_id), req, now)
        except ApiError as exc:
            results.append(exc)
            continue
        accepted.append((rows[initiative_id], decision))
        results.append(_decision_view(decision))
    if not accepted:
        return results
    await claims.record_decisions(session, [d for _row, d in accepted])
    await ctx.emit(
        session, *(ctx.event("initiative.reviewed", reviewed_event(dict(row._mapping), d)) for row, d in accepted)
    )
    if runtime.metrics:
        for row, d in accepted:
            runtime.metrics.decisions.labels(d["outcome"], d["reason"] or "").inc()
            submitted = aware(row.submitted_at)
            if submitted is not None:
                runtime.metrics.time_to_decision.observe(max(0.0, (now - submitted).total_seconds()))
    return results


def _check_decision(principal: Principal, row: Any, req: dict[str, Any], now: datetime) -> dict[str, Any]:
    outcome, reason, note = req["outcome"], req.get("reason"), req.get("note")
    problems = decision_problems(outcome, reason, note)
    if problems:
        raise ApiError(422, "validation_error", "Quyết định không hợp lệ", problems)
    if row is None:
        raise ApiError(404, "not_found", "Không tìm thấy sáng kiến trong hàng chờ xét duyệt")
    if not path_in_scope(principal, row.path):
        raise ApiError(403, "out_of_scope", "Sáng kiến nằm ngoài phạm vi đơn vị của tài khoản")
    if conflicted(principal, row.author_ids):
        raise ApiError(403, "conflict_of_interest", "Không được xét duyệt sáng kiến của chính mình")
    redecision = False
    if row.status == "withdrawn":
        raise ApiError(409, "withdrawn", "Sáng kiến đã được rút")
    if row.status in DECIDED:
        if not principal.is_operator:
            raise ApiError(409, "already_decided", "Sáng kiến đã có quyết định; chỉ điều hành viên được quyết định lại")
        redecision = True
    elif row.lease_holder != principal.sub or (aware(row.lease_expires_at) or now) <= now:
        raise ApiError(409, "not_lease_holder", "Chỉ người đang giữ lượt xét duyệt mới được quyết định")
    return {
        "initiative_id": row.initiative_id,
        "decision_seq": row.decision_seq + 1,
        "outcome": outcome,
        "reason": reason,
        "note": note,
        "verified_benefit_vnd": req.get("verified_benefit_vnd"),
        "decided_by": principal.sub,
        "decided_at": now,
        "redecision": redecision,
    }


def _decision_view(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "initiative_id": d["initiative_id"],
        "status": STATUS_OF[d["outcome"]],
        "outcome": d["outcome"],
        "reason": d["reason"],
        "note": d["note"],
        "verified_benefit_vnd": d["verified_benefit_vnd"],
        "decision_seq": d["decision_seq"],
        "decided_at": d["decided_at"].isoformat(),
        "redecision": d["redecision"],
    }


async def history(session: AsyncSession, initiative_id: str) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            select(decisions).where(decisions.c.initiative_id == initiative_id).order_by(decisions.c.decision_seq)
        )
    ).all()
    return [
        {
            "outcome": r.outcome,
            "reason": r.reason,
            "note": r.note,
            "verified_benefit_vnd": r.verified_benefit_vnd,
            "decided_by": r.decided_by,
            "decided_at": aware(r.decided_at).isoformat(),  # type: ignore[union-attr]
            "decision_seq": r.decision_seq,
            "redecision": r.redecision,
        }
        for r in rows
    ]


# ---- appraisals ----------------------------------------------------------------------------------


async def appraise(
    session: AsyncSession, ctx: ServiceContext, principal: Principal, initiative_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    row = await scoped_item(session, principal, initiative_id, lock=True)
    if conflicted(principal, row.author_ids):
        raise ApiError(403, "conflict_of_interest", "Không được thẩm định sáng kiến của chính mình")
    if row.status != "valid":
        raise ApiError(409, "not_valid", "Chỉ thẩm định sáng kiến đã được công nhận hợp lệ")
    exists = (
        await session.execute(
            select(func.count())
            .select_from(appraisals)
            .where(and_(appraisals.c.initiative_id == initiative_id, appraisals.c.appraiser == principal.sub))
        )
    ).scalar_one()
    if exists:
        raise ApiError(409, "already_appraised", "Mỗi người chỉ thẩm định một sáng kiến một lần")
    now = utcnow()
    await session.execute(
        appraisals.insert().values(
            initiative_id=initiative_id,
            appraiser=principal.sub,
            note=body.get("note"),
            appraised_at=now,
            **{c: body[c] for c in CRITERIA},
        )
    )
    scores = (
        await session.execute(
            select(*(appraisals.c[c] for c in CRITERIA)).where(appraisals.c.initiative_id == initiative_id)
        )
    ).all()
    summary = appraisal_summary([dict(r._mapping) for r in scores])
    await session.execute(
        update(items)
        .where(items.c.initiative_id == initiative_id)
        .values(appraisal_count=summary["count"], appraisal_mean=summary["mean"], appraisal_grade=summary["grade"])
    )
    if summary["count"] >= 2:
        # Every further appraisal changes the count and usually the mean: consumers keep the newest seq.
        await ctx.emit(session, ctx.event("initiative.appraised", appraised_event(dict(row._mapping), summary, now)))
    return {
        "initiative_id": initiative_id,
        "appraiser": principal.sub,
        **{c: body[c] for c in CRITERIA},
        "note": body.get("note"),
        "appraised_at": now.isoformat(),
        "appraisal": {"count": summary["count"], "mean": summary["mean"], "grade": summary["grade"]},
    }
