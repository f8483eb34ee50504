"""Writing initiatives: idempotency keys, exact-duplicate fingerprints, the campaign seq, and the
multi-row inserts of initiatives, authors and outbox rows, all in the caller's transaction.

``persist`` is the one write path: the group-commit writer (single POSTs), the batch endpoint and
the import worker all call it with a list of prepared items.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Insert,
    LargeBinary,
    Select,
    String,
    Text,
    and_,
    bindparam,
    cast,
    column,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from intake.adapters.orm import fingerprints, idempotency_keys, initiative_authors, initiatives, outbox, seq_counters
from intake.domain.events import SUBMITTED, SubmittedEvents
from shared.db import insert_ignore
from shared.envelope import Envelope, routing_key
from shared.logs import correlation_id_var


@dataclass(slots=True)
class IdempotencyClaim:
    principal: str
    key: str
    body_hash: str
    endpoint: str = "single"


@dataclass(slots=True)
class Prepared:
    """A validated initiative ready to insert (``record`` lacks only ``seq``)."""

    record: dict[str, Any]
    fingerprint: str
    idem: IdempotencyClaim | None = None
    # Read where the request is handled: the event is built later, in the group commit's own task.
    correlation_id: str | None = field(default_factory=correlation_id_var.get)

    @property
    def author_ids(self) -> list[str]:
        return [a["member_id"] for a in self.record["authors"]]


@dataclass(slots=True)
class Outcome:
    kind: Literal["created", "duplicate", "replay"]
    id: str | None = None
    seq: int | None = None
    existing_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


SUBMITTED_KEY = routing_key(SUBMITTED)
FpKey = tuple[str, str, str]
FpRow = tuple[str, str, str, str]  # FP_COLUMNS: campaign, member_id, fingerprint, initiative_id
EventFactory = Callable[[dict[str, Any], str | None], Envelope]  # (record, correlation id) -> its event
SeqAllocator = Callable[[str, int], Awaitable[int]]


async def persist(
    conn: AsyncConnection,
    items: Sequence[Prepared],
    make_event: EventFactory,
    *,
    allocate_seq: SeqAllocator | None = None,
) -> list[Outcome]:
    """Write ``items`` in the caller's transaction; answer one outcome per item, in order.

    ``allocate_seq(campaign, n)`` answers the last of ``n`` fresh seq numbers; by default the
    counter row is advanced inside this transaction (and locked until it commits).
    """
    dialect = conn.dialect.name
    outcomes: list[Outcome | None] = [None] * len(items)

    # 1. Idempotency keys: the unique (principal, key) decides which request creates.
    seen_keys: dict[tuple[str, str], int] = {}
    idem_rows = []
    now = datetime.now(UTC)
    for i, item in enumerate(items):
        if item.idem is None:
            continue
        k = (item.idem.principal, item.idem.key)
        if k in seen_keys:
            outcomes[i] = Outcome("replay")
            continue
        seen_keys[k] = i
        idem_rows.append(
            {
                "principal": k[0],
                "key": k[1],
                "endpoint": item.idem.endpoint,
                "body_hash": item.idem.body_hash,
                "initiative_id": item.record["id"],
                "response": None,
                "created_at": now,
            }
        )
    if idem_rows:
        idem_rows.sort(key=lambda r: (r["principal"], r["key"]))
        stmt = insert_ignore(idempotency_keys, dialect, ["principal", "key"]).returning(
            idempotency_keys.c.principal, idempotency_keys.c.key
        )
        got = {(r.principal, r.key) for r in (await conn.execute(stmt, idem_rows)).all()}
        for k, i in seen_keys.items():
            if k not in got:
                outcomes[i] = Outcome("replay")

    # 2. Exact duplicates: one fingerprint row per author; the first claim wins, in the batch and in the table.
    claimed: dict[tuple[str, str, str], int] = {}
    in_batch_dup: dict[int, int] = {}
    fp_rows: list[FpRow] = []
    for i, item in enumerate(items):
        if outcomes[i] is not None:
            continue
        campaign, fp, initiative_id = item.record["campaign"], item.fingerprint, item.record["id"]
        keys = [(campaign, a["member_id"], fp) for a in item.record["authors"]]
        clash = next((claimed[k] for k in keys if k in claimed), None)
        if clash is not None:
            in_batch_dup[i] = clash
            outcomes[i] = Outcome("duplicate")
            continue
        for k in keys:
            claimed[k] = i
            fp_rows.append((k[0], k[1], k[2], initiative_id))
    # With a seq allocator of its own connection (the group-commit writer), the numbers are reserved for
    # every candidate while the fingerprints are claimed: one round trip less per group commit. A candidate
    # then found to be a duplicate leaves its number unused (a gap; no number is ever reused).
    candidates = [i for i, o in enumerate(outcomes) if o is None]
    reserving = (
        asyncio.ensure_future(_reserve(allocate_seq, items, candidates)) if allocate_seq and candidates else None
    )
    try:
        await _settle_duplicates(conn, items, outcomes, fp_rows, claimed, in_batch_dup, seen_keys)
    except BaseException:
        if reserving is not None:
            with contextlib.suppress(BaseException):
                await reserving  # never leave the allocator's connection mid-statement
        raise

    # 3. The campaign-wide seq, in order of acceptance.
    fresh = [i for i, o in enumerate(outcomes) if o is None]
    if reserving is not None:
        firsts = await reserving
    else:
        firsts = await _reserve(allocate_seq or (lambda c, n: advance_seq(conn, c, n)), items, fresh)
    for campaign, indexes in _by_campaign(items, fresh).items():
        for offset, i in enumerate(indexes):
            items[i].record["seq"] = firsts[campaign] + offset

    # 4. Initiatives, their authors and their events: one statement on PostgreSQL.
    if fresh:
        await insert_submitted(
            conn, [items[i].record for i in fresh], make_event, now, [items[i].correlation_id for i in fresh]
        )
        for i in fresh:
            outcomes[i] = Outcome("created", id=items[i].record["id"], seq=items[i].record["seq"])
    return [o for o in outcomes if o is not None]


async def _settle_duplicates(
    conn: AsyncConnection,
    items: Sequence[Prepared],
    outcomes: list[Outcome | None],
    fp_rows: list[FpRow],
    claimed: dict[tuple[str, str, str], int],
    in_batch_dup: dict[int, int],
    seen_keys: dict[tuple[str, str], int],
) -> None:
    """Claim the fingerprints; mark the items that duplicate an earlier initiative (in the table or in
    the batch) and release what they had claimed."""
    if fp_rows:
        fp_rows.sort()  # (campaign, member, fingerprint) first: rows are claimed in key order
        taken = await claim_fingerprints(conn, fp_rows)
        for k, i in claimed.items():
            if k not in taken or outcomes[i] is not None:
                continue
            existing = (
                await conn.execute(
                    select(fingerprints.c.initiative_id).where(
                        fingerprints.c.campaign == k[0],
                        fingerprints.c.member_id == k[1],
                        fingerprints.c.fingerprint == k[2],
                    )
                )
            ).scalar_one()
            outcomes[i] = Outcome("duplicate", existing_id=existing)
            await conn.execute(delete(fingerprints).where(fingerprints_of(items[i].record)))
            if items[i].idem is not None:
                await conn.execute(
                    delete(idempotency_keys).where(
                        idempotency_keys.c.principal == items[i].idem.principal,  # type: ignore[union-attr]
                        idempotency_keys.c.key == items[i].idem.key,  # type: ignore[union-attr]
                    )
                )
    for i, j in in_batch_dup.items():
        first = outcomes[j]
        existing = first.existing_id if first is not None and first.kind == "duplicate" else items[j].record["id"]
        outcomes[i] = Outcome("duplicate", existing_id=existing)
        claim = items[i].idem
        if claim is not None and seen_keys.get((claim.principal, claim.key)) == i:
            await conn.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.principal == claim.principal, idempotency_keys.c.key == claim.key
                )
            )


def fingerprints_of(record: Any) -> ColumnElement[bool]:
    """The fingerprint rows of an initiative (a record or a row: its id, campaign and authors), through the
    primary key's prefix: each row is claimed for one of its authors in its campaign, and there is no index
    on ``initiative_id`` alone."""
    get = record.get if isinstance(record, dict) else record._mapping.get
    members = sorted({str(a["member_id"]) for a in get("authors") or []})
    return and_(
        fingerprints.c.campaign == get("campaign"),
        fingerprints.c.member_id.in_(members),
        fingerprints.c.initiative_id == get("id"),
    )


def _by_campaign(items: Sequence[Prepared], indexes: list[int]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for i in indexes:
        out[items[i].record["campaign"]].append(i)
    return out


async def _reserve(allocate: SeqAllocator, items: Sequence[Prepared], indexes: list[int]) -> dict[str, int]:
    """The first of ``len`` fresh seq numbers per campaign (counter rows advanced in campaign order)."""
    firsts: dict[str, int] = {}
    grouped = _by_campaign(items, indexes)
    for campaign in sorted(grouped):
        n = len(grouped[campaign])
        firsts[campaign] = await allocate(campaign, n) - n + 1
    return firsts


FP_COLUMNS = ("campaign", "member_id", "fingerprint", "initiative_id")


def _fp_given() -> Any:
    """The fingerprint rows given as one JSON document (a list of ``FpRow`` lists), typed again."""
    rows = (
        func.jsonb_array_elements(cast(bindparam("fp_rows", type_=Text), postgresql.JSONB))
        .table_valued(column("value", postgresql.JSONB))
        .render_derived(name="r")
    )
    return select(*(cast(rows.c.value[i].astext, fingerprints.c[c].type).label(c) for i, c in enumerate(FP_COLUMNS)))


def _fp_claim_pg() -> Select[Any]:
    """Insert the new fingerprint rows; answer how many were inserted (usually all of them: one number,
    however large the batch, and no set operation over the batch in PostgreSQL)."""
    given = _fp_given().cte("fp_given")
    inserted = (
        postgresql.insert(fingerprints)
        .from_select(list(FP_COLUMNS), select(given))
        .on_conflict_do_nothing(index_elements=list(FP_COLUMNS[:3]))
        .returning(fingerprints.c.initiative_id)
        .cte("fp_inserted")
    )
    return select(func.count()).select_from(inserted)


def _fp_not_ours_pg() -> Select[Any]:
    """The given keys whose row (in this transaction's view) is not the given initiative's: those the claim
    could not insert, another initiative holding them."""
    given = _fp_given().subquery("fp_given")
    ours = (
        select(fingerprints.c.initiative_id)
        .where(
            fingerprints.c.campaign == given.c.campaign,
            fingerprints.c.member_id == given.c.member_id,
            fingerprints.c.fingerprint == given.c.fingerprint,
            fingerprints.c.initiative_id == given.c.initiative_id,
        )
        .exists()
    )
    return select(given.c.campaign, given.c.member_id, given.c.fingerprint).where(~ours)


# Built once: the statements do not depend on the rows (SQLAlchemy then finds them in its compiled cache).
_FP_CLAIM_PG = _fp_claim_pg()
_FP_NOT_OURS_PG = _fp_not_ours_pg()


async def claim_fingerprints(conn: AsyncConnection, rows: list[FpRow]) -> set[FpKey]:
    """Insert the fingerprint rows that are new; answer the keys of the rows this call could NOT insert.

    On PostgreSQL the rows travel as ONE JSON document (a list of row lists) read by ``jsonb_array_elements``:
    the statement's text never changes with the batch size, so it is prepared once, where a multi-row
    VALUES is a new statement (parsed and planned again) for every size; and one ``orjson.dumps`` costs
    this process less than asyncpg's encoding of four text arrays element by element (as in tally). The
    claim answers only how many rows it inserted; the keys it could not insert are asked for only when
    that falls short (a duplicate in the batch)."""
    if conn.dialect.name == "postgresql":
        params = {"fp_rows": orjson.dumps(rows).decode()}
        inserted = (await conn.execute(_FP_CLAIM_PG, params)).scalar_one()
        if inserted == len(rows):
            return set()
        return {(r[0], r[1], r[2]) for r in (await conn.execute(_FP_NOT_OURS_PG, params)).all()}
    stmt = insert_ignore(fingerprints, conn.dialect.name, list(FP_COLUMNS[:3])).returning(
        fingerprints.c.campaign, fingerprints.c.member_id, fingerprints.c.fingerprint
    )
    params_many = [dict(zip(FP_COLUMNS, r, strict=True)) for r in rows]
    inserted_keys = {(r[0], r[1], r[2]) for r in (await conn.execute(stmt, params_many)).all()}
    return {(r[0], r[1], r[2]) for r in rows} - inserted_keys


async def insert_submitted(
    conn: AsyncConnection,
    records: list[dict[str, Any]],
    make_event: EventFactory,
    now: datetime,
    correlation_ids: Sequence[str | None] | None = None,
) -> None:
    """Insert new initiatives, their authors and their events (outbox rows) in the caller's transaction.

    On PostgreSQL this is ONE statement: the initiatives travel as one JSON document (the columns that
    differ between the records; those of one value in all of them go once, as parameters; the author rows
    come from each one's ``authors``), which ``json_to_recordset`` types again, and
    the events as two arrays (id, body) and their one routing key; the initiatives' and authors' inserts
    are data-modifying CTEs of the outbox's. A row's ~20 columns as arrays cost this process an encoding
    step per element, several times one ``orjson.dumps`` of the rows; the event bodies stay bytes (inside
    the JSON they cost PostgreSQL ~6-10 µs each to parse and extract, against ~0.4 µs as a bytea array,
    measured). Measured per row against all-arrays: about 10 µs less here, a few more in PostgreSQL. The statement
    is built with SQLAlchemy Core once per set of columns (``_submitted_insert``) and executed through
    SQLAlchemy, whose compiled cache finds it again; asyncpg prepares it once. Elsewhere (SQLite): executemany.
    """
    correlations = correlation_ids if correlation_ids is not None else [None] * len(records)
    if isinstance(make_event, SubmittedEvents):
        event_ids, bodies = make_event.bodies(records, correlations)
        routing_keys = [SUBMITTED_KEY] * len(records)
    else:
        made = [make_event(r, c) for r, c in zip(records, correlations, strict=True)]
        event_ids, routing_keys, bodies = (
            [e.id for e in made],
            [e.routing_key for e in made],
            [e.to_bytes() for e in made],
        )
    if conn.dialect.name != "postgresql" or len(set(routing_keys)) != 1:
        events = [
            {"event_id": e, "routing_key": k, "body": b, "created_at": now}
            for e, k, b in zip(event_ids, routing_keys, bodies, strict=True)
        ]
        authors = [
            {"initiative_id": r["id"], "member_id": m} for r in records for m in {a["member_id"] for a in r["authors"]}
        ]
        await conn.execute(initiatives.insert(), records)
        await conn.execute(initiative_authors.insert(), authors)
        await conn.execute(outbox.insert(), events)
        return
    first = records[0]
    # The record's own keys (plain str: orjson refuses the column names' str subclass as keys).
    columns = tuple(k for k in first if k in initiatives.c)
    # Columns of one value in every row (a batch's campaign, unit, submitter, instant, initial status...)
    # go once, as parameters: PostgreSQL's JSON parsing costs about its length, and they were ~40% of it.
    shared = tuple(c for c in columns if c in _SHAREABLE and all(r[c] == first[c] for r in records))
    per_row = tuple(c for c in columns if c not in shared)
    params = {f"shared_{c}": first[c] for c in shared} | {
        "rows": orjson.dumps([{c: r[c] for c in per_row} for r in records]),
        "encoding": "UTF8",
        "member_key": "member_id",
        "event_ids": event_ids,
        "routing_key": routing_keys[0],
        "bodies": bodies,
        "now": now,
    }
    await conn.execute(_submitted_insert(per_row, shared), params)


# The columns worth checking for one value in the whole batch (those that vary per item are not).
_SHAREABLE = frozenset(
    {
        "campaign",
        "phase",
        "unit_code",
        "field",
        "confidential",
        "entered_by",
        "submitted_at",
        "revision",
        "status",
        "decision_seq",
        "appraisal_seq",
        "updated_at",
    }
)


# One statement object per set of columns, kept: building it costs ~1 ms per group commit of 32 (bench/intake_insert.py:
# 2,260-2,378 µs CPU per call built each time, 891-985 µs kept), and SQLAlchemy then finds its compiled form in its
# own cache. The hand-compiled SQL sent straight to asyncpg that stood here measured the same (973-1,028 µs) and
# went (docs/benchmarks.md, "Intake: tricks re-measured").
@functools.lru_cache(maxsize=64)
def _submitted_insert(per_row: tuple[str, ...], shared: tuple[str, ...]) -> Insert:
    given = (
        # The document goes as the bytes orjson made (bytea, read as UTF-8 text by PostgreSQL): as text it
        # would be decoded to a str here and encoded back by asyncpg (~1.5 µs per row, measured).
        func.json_to_recordset(
            cast(
                func.convert_from(bindparam("rows", type_=LargeBinary), bindparam("encoding", type_=String)),
                postgresql.JSON,
            )
        )
        .table_valued(*(column(name, initiatives.c[name].type) for name in per_row))
        .render_derived(name="given", with_types=True)
    )
    rows = select(given).cte("submitted")
    add_initiatives = insert(initiatives).from_select(
        [*per_row, *shared],
        select(
            *(rows.c[name] for name in per_row),
            *(bindparam(f"shared_{name}", type_=initiatives.c[name].type) for name in shared),
        ),
    )
    add_authors = insert(initiative_authors).from_select(
        ["initiative_id", "member_id"],
        select(
            rows.c.id,
            func.json_array_elements(rows.c.authors).op("->>")(bindparam("member_key", type_=String)),
        ).distinct(),
    )
    add_events = insert(outbox).from_select(
        ["event_id", "routing_key", "body", "created_at"],
        select(
            func.unnest(bindparam("event_ids", type_=ARRAY(String))),
            bindparam("routing_key", type_=String),
            func.unnest(bindparam("bodies", type_=ARRAY(LargeBinary))),
            bindparam("now", type_=DateTime(timezone=True)),
        ),
    )
    return add_events.add_cte(add_initiatives.cte("add_initiatives"), add_authors.cte("add_authors"))


_ADVANCE_SEQ = (
    update(seq_counters)
    .where(seq_counters.c.campaign == bindparam("seq_campaign", type_=String))
    .values(last_seq=seq_counters.c.last_seq + bindparam("n", type_=BigInteger))
    .returning(seq_counters.c.last_seq)
)


async def advance_seq(conn: AsyncConnection, campaign: str, n: int) -> int:
    params = {"seq_campaign": campaign, "n": n}
    last = (await conn.execute(_ADVANCE_SEQ, params)).scalar_one_or_none()
    if last is None:
        await conn.execute(
            insert_ignore(seq_counters, conn.dialect.name, ["campaign"]).values(campaign=campaign, last_seq=0)
        )
        last = (await conn.execute(_ADVANCE_SEQ, params)).scalar_one()
    return int(last)


@contextlib.asynccontextmanager
async def autocommit_seq(engine: AsyncEngine) -> AsyncIterator[SeqAllocator | None]:
    """A seq allocator on a connection of its own whose every counter advance commits on its own (PostgreSQL).

    Advanced in the writing transaction instead, the counter row stays locked until that transaction
    commits: concurrent batches of one campaign then wait for each other's whole insert and commit (the
    bench's batches of 1,000 spent most of their time in that wait). A transaction that then fails leaves
    a gap; no number is ever reused. SQLite (one writer anyway): None, the counter moves in the caller's
    transaction."""
    if engine.dialect.name != "postgresql":
        yield None
        return
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")

        async def allocate(campaign: str, n: int) -> int:
            return await advance_seq(conn, campaign, n)

        yield allocate


async def find_idempotency(conn: AsyncConnection, principal: str, key: str) -> Any:
    return (
        await conn.execute(
            select(idempotency_keys).where(idempotency_keys.c.principal == principal, idempotency_keys.c.key == key)
        )
    ).first()


async def seq_of(conn: AsyncConnection, initiative_id: str) -> int | None:
    return (await conn.execute(select(initiatives.c.seq).where(initiatives.c.id == initiative_id))).scalar_one_or_none()


async def store_batch_response(conn: AsyncConnection, claim: IdempotencyClaim, response: dict[str, Any]) -> bool:
    """Keep a batch's response under its Idempotency-Key; False when another request holds the key already."""
    inserted = (
        await conn.execute(
            insert_ignore(idempotency_keys, conn.dialect.name, ["principal", "key"])
            .values(
                principal=claim.principal,
                key=claim.key,
                endpoint=claim.endpoint,
                body_hash=claim.body_hash,
                response=response,
                created_at=datetime.now(UTC),
            )
            .returning(idempotency_keys.c.key)
        )
    ).first()
    return inserted is not None
