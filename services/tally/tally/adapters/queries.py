"""Read side: figures of units (from counters, never recomputed per query), rankings, time series."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import and_, func, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from tally.adapters.orm import WHOLE, counters, daily, effective_quotas, milestones, units
from tally.domain.counting import achievement_pct, competition_ranks, figures

METRICS = ("valid", "participants", "achievement_pct", "benefit_vnd")


def _quota_columns(campaign: str, phase: str | None) -> tuple[Any, Any]:
    """Correlated sums over the unit's own effective-quota rows (an index lookup per unit, never a scan)."""
    cols = []
    for name in ("quota", "self_set"):
        q = select(func.sum(effective_quotas.c[name])).where(
            effective_quotas.c.campaign == campaign, effective_quotas.c.unit_code == units.c.code
        )
        if phase is not None:
            q = q.where(effective_quotas.c.phase == phase)
        cols.append(q.correlate(units).scalar_subquery().label(name))
    return cols[0], cols[1]


def _figures_query(campaign: str, phase: str | None, *, with_quota: bool = True) -> Any:
    quota, self_set = (
        _quota_columns(campaign, phase) if with_quota else (null().label("quota"), null().label("self_set"))
    )
    return (
        select(
            units.c.code,
            units.c.name,
            units.c.kind,
            units.c.parent_code,
            units.c.cluster,
            units.c.path,
            func.coalesce(counters.c.submitted, 0).label("submitted"),
            func.coalesce(counters.c.valid, 0).label("valid"),
            func.coalesce(counters.c.invalid, 0).label("invalid"),
            func.coalesce(counters.c.participants, 0).label("participants"),
            func.coalesce(counters.c.benefit_vnd, 0).label("benefit_vnd"),
            quota,
            self_set,
        )
        .select_from(units)
        .outerjoin(
            counters,
            and_(
                counters.c.unit_code == units.c.code,
                counters.c.campaign == campaign,
                counters.c.phase == (phase or WHOLE),
            ),
        )
    )


def row_figures(row: Any, quota: tuple[int, int] | None = None) -> dict[str, Any]:
    if quota is not None:
        return figures(
            int(row.submitted), int(row.valid), int(row.invalid), int(row.participants), int(row.benefit_vnd), *quota
        )
    return figures(
        int(row.submitted),
        int(row.valid),
        int(row.invalid),
        int(row.participants),
        int(row.benefit_vnd),
        None if row.quota is None else int(row.quota),
        None if row.self_set is None else int(row.self_set),
    )


def unit_brief(row: Any) -> dict[str, Any]:
    return {"code": row.code, "name": row.name, "kind": row.kind}


async def unit_with_children(
    session: AsyncSession, code: str, campaign: str, phase: str | None
) -> tuple[Any, list[Any]] | None:
    base = _figures_query(campaign, phase)
    row = (await session.execute(base.where(units.c.code == code))).first()
    if row is None:
        return None
    children = (await session.execute(base.where(units.c.parent_code == code).order_by(units.c.code))).all()
    return row, list(children)


async def rankings(
    session: AsyncSession,
    campaign: str,
    phase: str | None,
    kind: str,
    cluster: str | None,
    metric: str,
    limit: int,
) -> list[dict[str, Any]]:
    # Quotas are looked up for the ranked page only, unless they are the metric.
    base = _figures_query(campaign, phase, with_quota=metric == "achievement_pct").where(units.c.kind == kind)
    if cluster is not None:
        base = base.where(units.c.cluster == cluster)
    if metric == "achievement_pct":
        eq = base.selected_columns
        ratio = (eq.valid * 1.0) / eq.quota
        query = base.where(eq.quota > 0).order_by(ratio.desc(), units.c.code).limit(limit + 100)
    else:
        col = {
            "valid": counters.c.valid,
            "participants": counters.c.participants,
            "benefit_vnd": counters.c.benefit_vnd,
        }
        query = base.order_by(func.coalesce(col[metric], 0).desc(), units.c.code).limit(limit)
    rows = (await session.execute(query)).all()
    scored: list[tuple[Any, Any]] = []
    for r in rows:
        value = achievement_pct(int(r.valid), r.quota) if metric == "achievement_pct" else int(getattr(r, metric))
        scored.append((value, r))
    # Rounded percentages may tie where the exact ratios did not: ties list by code.
    scored.sort(key=lambda vr: (-vr[0], vr[1].code))
    scored = scored[:limit]
    ranks = competition_ranks([v for v, _ in scored])
    quotas = await _quotas_of(session, [r.code for _, r in scored], campaign, phase)
    return [
        {
            "rank": rank,
            "unit": {"code": r.code, "name": r.name, "kind": r.kind, "cluster": r.cluster},
            "value": value,
            "figures": row_figures(r, quotas.get(r.code)),
        }
        for rank, (value, r) in zip(ranks, scored, strict=True)
    ]


async def _quotas_of(
    session: AsyncSession, codes: Sequence[str], campaign: str, phase: str | None
) -> dict[str, tuple[int, int]]:
    if not codes:
        return {}
    q = select(
        effective_quotas.c.unit_code, func.sum(effective_quotas.c.quota), func.sum(effective_quotas.c.self_set)
    ).where(effective_quotas.c.campaign == campaign, effective_quotas.c.unit_code.in_(list(codes)))
    if phase is not None:
        q = q.where(effective_quotas.c.phase == phase)
    rows = (await session.execute(q.group_by(effective_quotas.c.unit_code))).all()
    return {code: (int(quota or 0), int(self_set or 0)) for code, quota, self_set in rows}


async def timeseries(
    session: AsyncSession, campaign: str, unit: str, start: date | None, end: date | None
) -> list[dict[str, Any]]:
    query = select(daily.c.day, daily.c.submitted, daily.c.valid).where(
        daily.c.unit_code == unit, daily.c.campaign == campaign
    )
    rows = (await session.execute(query.order_by(daily.c.day))).all()
    out: list[dict[str, Any]] = []
    cum_s = cum_v = 0
    for day, s, v in rows:
        cum_s += int(s)
        cum_v += int(v)
        if (start and day < start) or (end and day > end) or (s == 0 and v == 0):
            continue
        out.append(
            {
                "date": day.isoformat(),
                "submitted": int(s),
                "valid": int(v),
                "cumulative_submitted": cum_s,
                "cumulative_valid": cum_v,
            }
        )
    return out


def snapshot_columns() -> Sequence[str]:
    return ("submitted", "valid", "invalid", "participants", "benefit_vnd", "quota", "self_set")


async def campaign_milestones(session: AsyncSession, campaign: str) -> list[Any]:
    stmt = select(milestones).where(milestones.c.campaign == campaign).order_by(milestones.c.n)
    return list((await session.execute(stmt)).all())
