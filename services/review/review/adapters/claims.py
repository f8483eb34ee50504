"""Claims and decisions in as few statements as a national queue allows.

**Claims (PostgreSQL).** One statement picks the oldest claimable items (``FOR UPDATE SKIP LOCKED``, so
concurrent reviewers pass each other's rows), one leases them and answers them. How the pick finds them
depends on the size of the caller's subtree, read from the unit replica by a range on the path
(``/VN/TH/`` …, in the "C" collation, where a path's subtree is exactly the range from it to its successor):

- a small share of the tree (at most 1/``SHARE`` of its units, and at most ``MAX_CODES``):
  ``unit_code = ANY(codes)``, which the planner answers from the unit indexes (the partial
  ``(unit_code, seq) WHERE status = 'pending'``, or ``unit_code``) whatever the length of the national queue;
- a large share: the queue in ``seq`` order through ``(status, seq)``, keeping the items whose unit lies in
  the subtree; a large subtree holds a large share of the queue, so the first matches come soon.

**Decisions.** The batch's items are read under lock in one statement, and its audit rows and item changes
are written in one statement each (PostgreSQL: the rows as one JSON document, ``shared.bulk``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, any_, bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from review.adapters.orm import decisions, items, units
from review.domain.rules import STATUS_OF, identities
from shared import bulk
from shared.auth import Principal

# A subtree holding at most 1/SHARE of all units (and at most MAX_CODES of them) is sparse in the queue: its
# items are read per unit. A larger share is dense: the queue is read in order, and matches come soon.
SHARE = 20
MAX_CODES = 5000
CODES = ARRAY(String)
# The columns a reviewer is shown (review.service.public_item) and a claim's bookkeeping needs.
SHOWN = (
    "initiative_id",
    "seq",
    "campaign",
    "phase",
    "unit_code",
    "field",
    "title",
    "problem",
    "solution",
    "effect",
    "authors",
    "expected_benefit_vnd",
    "applied_on",
    "confidential",
    "submitted_at",
    "revision",
    "similar",
)


async def unit_count(session: AsyncSession) -> int:
    """How many units the replica holds."""
    return int((await session.execute(select(func.count()).select_from(units))).scalar_one())


# The planner settings of a claim (SET LOCAL), each set in one statement: one round trip instead of two.
NO_SEQSCAN = text("SELECT set_config('enable_seqscan', 'off', true)")
NO_SEQSCAN_NO_SORT = text("SELECT set_config('enable_seqscan', 'off', true), set_config('enable_sort', 'off', true)")


def _claimable(now: datetime, principal: Principal) -> list[Any]:
    conditions: list[Any] = [
        items.c.status == "pending",
        or_(items.c.lease_expires_at.is_(None), items.c.lease_expires_at <= now),
    ]
    for identity in identities(principal):
        conditions.append(~items.c.author_ids.contains(f"|{identity}|", autoescape=True))
    return conditions


async def subtree(session: AsyncSession, root_code: str, limit: int) -> tuple[str | None, list[str]]:
    """The root's path and up to ``limit`` unit codes of its subtree (itself included)."""
    path = (await session.execute(select(units.c.path).where(units.c.code == root_code))).scalar_one_or_none()
    if path is None:
        return None, []
    codes = (
        await session.execute(
            select(units.c.code).where(*_in_range(path)).limit(limit),
        )
    ).scalars()
    return path, list(codes)


def _in_range(path: str) -> list[Any]:
    # "/VN/TH/" .. "/VN/TH0": every path that starts with the root's ('/' + 1 is '0' in code-point order).
    column = units.c.path.collate("C")
    return [column >= path, column < path[:-1] + chr(ord(path[-1]) + 1)]


async def lease(
    session: AsyncSession, principal: Principal, count: int, now: datetime, expires: datetime, units_total: int
) -> tuple[list[Any], int]:
    """Lease up to ``count`` items: their rows (the columns in ``SHOWN``), and how many had an expired lease.
    ``units_total``: how many units the tree has (recent is enough)."""
    codes: list[str] | None = None
    path: str | None = None
    if not principal.is_operator:
        # A subtree of more than this many units is a large share of the tree: its items are dense in the queue,
        # read in seq order. Reading one code more than that tells (a province's 3,690 codes per claim were 11%
        # of review's CPU in the full replay).
        most = min(MAX_CODES, units_total // SHARE)
        path, codes = await subtree(session, str(principal.unit), most + 1)
        if path is None:
            return [], 0
        if len(codes) > most:
            codes = None
    pick, params = pick_statement(principal, count, now, path, codes)
    # The queue grows from nothing in minutes and its statistics lag behind: a plan made on them (a scan of
    # the whole table and a sort) costs milliseconds per claim on a few thousand rows. The indexes answer
    # every shape of claim in order and stop at ``count``; tell the planner so for this transaction.
    await session.execute(NO_SEQSCAN if "codes" in params else NO_SEQSCAN_NO_SORT)
    # Without a sort: in queue order, the (status, seq) index stopped at ``count``. The picked rows are leased
    # by the same statement (a CTE locked FOR UPDATE is never inlined: it is planned as it would be alone).
    picked = pick.cte("picked")
    stmt = (
        update(items)
        .where(items.c.initiative_id == picked.c.initiative_id)
        .values(lease_holder=principal.sub, lease_expires_at=expires)
        .returning(*(items.c[c] for c in SHOWN), picked.c.lease_expires_at.label("expired_lease"))
    )
    rows = (await session.execute(stmt, params)).all()
    return list(rows), sum(1 for r in rows if r.expired_lease is not None)


def pick_statement(
    principal: Principal, count: int, now: datetime, path: str | None, codes: list[str] | None
) -> tuple[Any, dict[str, Any]]:
    """The oldest claimable items of the caller's subtree (``path``/``codes``; None for an operator), locked,
    skipping rows another reviewer holds locked."""
    query = select(items.c.initiative_id, items.c.lease_expires_at).where(*_claimable(now, principal))
    params: dict[str, Any] = {}
    if path is not None:
        if codes is not None:
            query = query.where(items.c.unit_code == any_(bindparam("codes", type_=CODES)))
            params["codes"] = codes
        else:
            # Each item's unit by primary key (a prefix test that no index answers keeps it so), in queue order.
            query = query.join_from(items, units, units.c.code == items.c.unit_code).where(
                func.strpos(units.c.path, bindparam("path", type_=String)) == 1
            )
            params["path"] = path
    return query.order_by(items.c.seq).limit(count).with_for_update(skip_locked=True, of=items), params


# ---- decisions -----------------------------------------------------------------------------------

LOCK_COLUMNS = (
    "initiative_id",
    "campaign",
    "phase",
    "unit_code",
    "seq",
    "title",
    "authors",
    "author_ids",
    "submitted_at",
    "expected_benefit_vnd",
    "status",
    "lease_holder",
    "lease_expires_at",
    "decision_seq",
)
DECISION_COLUMNS = (
    "initiative_id",
    "decision_seq",
    "outcome",
    "reason",
    "note",
    "verified_benefit_vnd",
    "decided_by",
    "decided_at",
    "redecision",
)
ITEM_COLUMNS = (
    "initiative_id",
    "status",
    "decision_seq",
    "reason",
    "verified_benefit_vnd",
    "decided_at",
    "lease_holder",
    "lease_expires_at",
)


async def lock_for_decision(session: AsyncSession, ids: Sequence[str]) -> dict[str, Any]:
    """The items (with their unit's path), locked in one order for every caller: no deadlocks."""
    if session.bind.dialect.name == "postgresql":
        result = await session.execute(_LOCK_PG, {"ids": list(ids)})
    else:
        result = await session.execute(_LOCKED.where(items.c.initiative_id.in_(list(ids))))
    return {r.initiative_id: r for r in result.all()}


# Built once: a statement made per call was 10% of the decision endpoint's samples (its clauses, its cache key).
_LOCKED = (
    select(*(items.c[c] for c in LOCK_COLUMNS), units.c.path)
    .select_from(items.outerjoin(units, units.c.code == items.c.unit_code))
    .where(items.c.revision >= 0)
    .order_by(items.c.initiative_id)
)
_LOCK_PG = _LOCKED.where(items.c.initiative_id == any_(bindparam("ids", type_=CODES))).with_for_update(of=items)


async def record_decisions(session: AsyncSession, accepted: Sequence[dict[str, Any]]) -> None:
    """The audit rows and the items' new state (lease ended) of the accepted decisions."""
    changes = [
        {
            "initiative_id": d["initiative_id"],
            "status": STATUS_OF[d["outcome"]],
            "decision_seq": d["decision_seq"],
            "reason": d["reason"],
            "verified_benefit_vnd": d["verified_benefit_vnd"],
            "decided_at": d["decided_at"],
            "lease_holder": None,
            "lease_expires_at": None,
        }
        for d in accepted
    ]
    if session.bind.dialect.name == "postgresql":
        audit = bulk.rows_param([[d[c] for c in DECISION_COLUMNS] for d in accepted])
        await session.execute(bulk.insert_rows(decisions, DECISION_COLUMNS), audit)
        key = ("initiative_id",)
        state = bulk.rows_param([[c[k] for k in ITEM_COLUMNS] for c in changes])
        await session.execute(bulk.update_rows(items, key, ITEM_COLUMNS), state)
        return
    await session.execute(decisions.insert(), [{c: d[c] for c in DECISION_COLUMNS} for d in accepted])
    values = {c: bindparam(f"b_{c}") for c in ITEM_COLUMNS if c != "initiative_id"}
    stmt = update(items).where(items.c.initiative_id == bindparam("b_initiative_id")).values(values)
    await session.execute(stmt, [{f"b_{k}": v for k, v in c.items()} for c in changes])
