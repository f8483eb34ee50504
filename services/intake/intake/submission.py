"""The submission use case, shared by POST /initiatives, the batch endpoint and the import worker:
who may submit what (SPEC §6), the refusals (§3) and the record that gets written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncConnection

from intake.adapters.plan import PlanReader
from intake.adapters.store import IdempotencyClaim, Prepared
from intake.domain.errors import NotAllowed, Refusal, invalid
from intake.domain.models import InitiativeCreate
from intake.domain.rules import Campaign, Unit, content_refusals, fingerprint, local_day, plan_refusals
from shared.auth import Principal
from shared.ids import new_id, new_ids
from shared.units import path_in_scope

SUBMITTER_ROLES = ("member", "support")


@dataclass
class IntakeMetrics:
    accepted: Counter
    refused: Counter
    batch_sizes: Histogram
    import_rows: Counter
    idempotent_replays: Counter


def check_submitter(principal: Principal) -> None:
    if not (principal.is_operator or principal.has(*SUBMITTER_ROLES)):
        raise NotAllowed("forbidden", "Chỉ đoàn viên hoặc tổ hỗ trợ được gửi sáng kiến")


async def prepare(
    plan: PlanReader,
    principal: Principal,
    item: InitiativeCreate,
    now: datetime,
    *,
    idem: IdempotencyClaim | None = None,
    conn: AsyncConnection | None = None,
) -> Prepared:
    """Check scope and rules; answer the record to write or raise the refusal."""
    check_submitter(principal)
    check_authorship(principal, item, acts_as_member(principal))
    unit = await plan.unit(item.unit_code, conn)
    check_scope(principal, unit)
    campaign = await plan.campaign(item.campaign, conn)
    return prepared(principal, item, campaign, unit, local_day(now), now.astimezone(UTC), new_id(), idem)


async def prepare_many(
    plan: PlanReader, principal: Principal, items: Sequence[InitiativeCreate], now: datetime
) -> list[Prepared | Refusal]:
    """``prepare`` for each item of a batch, in order: the prepared item or its refusal. What does not
    depend on the item is settled once per batch: the plan is read, and the scope checked, once per unit
    and campaign the batch names."""
    check_submitter(principal)
    as_member = acts_as_member(principal)
    units = await plan.units({item.unit_code for item in items})
    scoped = {code: in_scope(principal, unit) for code, unit in units.items()}
    campaigns = {code: await plan.campaign(code) for code in {item.campaign for item in items}}
    today, at = local_day(now), now.astimezone(UTC)
    out: list[Prepared | Refusal] = []
    for item, initiative_id in zip(items, new_ids(len(items)), strict=True):
        try:
            check_authorship(principal, item, as_member)
            unit = units[item.unit_code]
            if not scoped[item.unit_code]:
                check_scope(principal, unit)
            out.append(prepared(principal, item, campaigns[item.campaign], unit, today, at, initiative_id))
        except Refusal as exc:
            out.append(exc)
    return out


def acts_as_member(principal: Principal) -> bool:
    """True when the caller submits as a member (for themself), not as a support team or an operator."""
    return not principal.is_operator and not principal.has("support")


def check_authorship(principal: Principal, item: InitiativeCreate, as_member: bool) -> None:
    if as_member and principal.member_id not in [a.member_id for a in item.authors]:
        raise NotAllowed(
            "not_an_author", "Đoàn viên chỉ gửi sáng kiến có chính mình là tác giả", [{"field": "authors"}]
        )


def in_scope(principal: Principal, unit: Unit | None) -> bool:
    return principal.is_operator or (unit is not None and path_in_scope(principal, unit.path))


def check_scope(principal: Principal, unit: Unit | None) -> None:
    if not in_scope(principal, unit):
        raise NotAllowed("out_of_scope", "Đơn vị nằm ngoài phạm vi của tài khoản", [{"field": "unit_code"}])


def prepared(
    principal: Principal,
    item: InitiativeCreate,
    campaign: Campaign | None,
    unit: Unit | None,
    today: date,
    at: datetime,
    initiative_id: str,
    idem: IdempotencyClaim | None = None,
) -> Prepared:
    """The rules against the plan as read on ``today`` (the local day); the record to write, submitted
    ``at`` (UTC), or ``Invalid`` raised."""
    errors = content_refusals(item)
    plan_errors, phase = plan_refusals(item, campaign, unit, today, need_open_phase=True)
    errors.extend(plan_errors)
    if errors:
        raise invalid(errors)
    assert phase is not None
    confidential = item.confidential
    solution = None if confidential else item.solution
    record = {
        "id": initiative_id,
        "campaign": item.campaign,
        "phase": phase.code,
        "unit_code": item.unit_code,
        "field": item.field,
        "title": item.title,
        "problem": None if confidential else item.problem,
        "solution": solution,
        "effect": item.effect,
        "expected_benefit_vnd": item.expected_benefit_vnd,
        "applied_on": item.applied_on,
        "confidential": confidential,
        # What ``Author.model_dump()`` answers, without pydantic's serializer per author.
        "authors": [{"member_id": a.member_id, "full_name": a.full_name} for a in item.authors],
        "entered_by": principal.sub,
        "submitted_at": at,
        "revision": 0,
        "status": "submitted",
        "decision_seq": 0,
        "appraisal_seq": 0,
        "updated_at": at,
    }
    return Prepared(record=record, fingerprint=fingerprint(item.title, solution), idem=idem)
