"""Review rules of SPEC §3: outcomes, reason codes, appraisal grades, and the events review emits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from review.domain.errors import (
    AlreadyDecided,
    ConflictOfInterest,
    Invalid,
    NotFound,
    NotLeaseHolder,
    OutOfScope,
    Withdrawn,
)
from shared.auth import Principal
from shared.units import path_in_scope

OUTCOMES = ("valid", "invalid", "revision")
REASONS = ("duplicate", "incomplete", "out_of_scope", "not_applied_in_window", "not_recognised", "not_member", "spam")
CRITERIA = ("novelty", "applicability", "effectiveness", "scope")
# The item status an outcome leaves behind.
STATUS_OF = {"valid": "valid", "invalid": "invalid", "revision": "revision_requested"}
DECIDED = ("valid", "invalid", "revision_requested")
LEASE_MINUTES = 15


def decision_problems(outcome: str, reason: str | None, note: str | None) -> list[dict[str, str]]:
    """The field errors of a decision, empty when it is acceptable."""
    problems: list[dict[str, str]] = []
    if outcome == "invalid":
        if reason is None:
            problems.append({"field": "reason", "message": "Cần nêu lý do không hợp lệ"})
        elif reason not in REASONS:
            problems.append({"field": "reason", "message": "Lý do không được chấp nhận"})
    elif reason is not None:
        problems.append({"field": "reason", "message": "Chỉ nêu lý do khi quyết định không hợp lệ"})
    if outcome == "revision" and not (note or "").strip():
        problems.append({"field": "note", "message": "Cần ghi chú nội dung cần bổ sung"})
    return problems


def identities(principal: Principal) -> set[str]:
    """Every id the account may be an author under: its ``member_id`` and its ``sub`` (an identity provider
    may name a member by ``sub`` only)."""
    return {i for i in (principal.member_id, principal.sub) if i}


def is_author(principal: Principal, author_ids: str) -> bool:
    """Whether the account's member is among ``author_ids`` (``|id|id|``)."""
    return bool(principal.member_id) and f"|{principal.member_id}|" in author_ids


def conflicted(principal: Principal, author_ids: str) -> bool:
    """Conflict of interest (SPEC §6): nobody reviews or appraises an initiative they authored."""
    return any(f"|{i}|" in author_ids for i in identities(principal))


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def in_scope(principal: Principal, item: Any) -> Any:
    """The item (a row with its unit's ``path``) when the caller may act on it; refused otherwise."""
    if item is None:
        raise NotFound()
    if not path_in_scope(principal, item.path):
        raise OutOfScope()
    return item


def check_decision(principal: Principal, item: Any, request: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The decision ``request`` makes on ``item`` (a row locked with its unit's path, None when unknown).

    Refused: an unacceptable outcome/reason/note, an item out of the caller's subtree or of their own, a
    withdrawn one, one decided already (only an operator decides again), or one whose lease is not the
    caller's and current.
    """
    outcome, reason, note = request["outcome"], request.get("reason"), request.get("note")
    problems = decision_problems(outcome, reason, note)
    if problems:
        raise Invalid("Quyết định không hợp lệ", problems)
    in_scope(principal, item)
    if conflicted(principal, item.author_ids):
        raise ConflictOfInterest()
    redecision = False
    if item.status == "withdrawn":
        raise Withdrawn()
    if item.status in DECIDED:
        if not principal.is_operator:
            raise AlreadyDecided()
        redecision = True
    elif item.lease_holder != principal.sub or (aware(item.lease_expires_at) or now) <= now:
        raise NotLeaseHolder()
    return {
        "initiative_id": item.initiative_id,
        "decision_seq": item.decision_seq + 1,
        "outcome": outcome,
        "reason": reason,
        "note": note,
        "verified_benefit_vnd": request.get("verified_benefit_vnd"),
        "decided_by": principal.sub,
        "decided_at": now,
        "redecision": redecision,
    }


def grade(mean: float) -> str:
    """xuất sắc from 8.5, tiêu biểu from 7.0."""
    if mean >= 8.5:
        return "excellent"
    if mean >= 7.0:
        return "typical"
    return "none"


def appraisal_summary(rows: list[dict[str, int]]) -> dict[str, Any]:
    """Per-criterion means, the overall mean and the grade (the grade only from two appraisals on)."""
    n = len(rows)
    criteria_mean = {c: round(sum(r[c] for r in rows) / n, 2) for c in CRITERIA} if n else {}
    mean = round(sum(sum(r[c] for c in CRITERIA) for r in rows) / (n * len(CRITERIA)), 2) if n else None
    return {
        "count": n,
        "mean": mean if n >= 2 else None,
        "grade": grade(mean) if n >= 2 and mean is not None else None,
        "criteria_mean": criteria_mean,
    }


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with offset; a naive value (SQLite hands those back) is UTC."""
    at = aware(value)
    return None if at is None else at.isoformat()


def reviewed_event(item: Mapping[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
    """The ``initiative.reviewed.v1`` payload (docs/events.md), repeating what a counter needs."""
    return {
        "initiative_id": item["initiative_id"],
        "campaign": item["campaign"],
        "phase": item["phase"],
        "unit_code": item["unit_code"],
        "seq": item["seq"],
        "title": item["title"],
        "authors": item["authors"],
        "submitted_at": iso(item["submitted_at"]),
        "expected_benefit_vnd": item["expected_benefit_vnd"],
        "outcome": decision["outcome"],
        "reason": decision["reason"],
        "note": decision["note"],
        "verified_benefit_vnd": decision["verified_benefit_vnd"],
        "decided_by": decision["decided_by"],
        "decided_at": iso(decision["decided_at"]),
        "decision_seq": decision["decision_seq"],
    }


def appraised_event(item: dict[str, Any], summary: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "initiative_id": item["initiative_id"],
        "campaign": item["campaign"],
        "unit_code": item["unit_code"],
        "authors": item["authors"],
        "appraisal_count": summary["count"],
        "mean": summary["mean"],
        "grade": summary["grade"],
        "criteria_mean": summary["criteria_mean"],
        "appraised_at": at.isoformat(),
        "appraisal_seq": summary["count"] - 1,
    }
