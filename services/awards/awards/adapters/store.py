"""The statements of schemes, nomination runs, awards and revocations (SQL only; the rules are in ``domain``)."""

from __future__ import annotations

from typing import Any, TypedDict, Unpack

import orjson
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from awards.adapters.orm import awards, campaigns, nomination_runs, revocations, schemes, units
from shared.units import subtree_clause

# ---- schemes -------------------------------------------------------------------------------------


async def scheme_body(session: AsyncSession, code: str) -> str | None:
    """The stored scheme (canonical JSON), None when unknown."""
    return (await session.execute(select(schemes.c.body).where(schemes.c.code == code))).scalar_one_or_none()


async def scheme_bodies(session: AsyncSession) -> list[tuple[str, str]]:
    """Every scheme's code and stored body, by code."""
    rows = await session.execute(select(schemes.c.code, schemes.c.body).order_by(schemes.c.code))
    return [(r.code, r.body) for r in rows]


async def campaign_phases(session: AsyncSession, campaign: str) -> list[str] | None:
    """The phase codes of a campaign the replica holds, None when it holds no such campaign."""
    phases = (
        await session.execute(select(campaigns.c.phases).where(campaigns.c.code == campaign))
    ).scalar_one_or_none()
    return None if phases is None else list(orjson.loads(phases))


async def save_scheme(session: AsyncSession, row: dict[str, Any]) -> None:
    """Insert or replace the scheme ``row["code"]``."""
    code = row["code"]
    exists = (await session.execute(select(schemes.c.code).where(schemes.c.code == code))).first()
    if exists is None:
        await session.execute(schemes.insert().values(**row))
    else:
        await session.execute(schemes.update().where(schemes.c.code == code).values(**row))


async def lock_scheme(session: AsyncSession, code: str) -> None:
    """Serialise the decisions of one scheme (PostgreSQL row lock; SQLite's BEGIN IMMEDIATE already does)."""
    await session.execute(select(schemes.c.code).where(schemes.c.code == code).with_for_update())


# ---- nominations ---------------------------------------------------------------------------------


async def add_nomination_run(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(nomination_runs.insert().values(**row))


async def latest_nomination_run(session: AsyncSession, code: str) -> Any | None:
    query = (
        select(nomination_runs)
        .where(nomination_runs.c.scheme_code == code)
        .order_by(nomination_runs.c.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).first()


# ---- awards --------------------------------------------------------------------------------------


async def active_recipients(session: AsyncSession, code: str) -> set[str]:
    """Recipients awarded in this scheme and not revoked."""
    rows = await session.execute(
        select(awards.c.recipient_key)
        .select_from(awards.outerjoin(revocations, revocations.c.award_id == awards.c.id))
        .where(awards.c.scheme_code == code, revocations.c.award_id.is_(None))
    )
    return {r[0] for r in rows}


async def add_award(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(awards.insert().values(**row))


async def add_revocation(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(revocations.insert().values(**row))


def _with_revocation() -> Select[Any]:
    return select(
        awards,
        revocations.c.decision_no.label("revoke_no"),
        revocations.c.reason.label("revoke_reason"),
        revocations.c.revoked_on,
    ).select_from(awards.outerjoin(revocations, revocations.c.award_id == awards.c.id))


async def award(session: AsyncSession, award_id: str) -> Any | None:
    """One award with its revocation (``revoke_no`` None when in force), None when unknown."""
    return (await session.execute(_with_revocation().where(awards.c.id == award_id))).first()


class AwardFilters(TypedDict):
    """Which awards to read: None leaves a filter out; ``unit`` is the unit's whole subtree."""

    campaign: str | None
    scheme: str | None
    member: str | None
    unit: str | None
    limit: int


async def find_awards(session: AsyncSession, **filters: Unpack[AwardFilters]) -> list[Any]:
    """Awards with their revocations, as the unit replica knows the subtrees."""
    campaign, scheme, member, unit = filters["campaign"], filters["scheme"], filters["member"], filters["unit"]
    stmt = _with_revocation()
    if campaign is not None:
        stmt = stmt.where(awards.c.campaign == campaign)
    if scheme is not None:
        stmt = stmt.where(awards.c.scheme_code == scheme)
    if member is not None:
        stmt = stmt.where(awards.c.recipient_kind == "individual", awards.c.recipient_key == member)
    if unit is not None:
        in_tree = select(units.c.code).where(subtree_clause(units.c.path, unit))
        stmt = stmt.where(awards.c.unit_code.in_(in_tree))
    stmt = stmt.order_by(awards.c.campaign, awards.c.scheme_code, awards.c.signed_on, awards.c.rank, awards.c.id)
    return list((await session.execute(stmt.limit(filters["limit"]))).all())


async def export_rows(session: AsyncSession, code: str) -> list[Any]:
    """A scheme's awards in the order of the exported list: by decision, then rank."""
    query = (
        select(
            awards.c.recipient,
            awards.c.figures,
            awards.c.unit_code,
            awards.c.decision_no,
            awards.c.signed_on,
            awards.c.rank,
            revocations.c.decision_no.label("revoke_no"),
        )
        .select_from(awards.outerjoin(revocations, revocations.c.award_id == awards.c.id))
        .where(awards.c.scheme_code == code)
        .order_by(awards.c.signed_on, awards.c.decision_no, awards.c.rank, awards.c.recipient_key)
    )
    return list((await session.execute(query)).all())
