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

import time
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    DateTime,
    Insert,
    Integer,
    String,
    Update,
    and_,
    any_,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from review.adapters.orm import decisions, items, outbox, units
from review.domain.rules import STATUS_OF, identities
from shared import bulk
from shared.auth import Principal
from shared.envelope import encode_many, routing_key
from shared.messaging import mark_outbox_dirty, outbox_insert_many, outbox_many_params, stage_encoded

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


# **The floor.** An item decided leaves its entry under 'pending' in the queue's indexes until vacuum clears it: a
# claim that starts at the lowest seq steps over every item decided since (at 90,000 decided, 300 index pages per
# claim, where 14 do after a vacuum; in bench/pipeline.py at 100,000 initiatives a claim took 3.5 ms at first and
# 10 ms at 90,000 decided). So a claim starts SEQ_LAG below the lowest pending seq its replica read at most
# FLOOR_REFRESH_S ago (review.runtime). An item that becomes pending below that (a late arrival, a revision sent
# back to the queue) is claimed once the floor is read again: seconds late, never lost.
SEQ_LAG = 1_000
NO_FLOOR = -(2**62)

# The planner settings of a claim (SET LOCAL), each set in one statement: one round trip instead of two.
NO_SEQSCAN = text("SELECT set_config('enable_seqscan', 'off', true)")
NO_SORT = text("SELECT set_config('enable_sort', 'off', true)")
NO_SEQSCAN_NO_SORT = text("SELECT set_config('enable_seqscan', 'off', true), set_config('enable_sort', 'off', true)")


# A subtree found large is claimed in queue order under its path, and that scope is exact whatever the subtree's
# size: its claims need not read its codes again to learn that it is large (a national reviewer's claim read 5,001
# of the 152,573 codes to learn it: 9% of review's samples in the national replay). Read again after
# LARGE_REFRESH_S: a subtree that shrank meanwhile is claimed the slower way till then, and a root that moved
# meanwhile claims nothing till then (no unit's path starts with its old one), never an item outside its subtree.
LARGE_REFRESH_S = 10.0
LARGE_KEPT = 1024


class LargeSubtrees:
    """A replica's roots whose subtrees a claim found large, with their paths and when (``time.monotonic``)."""

    def __init__(self) -> None:
        self._paths: dict[str, tuple[float, str]] = {}

    def path_of(self, root: str) -> str | None:
        """The root's path if a claim found its subtree large less than ``LARGE_REFRESH_S`` ago."""
        held = self._paths.get(root)
        if held is None or time.monotonic() - held[0] > LARGE_REFRESH_S:
            return None
        return held[1]

    def remember(self, root: str, path: str) -> None:
        if len(self._paths) >= LARGE_KEPT:
            self._paths.clear()
        self._paths[root] = (time.monotonic(), path)


async def subtree(session: AsyncSession, root_code: str, limit: int) -> tuple[str | None, list[str]]:
    """The root's path and up to ``limit`` unit codes of its subtree (itself included), in one statement (the
    root's path, then the codes in its range, took two round trips per claim)."""
    rows = (await session.execute(_SUBTREE, {"code": root_code, "limit": limit})).all()
    if not rows:
        return None, []
    return rows[0][0], [code for _path, code in rows]


# Built once (a claim built them anew: 15% of the claim endpoint's samples went to making clauses). The root's
# subtree is the range of paths from its own to its successor, "/VN/TH/" .. "/VN/TH0" ('/' + 1 is '0' in
# code-point order), read through ix_unit_replica_path_c (migration 0002); the root is a member of it.
_ROOT = units.alias("root")
_MEMBER = units.alias("member")
_SUCCESSOR = func.left(_ROOT.c.path, -1).concat(func.chr(func.ascii(func.right(_ROOT.c.path, 1)) + 1))
_SUBTREE = (
    select(_ROOT.c.path, _MEMBER.c.code)
    .join_from(
        _ROOT,
        _MEMBER,
        and_(_MEMBER.c.path.collate("C") >= _ROOT.c.path, _MEMBER.c.path.collate("C") < _SUCCESSOR),
    )
    .where(_ROOT.c.code == bindparam("code"))
    .limit(bindparam("limit"))
)


async def lowest_pending_seq(session: AsyncSession) -> int | None:
    """The lowest seq of a pending item (None: nothing is pending)."""
    query = select(func.min(items.c.seq)).where(items.c.status == "pending")
    return (await session.execute(query)).scalar_one_or_none()


async def lease(
    session: AsyncSession,
    principal: Principal,
    count: int,
    now: datetime,
    expires: datetime,
    units_total: int,
    floor: int | None = None,
    large: LargeSubtrees | None = None,
) -> tuple[list[Any], int]:
    """Lease up to ``count`` items: their rows (the columns in ``SHOWN``), and how many had an expired lease.
    ``units_total``: how many units the tree has (recent is enough); ``floor``: the lowest seq of a pending item,
    recently read (``lowest_pending_seq``), or None; ``large``: the replica's subtrees found large."""
    codes: list[str] | None = None
    path: str | None = None
    no_seqscan = False
    if not principal.is_operator:
        root = str(principal.unit)
        path = large.path_of(root) if large is not None else None
        if path is None:
            # The subtree's read is a prepared statement too: its generic plan (LIMIT unknown) scanned every unit
            # with a join filter, 26 ms at 151,500 units where its range of the path index takes 0.05 (a grassroots
            # reviewer's claim cost 21 ms in a national tree). The setting holds for the claim's statement after.
            await session.execute(NO_SEQSCAN)
            no_seqscan = True
            # A subtree of more than this many units is a large share of the tree: its items are dense in the
            # queue, read in seq order. Reading one code more than that tells (a province's 3,690 codes per claim
            # were 11% of review's CPU in the full replay).
            most = min(MAX_CODES, units_total // SHARE)
            path, codes = await subtree(session, root, most + 1)
            if path is None:
                return [], 0
            if len(codes) > most:
                codes = None
                if large is not None:
                    large.remember(root, path)
    scope, params = lease_params(principal, count, now, expires, path, codes, floor)
    # The queue grows from nothing in minutes and its statistics lag behind: a plan made on them (a scan of
    # the whole table and a sort) costs milliseconds per claim on a few thousand rows. The indexes answer
    # every shape of claim in order and stop at ``count``; tell the planner so for this transaction.
    # (A claim by codes has read them, after NO_SEQSCAN.)
    if scope != "codes":
        await session.execute(NO_SORT if no_seqscan else NO_SEQSCAN_NO_SORT)
    rows = (await session.execute(lease_statement(scope, len(identities(principal))), params)).all()
    return list(rows), sum(1 for r in rows if r.expired_lease is not None)


def lease_params(
    principal: Principal,
    count: int,
    now: datetime,
    expires: datetime,
    path: str | None,
    codes: list[str] | None,
    floor: int | None = None,
) -> tuple[Literal["all", "codes", "path"], dict[str, Any]]:
    """The shape of ``lease_statement`` for the caller's subtree (``path``/``codes``; None for an operator) and its
    parameters."""
    not_by = [f"%|{_like_escaped(i)}|%" for i in sorted(identities(principal))]
    since = NO_FLOOR if floor is None else floor - SEQ_LAG
    params: dict[str, Any] = {"now": now, "count": count, "holder": principal.sub, "expires": expires, "since": since}
    params |= {f"not_by_{n}": pattern for n, pattern in enumerate(not_by)}
    if path is None:
        return "all", params
    if codes is not None:
        return "codes", params | {"codes": codes}
    return "path", params | {"path": path}


def _like_escaped(value: str) -> str:
    return value.replace("/", "//").replace("%", "/%").replace("_", "/_")


@cache
def lease_statement(scope: Literal["all", "codes", "path"], authors: int) -> Update:
    """The claim's one statement, built once per shape: it picks the oldest claimable items of the caller's subtree
    (``scope``: an operator's whole queue, the ``codes`` of a small subtree, or the units under ``path``), locked,
    skipping rows another reviewer holds locked, leaving out those whose ``author_ids`` match one of the ``authors``
    patterns ``not_by_<n>``, at most ``count``; and leases them to ``holder`` until ``expires``.

    Without a sort: in queue order, the (status, seq) index stopped at ``count``. The picked rows are leased by the
    same statement (a CTE locked FOR UPDATE is never inlined: it is planned as it would be alone)."""
    now = bindparam("now", type_=DateTime(timezone=True))
    conditions: list[Any] = [
        items.c.status == "pending",
        items.c.seq >= bindparam("since", type_=BigInteger),
        or_(items.c.lease_expires_at.is_(None), items.c.lease_expires_at <= now),
        *(items.c.author_ids.not_like(bindparam(f"not_by_{n}", type_=String), escape="/") for n in range(authors)),
    ]
    query = select(items.c.initiative_id, items.c.lease_expires_at).where(*conditions)
    if scope == "codes":
        query = query.where(items.c.unit_code == any_(bindparam("codes", type_=CODES)))
    elif scope == "path":
        # Each item's unit path by primary key, a subquery per item in queue order. As a join, the planner kept the
        # subtree's units in memory and searched them for each item (a nested loop with a join filter): at a
        # province's 3,690 units a claim compared 91,000 pairs, 8.4 of its 9.7 ms of PostgreSQL, and at a
        # national tree's 150,000 it would compare millions.
        unit_path = select(units.c.path).where(units.c.code == items.c.unit_code).scalar_subquery()
        query = query.where(func.strpos(unit_path, bindparam("path", type_=String)) == 1)
    picked = (
        query.order_by(items.c.seq)
        .limit(bindparam("count", type_=Integer))
        .with_for_update(skip_locked=True, of=items)
        .cte("picked")
    )
    return (
        update(items)
        .where(items.c.initiative_id == picked.c.initiative_id)
        .values(
            lease_holder=bindparam("holder", type_=String),
            lease_expires_at=bindparam("expires", type_=DateTime(timezone=True)),
        )
        .returning(*(items.c[c] for c in SHOWN), picked.c.lease_expires_at.label("expired_lease"))
    )


# ---- decisions -----------------------------------------------------------------------------------

REVIEWED = "initiative.reviewed"  # the event each accepted decision stages
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


async def record_decisions(
    session: AsyncSession, accepted: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]], producer: str
) -> None:
    """The audit rows and the items' new state (lease ended) of the accepted decisions, and their ``events``
    (``initiative.reviewed.v1``, one per decision) staged in the outbox. PostgreSQL: one statement writes all
    three (two round trips fewer per batch of decisions than a statement each)."""
    ids, bodies = encode_many(REVIEWED, events, producer=producer)
    keys = [routing_key(REVIEWED)] * len(ids)
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
        params = outbox_many_params(ids, keys, bodies)
        params |= bulk.rows_param([[d[c] for c in DECISION_COLUMNS] for d in accepted], "audit")
        params |= bulk.rows_param([[c[k] for k in ITEM_COLUMNS] for c in changes], "state")
        await session.execute(_decided_pg(), params)
        mark_outbox_dirty(session)
        return
    await session.execute(decisions.insert(), [{c: d[c] for c in DECISION_COLUMNS} for d in accepted])
    values = {c: bindparam(f"b_{c}") for c in ITEM_COLUMNS if c != "initiative_id"}
    stmt = update(items).where(items.c.initiative_id == bindparam("b_initiative_id")).values(values)
    await session.execute(stmt, [{f"b_{k}": v for k, v in c.items()} for c in changes])
    await stage_encoded(session, outbox, ids, keys, bodies)


@cache
def _decided_pg() -> Insert:
    """``WITH audit AS (INSERT INTO review_decision …), state AS (UPDATE review_item …) INSERT INTO outbox …``:
    PostgreSQL runs each data-modifying CTE once, whether or not the statement reads it."""
    audit = bulk.insert_rows(decisions, DECISION_COLUMNS, "audit").cte("audit")
    state = bulk.update_rows(items, ("initiative_id",), ITEM_COLUMNS, "state").cte("state")
    return outbox_insert_many(outbox).add_cte(audit, state)
