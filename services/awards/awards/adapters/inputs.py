"""The inputs of a computation, frozen per snapshot the first time the snapshot is used.

- Unit figures ("units:<kind>") are read once from tally's snapshot and stored here.
- Member figures ("members:<phase or *>") are derived from this service's per-initiative facts
  as they stood at the snapshot's ``taken_at``: for each initiative the decision with the highest
  ``decision_seq`` among those decided at or before ``taken_at`` (valid → counts, with verified
  benefit or else the expected one) and the appraisal with the highest ``appraisal_seq`` appraised
  at or before ``taken_at``. They are stored too, so a decision arriving late cannot change a
  recomputation for the same snapshot.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from awards.adapters.orm import appraisals, decisions, frozen_inputs, initiatives, snapshots
from awards.adapters.tally_client import TallyClient
from awards.domain.schemes import member_figures
from shared.db import insert_ignore
from shared.instants import parse_instant


async def snapshot_meta(
    session: AsyncSession, tally: TallyClient, snapshot_id: str, authorization: str | None
) -> dict[str, Any]:
    """The snapshot's campaign, phase and taken_at; asks tally (which also checks the caller) and keeps it."""
    body = await tally.snapshot(snapshot_id, authorization)
    meta = {
        "id": str(body.get("id") or snapshot_id),
        "campaign": str(body["campaign"]),
        "phase": body.get("phase"),
        "taken_at": parse_instant(body["taken_at"]),
    }
    async with session.begin():
        await session.execute(insert_ignore(snapshots, session.bind.dialect.name, ["id"]).values(**meta))
        row = (await session.execute(select(snapshots).where(snapshots.c.id == meta["id"]))).one()
    return {"id": row.id, "campaign": row.campaign, "phase": row.phase, "taken_at": parse_instant(row.taken_at)}


async def _frozen(session: AsyncSession, snapshot_id: str, key: str) -> Any | None:
    body = (
        await session.execute(
            select(frozen_inputs.c.body).where(frozen_inputs.c.snapshot_id == snapshot_id, frozen_inputs.c.key == key)
        )
    ).scalar_one_or_none()
    return None if body is None else orjson.loads(body)


async def _freeze(session: AsyncSession, snapshot_id: str, key: str, value: Any) -> Any:
    """Store ``value`` unless a concurrent computation stored it first; return the stored one."""
    row = {
        "snapshot_id": snapshot_id,
        "key": key,
        "body": orjson.dumps(value).decode(),
        "created_at": datetime.now(UTC),
    }
    async with session.begin():
        dialect = session.bind.dialect.name
        await session.execute(insert_ignore(frozen_inputs, dialect, ["snapshot_id", "key"]).values(**row))
        return await _frozen(session, snapshot_id, key)


async def unit_inputs(
    session: AsyncSession, tally: TallyClient, snapshot_id: str, kind: str, authorization: str | None
) -> list[dict[str, Any]]:
    key = f"units:{kind}"
    async with session.begin():
        got = await _frozen(session, snapshot_id, key)
    if got is not None:
        return list(got)
    items = await tally.figures(snapshot_id, kind, authorization)
    rows = sorted(
        (
            {
                "unit": {k: it["unit"].get(k) for k in ("code", "name", "kind", "parent_code", "cluster")},
                "figures": dict(it.get("figures") or {}),
            }
            for it in items
            if (it.get("unit") or {}).get("kind", kind) == kind
        ),
        key=lambda r: str(r["unit"]["code"]),
    )
    return list(await _freeze(session, snapshot_id, key, rows))


async def member_inputs(
    session: AsyncSession, snapshot_id: str, campaign: str, phase: str | None, taken_at: datetime
) -> list[dict[str, Any]]:
    key = f"members:{phase or '*'}"
    async with session.begin():
        got = await _frozen(session, snapshot_id, key)
        if got is not None:
            return list(got)
        where = [initiatives.c.campaign == campaign]
        if phase is not None:
            where.append(initiatives.c.phase == phase)
        facts = (await session.execute(select(initiatives).where(*where))).all()
        ids = [f.id for f in facts]
        latest: dict[str, tuple[int, str, int]] = {}
        grades: dict[str, tuple[int, str]] = {}
        for chunk in range(0, len(ids), 5000):
            part = ids[chunk : chunk + 5000]
            for d in (await session.execute(select(decisions).where(decisions.c.initiative_id.in_(part)))).all():
                if parse_instant(d.decided_at) > taken_at:
                    continue
                held = latest.get(d.initiative_id)
                if held is None or d.decision_seq > held[0]:
                    latest[d.initiative_id] = (d.decision_seq, d.outcome, d.benefit_vnd)
            for a in (await session.execute(select(appraisals).where(appraisals.c.initiative_id.in_(part)))).all():
                if parse_instant(a.appraised_at) > taken_at:
                    continue
                held_a = grades.get(a.initiative_id)
                if held_a is None or a.appraisal_seq > held_a[0]:
                    grades[a.initiative_id] = (a.appraisal_seq, a.grade)
    resolved = [
        {
            "id": f.id,
            "unit_code": f.unit_code,
            "authors": orjson.loads(f.authors),
            "valid": f.id in latest and latest[f.id][1] == "valid",
            "benefit_vnd": latest[f.id][2] if f.id in latest else 0,
            "grade": grades[f.id][1] if f.id in grades else "none",
        }
        for f in facts
    ]
    # CPU-bound over a whole campaign's initiatives: off the event loop.
    members = await asyncio.to_thread(member_figures, resolved)
    return list(await _freeze(session, snapshot_id, key, members))
