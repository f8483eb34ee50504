"""Submitting initiatives: one (group-committed with its neighbours) or a batch of up to 1,000, each
idempotent under an Idempotency-Key (SPEC §8, issue 3)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection

from intake.adapters.store import (
    IdempotencyClaim,
    Outcome,
    Prepared,
    autocommit_seq,
    find_idempotency,
    persist,
    seq_of,
    store_batch_response,
)
from intake.domain.errors import Busy, Conflict, Invalid, Refusal, invalid, reason_of
from intake.domain.events import submitted_event
from intake.domain.models import InitiativeCreate, validation_details
from intake.domain.rules import body_hash
from intake.runtime import runtime_of
from intake.service.context import clock, metrics, plan, writer
from intake.submission import check_submitter, prepare, prepare_many
from shared.auth import Principal
from shared.faults import is_infrastructure_error
from shared.service import ServiceContext


@dataclass(frozen=True, slots=True)
class Submitted:
    """An initiative accepted (or the replay of its acceptance): its id and campaign-wide seq."""

    id: str
    seq: int


def reused_key() -> Invalid:
    return Invalid(
        "idempotency_key_reused",
        "Khoá Idempotency-Key đã được dùng cho một yêu cầu khác",
        [{"field": "Idempotency-Key", "message": "Khoá đã dùng với nội dung khác"}],
    )


def duplicate(existing_id: str | None) -> Conflict:
    return Conflict(
        "duplicate",
        "Sáng kiến này đã được chính tác giả gửi trong chiến dịch (trùng tên và giải pháp)",
        {"existing_id": existing_id},
    )


async def submit_one(
    ctx: ServiceContext, principal: Principal, body: InitiativeCreate, idempotency_key: str | None
) -> Submitted:
    """Check the item, hand it to the group-commit writer, and answer once its transaction committed."""
    m = metrics(ctx)
    claim = None
    if idempotency_key:
        claim = IdempotencyClaim(principal.sub, idempotency_key, body_hash(body.model_dump(mode="json")))
        replay = await _replay_single(ctx, claim)
        if replay is not None:
            return replay
    try:
        item = await prepare(plan(ctx), principal, body, clock(ctx), idem=claim)
    except Refusal as exc:
        m.refused.labels(reason_of(exc)).inc()
        raise
    for _ in range(3):
        try:
            outcome = await writer(ctx).submit(item)
        except Exception as exc:
            # The group commit failed on the database or the network: it will pass, the client may retry.
            if is_infrastructure_error(exc):
                raise Busy("unavailable", "Dịch vụ tạm thời không sẵn sàng") from exc
            raise
        if outcome.kind == "created":
            m.accepted.labels("single").inc()
            assert outcome.id is not None and outcome.seq is not None
            return Submitted(outcome.id, outcome.seq)
        if outcome.kind == "duplicate":
            m.refused.labels("duplicate").inc()
            raise duplicate(outcome.existing_id)
        assert claim is not None
        replay = await _replay_single(ctx, claim)
        if replay is not None:
            return replay
        # The request holding the key was itself refused as a duplicate and released it: try again.
    raise Busy("unavailable", "Hệ thống đang bận, vui lòng thử lại")


async def _replay_single(ctx: ServiceContext, claim: IdempotencyClaim) -> Submitted | None:
    async with ctx.engine.connect() as conn:
        row = await find_idempotency(conn, claim.principal, claim.key)
        if row is None:
            return None
        if row.endpoint != claim.endpoint or row.body_hash != claim.body_hash:
            raise reused_key()
        seq = await seq_of(conn, row.initiative_id)
    if seq is None:
        return None
    metrics(ctx).idempotent_replays.labels("single").inc()
    return Submitted(row.initiative_id, seq)


def validate_items(items: Sequence[InitiativeCreate | dict[str, Any]]) -> list[InitiativeCreate | Refusal]:
    """Each item of a batch as a model, or the refusal naming the fields of one that is not."""
    out: list[InitiativeCreate | Refusal] = []
    for item in items:
        if isinstance(item, InitiativeCreate):
            out.append(item)
            continue
        try:
            out.append(InitiativeCreate.model_validate(item))
        except ValidationError as exc:
            out.append(invalid(validation_details(exc)))
    return out


def batch_claim(
    principal: Principal, items: Sequence[InitiativeCreate | dict[str, Any]], key: str | None
) -> IdempotencyClaim | None:
    """The batch's claim on its Idempotency-Key: the same items (as their JSON) make the same claim."""
    if not key:
        return None
    body = [i.model_dump(mode="json") if isinstance(i, InitiativeCreate) else i for i in items]
    return IdempotencyClaim(principal.sub, key, body_hash({"items": body}), "batch")


def _item_error(index: int, exc: Refusal) -> dict[str, Any]:
    return {"index": index, "error": {"code": exc.code, "message": exc.message, "details": exc.details}}


def _batch_result(index: int, outcome: Outcome) -> dict[str, Any]:
    if outcome.kind == "created":
        return {"index": index, "id": outcome.id, "seq": outcome.seq, "status": "submitted"}
    return _item_error(index, duplicate(outcome.existing_id))


class _ReplayBatch(Exception):
    pass


async def submit_many(
    ctx: ServiceContext,
    principal: Principal,
    items: Sequence[InitiativeCreate | Refusal],
    claim: IdempotencyClaim | None,
) -> dict[str, Any]:
    """The batch: ``items`` are the validated items, or the refusals of those that did not validate. Answers
    the batch's result (``accepted``, ``refused`` and one entry per item), stored under ``claim`` if any."""
    check_submitter(principal)
    m = metrics(ctx)
    if claim is not None:
        async with ctx.engine.connect() as conn:
            stored = await _stored_batch(conn, claim)
        if stored is not None:
            m.idempotent_replays.labels("batch").inc()
            return stored
    m.batch_sizes.labels("batch_endpoint").observe(len(items))
    results: list[dict[str, Any] | None] = [None] * len(items)
    refused: Counter[str] = Counter()
    valid: list[int] = []
    models: list[InitiativeCreate] = []
    for i, item in enumerate(items):
        if isinstance(item, Refusal):
            refused["validation_error"] += 1
            results[i] = _item_error(i, item)
        else:
            valid.append(i)
            models.append(item)
    checked = await prepare_many(plan(ctx), principal, models, clock(ctx))
    prepared: list[Prepared] = []
    positions: list[int] = []
    for i, outcome in zip(valid, checked, strict=True):
        if isinstance(outcome, Refusal):
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
            if claim is not None and not await store_batch_response(conn, claim, response):
                raise _ReplayBatch
    except _ReplayBatch:
        assert claim is not None
        async with ctx.engine.connect() as conn:
            stored = await _stored_batch(conn, claim)
        m.idempotent_replays.labels("batch").inc()
        assert stored is not None
        return stored
    ctx.relay.wake()
    m.accepted.labels("batch").inc(response["accepted"])
    for reason, n in refused.items():
        m.refused.labels(reason).inc(n)
    m.refused.labels("duplicate").inc(sum(1 for o in outcomes if o.kind == "duplicate"))
    return response


@contextlib.asynccontextmanager
async def batch_slot(ctx: ServiceContext) -> AsyncIterator[None]:
    """One of the ``batch_writers`` slots, taken before any connection (see IntakeSettings.batch_writers);
    ``Busy`` when neither the slot nor the pool answers within ``batch_wait_s``."""
    slots = runtime_of(ctx).batch_slots
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


def _busy() -> Busy:
    return Busy("busy", "Hệ thống đang bận, vui lòng gửi lại lô sau ít giây")


async def _stored_batch(conn: AsyncConnection, claim: IdempotencyClaim) -> dict[str, Any] | None:
    row = await find_idempotency(conn, claim.principal, claim.key)
    if row is None:
        return None
    if row.endpoint != "batch" or row.body_hash != claim.body_hash:
        raise reused_key()
    stored: dict[str, Any] = row.response
    return stored
