"""What review does when intake reports an initiative: queue it, re-queue it, or drop it.

Events may come twice or out of order: the highest ``revision`` wins, and ``withdrawn`` is
terminal even when it arrives before the submission itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from review.adapters.orm import items
from review.runtime import ReviewRuntime
from shared.envelope import Envelope

NO_CONTENT = -1  # the revision of a row made by a withdrawal that arrived before its submission


def _instant(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _author_ids(authors: list[dict[str, Any]]) -> str:
    return "|" + "|".join(str(a.get("member_id", "")) for a in authors) + "|"


def _content(d: dict[str, Any]) -> dict[str, Any]:
    authors = list(d.get("authors") or [])
    return {
        "campaign": str(d["campaign"]),
        "phase": d.get("phase"),
        "unit_code": str(d["unit_code"]),
        "seq": int(d.get("seq") or 0),
        "field": d.get("field"),
        "title": str(d.get("title") or "")[:300],
        "problem": d.get("problem"),
        "solution": d.get("solution"),
        "effect": d.get("effect"),
        "expected_benefit_vnd": int(d.get("expected_benefit_vnd") or 0),
        "applied_on": d.get("applied_on"),
        "confidential": bool(d.get("confidential")),
        "authors": authors,
        "author_ids": _author_ids(authors)[:2000],
        "entered_by": d.get("entered_by"),
        "submitted_at": _instant(d.get("submitted_at")),
        "revision": int(d.get("revision") or 0),
    }


async def _current(session: AsyncSession, initiative_id: str) -> Any:
    query = select(items).where(items.c.initiative_id == initiative_id)
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    return (await session.execute(query)).first()


def make_handlers(runtime: ReviewRuntime) -> dict[str, Any]:
    async def on_initiative(session: AsyncSession, env: Envelope) -> None:
        """initiative.submitted.v1 and initiative.revised.v1 carry the whole initiative."""
        d = env.data
        initiative_id = str(d["id"])
        content = _content(d)
        row = await _current(session, initiative_id)
        if row is not None and row.revision >= content["revision"]:
            return  # a duplicate or an older revision arriving late
        now = datetime.now(UTC)
        item = {"initiative_id": initiative_id, **content}
        if row is not None and row.status == "withdrawn":
            await session.execute(update(items).where(items.c.initiative_id == initiative_id).values(**content))
            await runtime.similarity.find_and_record(session, item)
            return
        similar = await runtime.similarity.find_and_record(session, item)
        if row is None:
            await session.execute(
                items.insert().values(
                    initiative_id=initiative_id,
                    **content,
                    status="pending",
                    decision_seq=0,
                    similar=similar,
                    appraisal_count=0,
                    queued_at=now,
                )
            )
            return
        values: dict[str, Any] = {**content, "similar": similar}
        if row.status in ("pending", "revision_requested"):
            # A revision re-enters the queue; any lease on the old text ends.
            values.update(status="pending", lease_holder=None, lease_expires_at=None, queued_at=now)
        await session.execute(update(items).where(items.c.initiative_id == initiative_id).values(**values))

    async def on_withdrawn(session: AsyncSession, env: Envelope) -> None:
        d = env.data
        initiative_id = str(d["id"])
        row = await _current(session, initiative_id)
        if row is None:
            authors = list(d.get("authors") or [])
            await session.execute(
                items.insert().values(
                    initiative_id=initiative_id,
                    campaign=str(d.get("campaign") or ""),
                    phase=d.get("phase"),
                    unit_code=str(d.get("unit_code") or ""),
                    seq=0,
                    title="",
                    expected_benefit_vnd=0,
                    confidential=False,
                    authors=authors,
                    author_ids=_author_ids(authors)[:2000],
                    revision=NO_CONTENT,
                    status="withdrawn",
                    decision_seq=0,
                    similar=[],
                    appraisal_count=0,
                )
            )
            return
        if row.status in ("valid", "invalid"):
            return  # intake refuses a withdrawal after a decision; a stray one changes nothing
        await session.execute(
            update(items)
            .where(items.c.initiative_id == initiative_id)
            .values(status="withdrawn", lease_holder=None, lease_expires_at=None)
        )

    return {"submitted": on_initiative, "revised": on_initiative, "withdrawn": on_withdrawn}
