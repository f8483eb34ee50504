"""The submission use case, shared by POST /initiatives, the batch endpoint and the import worker:
who may submit what (SPEC §6), the refusals (§3) and the record that gets written."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncConnection

from intake.adapters.plan import PlanReader
from intake.adapters.store import IdempotencyClaim, Prepared
from intake.domain.models import InitiativeCreate
from intake.domain.rules import content_refusals, fingerprint, local_day, plan_refusals
from shared.auth import Principal
from shared.http import ApiError
from shared.units import path_in_scope

SUBMITTER_ROLES = ("member", "support")


@dataclass
class IntakeMetrics:
    accepted: Counter
    refused: Counter
    batch_sizes: Histogram
    import_rows: Counter
    idempotent_replays: Counter


def refusal(status: int, code: str, message: str, details: Any = None) -> ApiError:
    return ApiError(status, code, message, details)


def check_submitter(principal: Principal) -> None:
    if not (principal.is_operator or principal.has(*SUBMITTER_ROLES)):
        raise refusal(403, "forbidden", "Chỉ đoàn viên hoặc tổ hỗ trợ được gửi sáng kiến")


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
    member_ids = [a.member_id for a in item.authors]
    acting_as_member = not principal.is_operator and not principal.has("support")
    if acting_as_member and principal.member_id not in member_ids:
        raise refusal(
            403, "not_an_author", "Đoàn viên chỉ gửi sáng kiến có chính mình là tác giả", [{"field": "authors"}]
        )
    unit = await plan.unit(item.unit_code, conn)
    if not principal.is_operator and (unit is None or not path_in_scope(principal, unit.path)):
        raise refusal(403, "out_of_scope", "Đơn vị nằm ngoài phạm vi của tài khoản", [{"field": "unit_code"}])
    campaign = await plan.campaign(item.campaign, conn)
    errors = content_refusals(item)
    plan_errors, phase = plan_refusals(item, campaign, unit, local_day(now), need_open_phase=True)
    errors.extend(plan_errors)
    if errors:
        raise refusal(422, "validation_error", "Dữ liệu không hợp lệ", errors)
    assert phase is not None
    confidential = item.confidential
    record = {
        "id": str(uuid.uuid4()),
        "campaign": item.campaign,
        "phase": phase.code,
        "unit_code": item.unit_code,
        "field": item.field,
        "title": item.title,
        "problem": None if confidential else item.problem,
        "solution": None if confidential else item.solution,
        "effect": item.effect,
        "expected_benefit_vnd": item.expected_benefit_vnd,
        "applied_on": item.applied_on,
        "confidential": confidential,
        "authors": [a.model_dump() for a in item.authors],
        "entered_by": principal.sub,
        "submitted_at": now.astimezone(UTC),
        "revision": 0,
        "status": "submitted",
        "decision_seq": 0,
        "appraisal_seq": 0,
        "updated_at": now.astimezone(UTC),
    }
    return Prepared(record=record, fingerprint=fingerprint(item.title, record["solution"]), idem=idem)


def reason_of(exc: ApiError) -> str:
    if exc.code == "validation_error" and isinstance(exc.details, list) and exc.details:
        return f"invalid_{str(exc.details[0].get('field', 'body')).split('.')[0]}"
    return exc.code
