"""POST/GET/PATCH /api/v1/initiatives, the batch endpoint and withdrawal (SPEC §8, issue 3)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from pydantic import ValidationError
from sqlalchemy import delete, update
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection

from intake.adapters.orm import fingerprints, idempotency_keys, initiative_authors, initiatives, outbox
from intake.adapters.queries import (
    SUBTREE_READERS,
    can_act_for,
    can_read,
    encode_cursor,
    is_author,
    listing,
    load,
    record_json,
)
from intake.adapters.store import (
    IdempotencyClaim,
    Outcome,
    Prepared,
    autocommit_seq,
    find_idempotency,
    fingerprints_of,
    persist,
    seq_of,
)
from intake.api.deps import ContextDep, PrincipalDep, clock, metrics, plan, writer
from intake.domain.events import REVISED, WITHDRAWN, initiative_payload, submitted_event, withdrawn_payload
from intake.domain.models import BatchRequest, InitiativeCreate, InitiativeUpdate, validation_details
from intake.domain.rules import OPEN_STATUSES, body_hash, content_refusals, fingerprint, local_day, plan_refusals
from intake.submission import check_submitter, prepare, prepare_many, reason_of
from shared.auth import Principal
from shared.db import insert_ignore
from shared.http import ApiError, JsonResponse
from shared.messaging import outbox_row
from shared.service import ServiceContext

router = APIRouter(tags=["initiatives"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)]
NOT_FOUND = ApiError(404, "not_found", "Không tìm thấy sáng kiến")


def _reused() -> ApiError:
    return ApiError(
        422,
        "idempotency_key_reused",
        "Khoá Idempotency-Key đã được dùng cho một yêu cầu khác",
        [{"field": "Idempotency-Key", "message": "Khoá đã dùng với nội dung khác"}],
    )


async def _replay_single(ctx: ServiceContext, claim: IdempotencyClaim) -> JsonResponse | None:
    async with ctx.engine.connect() as conn:
        row = await find_idempotency(conn, claim.principal, claim.key)
        if row is None:
            return None
        if row.endpoint != claim.endpoint or row.body_hash != claim.body_hash:
            raise _reused()
        seq = await seq_of(conn, row.initiative_id)
    if seq is None:
        return None
    metrics(ctx).idempotent_replays.labels("single").inc()
    return JsonResponse({"id": row.initiative_id, "seq": seq, "status": "submitted"}, 201)


def _duplicate(existing_id: str | None) -> ApiError:
    return ApiError(
        409,
        "duplicate",
        "Sáng kiến này đã được chính tác giả gửi trong chiến dịch (trùng tên và giải pháp)",
        {"existing_id": existing_id},
    )


@router.post("/api/v1/initiatives", status_code=201)
async def submit_initiative(
    body: InitiativeCreate, ctx: ContextDep, principal: PrincipalDep, idempotency_key: IdempotencyKey = None
) -> JsonResponse:
    return await submit_one(ctx, principal, body, idempotency_key)


async def submit_one(
    ctx: ServiceContext, principal: Principal, body: InitiativeCreate, idempotency_key: str | None
) -> JsonResponse:
    m = metrics(ctx)
    claim = None
    if idempotency_key:
        claim = IdempotencyClaim(principal.sub, idempotency_key, body_hash(body.model_dump(mode="json")))
        replay = await _replay_single(ctx, claim)
        if replay is not None:
            return replay
    try:
        item = await prepare(plan(ctx), principal, body, clock(ctx), idem=claim)
    except ApiError as exc:
        m.refused.labels(reason_of(exc)).inc()
        raise
    for _ in range(3):
        outcome = await writer(ctx).submit(item)
        if outcome.kind == "created":
            m.accepted.labels("single").inc()
            return JsonResponse({"id": outcome.id, "seq": outcome.seq, "status": "submitted"}, 201)
        if outcome.kind == "duplicate":
            m.refused.labels("duplicate").inc()
            raise _duplicate(outcome.existing_id)
        assert claim is not None
        replay = await _replay_single(ctx, claim)
        if replay is not None:
            return replay
        # The request holding the key was itself refused as a duplicate and released it: try again.
    raise ApiError(503, "unavailable", "Hệ thống đang bận, vui lòng thử lại")


class _ReplayBatch(Exception):
    pass


def _item_error(index: int, exc: ApiError) -> dict[str, Any]:
    return {"index": index, "error": {"code": exc.code, "message": exc.message, "details": exc.details}}


@router.post("/api/v1/initiatives/batch")
async def submit_batch(
    body: BatchRequest, ctx: ContextDep, principal: PrincipalDep, idempotency_key: IdempotencyKey = None
) -> JsonResponse:
    """Up to 1,000 initiatives; each gets its own result and the valid ones are accepted together."""
    return await submit_many(
        ctx, principal, validate_items(body.items), _batch_claim(principal, body.items, idempotency_key)
    )


def validate_items(items: list[dict[str, Any]]) -> list[InitiativeCreate | ApiError]:
    """Each raw item of a batch as a model, or its refusal (422 naming the fields)."""
    out: list[InitiativeCreate | ApiError] = []
    for raw in items:
        try:
            out.append(InitiativeCreate.model_validate(raw))
        except ValidationError as exc:
            out.append(ApiError(422, "validation_error", "Dữ liệu không hợp lệ", validation_details(exc)))
    return out


def _batch_claim(principal: Principal, items: list[dict[str, Any]], key: str | None) -> IdempotencyClaim | None:
    return IdempotencyClaim(principal.sub, key, body_hash({"items": items}), "batch") if key else None


async def submit_many(
    ctx: ServiceContext,
    principal: Principal,
    items: Sequence[InitiativeCreate | ApiError],
    claim: IdempotencyClaim | None,
) -> JsonResponse:
    """The batch: ``items`` are the validated items, or the refusals of those that did not validate."""
    check_submitter(principal)
    m = metrics(ctx)
    if claim is not None:
        async with ctx.engine.connect() as conn:
            stored = await _stored_batch(conn, claim)
        if stored is not None:
            m.idempotent_replays.labels("batch").inc()
            return JsonResponse(stored)
    m.batch_sizes.labels("batch_endpoint").observe(len(items))
    results: list[dict[str, Any] | None] = [None] * len(items)
    refused: Counter[str] = Counter()
    valid: list[int] = []
    models: list[InitiativeCreate] = []
    for i, item in enumerate(items):
        if isinstance(item, ApiError):
            refused["validation_error"] += 1
            results[i] = _item_error(i, item)
        else:
            valid.append(i)
            models.append(item)
    checked = await prepare_many(plan(ctx), principal, models, clock(ctx))
    prepared: list[Prepared] = []
    positions: list[int] = []
    for i, outcome in zip(valid, checked, strict=True):
        if isinstance(outcome, ApiError):
            refused[reason_of(outcome)] += 1
            results[i] = _item_error(i, outcome)
        else:
            prepared.append(outcome)
            positions.append(i)
    try:
        async with (
            batch_slot(ctx),
            autocommit_seq(ctx.engine) as allocate_seq,
            ctx.engine.begin() as conn,
        ):
            outcomes = await persist(conn, prepared, submitted_event(ctx.name), allocate_seq=allocate_seq)
            for i, outcome in zip(positions, outcomes, strict=True):
                results[i] = _batch_result(i, outcome)
            response = {
                "accepted": sum(1 for o in outcomes if o.kind == "created"),
                "refused": sum(1 for r in results if r is not None and "error" in r),
                "items": results,
            }
            if claim is not None:
                inserted = (
                    await conn.execute(
                        insert_ignore(idempotency_keys, conn.dialect.name, ["principal", "key"])
                        .values(
                            principal=claim.principal,
                            key=claim.key,
                            endpoint="batch",
                            body_hash=claim.body_hash,
                            response=response,
                            created_at=datetime.now(UTC),
                        )
                        .returning(idempotency_keys.c.key)
                    )
                ).first()
                if inserted is None:
                    raise _ReplayBatch
    except _ReplayBatch:
        assert claim is not None
        async with ctx.engine.connect() as conn:
            stored = await _stored_batch(conn, claim)
        m.idempotent_replays.labels("batch").inc()
        return JsonResponse(stored)
    ctx.relay.wake()
    m.accepted.labels("batch").inc(response["accepted"])
    for reason, n in refused.items():
        m.refused.labels(reason).inc(n)
    m.refused.labels("duplicate").inc(sum(1 for o in outcomes if o.kind == "duplicate"))
    return JsonResponse(response)


@contextlib.asynccontextmanager
async def batch_slot(ctx: ServiceContext) -> AsyncIterator[None]:
    """One of the ``batch_writers`` slots, taken before any connection (see IntakeSettings.batch_writers);
    503 with Retry-After when neither the slot nor the pool answers within ``batch_wait_s``."""
    slots: asyncio.Semaphore = ctx.extras["batch_slots"]
    wait_s = float(getattr(ctx.settings, "batch_wait_s", 20.0))
    try:
        async with asyncio.timeout(wait_s):
            await slots.acquire()
    except TimeoutError as exc:
        raise _busy() from exc
    try:
        yield
    except PoolTimeout as exc:
        raise _busy() from exc
    finally:
        slots.release()


def _busy() -> ApiError:
    return ApiError(503, "busy", "Hệ thống đang bận, vui lòng gửi lại lô sau ít giây", headers={"Retry-After": "2"})


def _batch_result(index: int, outcome: Outcome) -> dict[str, Any]:
    if outcome.kind == "created":
        return {"index": index, "id": outcome.id, "seq": outcome.seq, "status": "submitted"}
    return _item_error(index, _duplicate(outcome.existing_id))


async def _stored_batch(conn: AsyncConnection, claim: IdempotencyClaim) -> dict[str, Any] | None:
    row = await find_idempotency(conn, claim.principal, claim.key)
    if row is None:
        return None
    if row.endpoint != "batch" or row.body_hash != claim.body_hash:
        raise _reused()
    stored: dict[str, Any] = row.response
    return stored


@router.get("/api/v1/initiatives")
async def list_initiatives(
    ctx: ContextDep,
    principal: PrincipalDep,
    campaign: Annotated[str | None, Query(max_length=64)] = None,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["submitted", "revision_requested", "valid", "invalid", "withdrawn"] | None = None,
    author: Annotated[str | None, Query(max_length=64)] = None,
    submitted_from: datetime | None = None,
    submitted_to: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JsonResponse:
    if not principal.is_operator and not principal.has("member", *SUBTREE_READERS):
        raise ApiError(403, "forbidden", "Không có quyền xem sáng kiến")
    if unit and not principal.is_operator:
        target = await plan(ctx).unit(unit)
        if target is None or principal.unit is None or f"/{principal.unit}/" not in target.path:
            raise ApiError(403, "out_of_scope", "Đơn vị nằm ngoài phạm vi của tài khoản")
    stmt = listing(
        principal,
        campaign=campaign,
        unit=unit,
        status=status,
        author=author,
        submitted_from=submitted_from,
        submitted_to=submitted_to,
        cursor=cursor,
        limit=limit,
    )
    async with ctx.engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].submitted_at, page[-1].id) if len(rows) > limit else None
    return JsonResponse({"items": [record_json(r) for r in page], "next_cursor": next_cursor})


@router.get("/api/v1/initiatives/{initiative_id}")
async def get_initiative(initiative_id: str, ctx: ContextDep, principal: PrincipalDep) -> JsonResponse:
    async with ctx.engine.connect() as conn:
        row = await load(conn, initiative_id[:36])
    if row is None or not can_read(principal, row.authors, row.unit_path):
        raise NOT_FOUND
    return JsonResponse(record_json(row))


async def _load_for_action(conn: AsyncConnection, initiative_id: str, principal: Principal) -> Any:
    row = await load(conn, initiative_id[:36], for_update=True)
    if row is None or not can_read(principal, row.authors, row.unit_path):
        raise NOT_FOUND
    if not can_act_for(principal, row.authors, row.unit_path):
        raise ApiError(403, "forbidden", "Chỉ tác giả hoặc tổ hỗ trợ của đơn vị được thao tác trên sáng kiến này")
    return row


@router.patch("/api/v1/initiatives/{initiative_id}")
async def revise_initiative(
    initiative_id: str, body: InitiativeUpdate, ctx: ContextDep, principal: PrincipalDep
) -> JsonResponse:
    """Sửa sáng kiến theo yêu cầu của người xét duyệt: only while ``revision_requested``."""
    changes = body.model_dump(exclude_unset=True, mode="python")
    async with ctx.engine.begin() as conn:
        row = await _load_for_action(conn, initiative_id, principal)
        if row.status != "revision_requested":
            raise ApiError(409, "not_revision_requested", "Chỉ sửa được sáng kiến đang được yêu cầu chỉnh sửa")
        current = record_json(row)
        merged = {k: current[k] for k in InitiativeCreate.model_fields} | {
            k: (v if k != "authors" else [dict(a) for a in v]) for k, v in changes.items()
        }
        try:
            candidate = InitiativeCreate.model_validate(merged)
        except ValidationError as exc:
            raise ApiError(422, "validation_error", "Dữ liệu không hợp lệ", validation_details(exc)) from exc
        if not principal.is_operator and not principal.has("support") and not is_author(principal, merged["authors"]):
            raise ApiError(403, "not_an_author", "Đoàn viên phải là một trong các tác giả", [{"field": "authors"}])
        campaign = await plan(ctx).campaign(candidate.campaign, conn)
        unit = await plan(ctx).unit(candidate.unit_code, conn)
        errors = content_refusals(candidate)
        plan_errors, _ = plan_refusals(candidate, campaign, unit, local_day(clock(ctx)), need_open_phase=False)
        errors.extend(e for e in plan_errors if e["field"] != "unit_code")
        if errors:
            raise ApiError(422, "validation_error", "Dữ liệu không hợp lệ", errors)
        now = clock(ctx).astimezone(UTC)
        values = {
            "field": candidate.field,
            "title": candidate.title,
            "problem": None if candidate.confidential else candidate.problem,
            "solution": None if candidate.confidential else candidate.solution,
            "effect": candidate.effect,
            "expected_benefit_vnd": candidate.expected_benefit_vnd,
            "applied_on": candidate.applied_on,
            "authors": [a.model_dump() for a in candidate.authors],
            "revision": row.revision + 1,
            "status": "submitted",
            "updated_at": now,
        }
        done = await conn.execute(
            update(initiatives)
            .where(
                initiatives.c.id == row.id,
                initiatives.c.status == "revision_requested",
                initiatives.c.revision == row.revision,
            )
            .values(**values)
        )
        if done.rowcount == 0:  # type: ignore[attr-defined]
            raise ApiError(409, "conflict", "Sáng kiến vừa được thay đổi, vui lòng tải lại")
        await conn.execute(delete(fingerprints).where(fingerprints_of(row)))
        fp = fingerprint(candidate.title, values["solution"])
        member_ids = sorted({a.member_id for a in candidate.authors})
        claimed = (
            await conn.execute(
                insert_ignore(fingerprints, conn.dialect.name, ["campaign", "member_id", "fingerprint"]).returning(
                    fingerprints.c.member_id
                ),
                [
                    {"campaign": row.campaign, "member_id": mid, "fingerprint": fp, "initiative_id": row.id}
                    for mid in member_ids
                ],
            )
        ).all()
        if len(claimed) != len(member_ids):
            raise _duplicate(None)
        await conn.execute(delete(initiative_authors).where(initiative_authors.c.initiative_id == row.id))
        await conn.execute(
            initiative_authors.insert(), [{"initiative_id": row.id, "member_id": mid} for mid in member_ids]
        )
        record = dict(row._mapping) | values
        await conn.execute(outbox.insert(), [outbox_row(ctx.event(REVISED, initiative_payload(record)))])
        fresh = await load(conn, row.id)
    ctx.relay.wake()
    return JsonResponse(record_json(fresh))


@router.post("/api/v1/initiatives/{initiative_id}/withdraw")
async def withdraw_initiative(initiative_id: str, ctx: ContextDep, principal: PrincipalDep) -> JsonResponse:
    """Rút sáng kiến: allowed before a decision; terminal."""
    async with ctx.engine.begin() as conn:
        row = await _load_for_action(conn, initiative_id, principal)
        if row.status == "withdrawn":
            return JsonResponse({"id": row.id, "status": "withdrawn"})
        if row.status not in OPEN_STATUSES:
            raise ApiError(409, "already_decided", "Sáng kiến đã có kết quả xét duyệt, không thể rút")
        now = clock(ctx).astimezone(UTC)
        done = await conn.execute(
            update(initiatives)
            .where(initiatives.c.id == row.id, initiatives.c.status.in_(OPEN_STATUSES))
            .values(status="withdrawn", updated_at=now)
        )
        if done.rowcount == 0:  # type: ignore[attr-defined]
            raise ApiError(409, "conflict", "Sáng kiến vừa được thay đổi, vui lòng tải lại")
        # A withdrawn initiative no longer blocks its author from submitting it again.
        await conn.execute(delete(fingerprints).where(fingerprints_of(row)))
        payload = withdrawn_payload(dict(row._mapping), now)
        await conn.execute(outbox.insert(), [outbox_row(ctx.event(WITHDRAWN, payload))])
    ctx.relay.wake()
    return JsonResponse({"id": row.id, "status": "withdrawn"})
