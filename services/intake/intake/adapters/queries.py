"""Reads of initiatives: one record with its unit path, and the scoped, keyset-paginated listing."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import Select, and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from intake.adapters.orm import initiative_authors, initiatives, units
from intake.domain.access import SUBTREE_READERS
from shared.auth import Principal
from shared.units import subtree_clause


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def record_json(row: Any) -> dict[str, Any]:
    """Intake's own record of an initiative (the gateway composes review, appraisal and awards)."""
    m = row._mapping
    review = None
    if m["decision_seq"]:
        review = {
            "outcome": m["review_outcome"],
            "reason": m["review_reason"],
            "note": m["review_note"],
            "verified_benefit_vnd": m["verified_benefit_vnd"],
            "decided_at": m["decided_at"],
            "decision_seq": m["decision_seq"],
        }
    appraisal = {"mean": m["appraisal_mean"], "grade": m["appraisal_grade"]} if m["appraisal_seq"] else None
    return {
        "id": m["id"],
        "seq": m["seq"],
        "status": m["status"],
        "campaign": m["campaign"],
        "phase": m["phase"],
        "unit_code": m["unit_code"],
        "field": m["field"],
        "title": m["title"],
        "problem": m["problem"],
        "solution": m["solution"],
        "effect": m["effect"],
        "expected_benefit_vnd": m["expected_benefit_vnd"],
        "applied_on": _iso(m["applied_on"]),
        "confidential": m["confidential"],
        "authors": m["authors"],
        "entered_by": m["entered_by"],
        "submitted_at": utc(m["submitted_at"]).isoformat(),
        "revision": m["revision"],
        "review": review,
        "appraisal": appraisal,
    }


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


async def load(conn: AsyncConnection, initiative_id: str, *, for_update: bool = False) -> Any:
    stmt = (
        select(initiatives, units.c.path.label("unit_path"))
        .select_from(initiatives.outerjoin(units, units.c.code == initiatives.c.unit_code))
        .where(initiatives.c.id == initiative_id)
    )
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=initiatives)
    return (await conn.execute(stmt)).first()


def encode_cursor(submitted_at: datetime, initiative_id: str) -> str:
    raw = orjson.dumps([utc(submitted_at).isoformat(), initiative_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (submitted_at, id) a cursor stands for; ValueError when it is not one ``encode_cursor`` made."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, initiative_id = orjson.loads(raw)
        return datetime.fromisoformat(ts), str(initiative_id)
    except Exception as exc:
        raise ValueError("not a cursor") from exc


def listing(
    principal: Principal,
    *,
    campaign: str | None,
    unit: str | None,
    status: str | None,
    author: str | None,
    submitted_from: datetime | None,
    submitted_to: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Select[Any]:
    """Keyset pagination on (submitted_at, id): a page never repeats or skips a row already committed."""
    stmt = select(initiatives).select_from(initiatives.outerjoin(units, units.c.code == initiatives.c.unit_code))
    if not principal.is_operator:
        if principal.has(*SUBTREE_READERS):
            stmt = stmt.where(subtree_clause(units.c.path, principal.unit))
        else:
            if principal.member_id is None:
                stmt = stmt.where(false())
            else:
                mine = select(initiative_authors.c.initiative_id).where(
                    initiative_authors.c.member_id == principal.member_id
                )
                stmt = stmt.where(initiatives.c.id.in_(mine))
    if campaign:
        stmt = stmt.where(initiatives.c.campaign == campaign)
    if unit:
        stmt = stmt.where(subtree_clause(units.c.path, unit))
    if status:
        stmt = stmt.where(initiatives.c.status == status)
    if author:
        stmt = stmt.where(
            initiatives.c.id.in_(
                select(initiative_authors.c.initiative_id).where(initiative_authors.c.member_id == author)
            )
        )
    if submitted_from:
        stmt = stmt.where(initiatives.c.submitted_at >= utc(submitted_from))
    if submitted_to:
        stmt = stmt.where(initiatives.c.submitted_at <= utc(submitted_to))
    if after is not None:
        ts, last_id = utc(after[0]), after[1]
        stmt = stmt.where(
            or_(initiatives.c.submitted_at > ts, and_(initiatives.c.submitted_at == ts, initiatives.c.id > last_id))
        )
    return stmt.order_by(initiatives.c.submitted_at, initiatives.c.id).limit(limit + 1)


async def page(conn: AsyncConnection, stmt: Select[Any]) -> list[Any]:
    """The rows of a ``listing``: up to its limit, and one more when a next page exists."""
    return list((await conn.execute(stmt)).all())
