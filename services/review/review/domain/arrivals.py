"""What intake's events do to review's items, as pure functions over row values (no I/O).

A batch of events is folded item by item, in arrival order: the highest ``revision`` wins, and a
withdrawal is terminal even when it arrives before the submission itself. The consumer
(``review.handlers.initiatives``) reads the batch's items once, folds, and writes them back once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

NO_CONTENT = -1  # the revision of a row made by a withdrawal that arrived before its submission
OPEN = ("pending", "revision_requested")
FINAL = ("valid", "invalid")


def _instant(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def author_ids(authors: list[dict[str, Any]]) -> str:
    """ "|M-1|M-2|": lets the claim query leave out a reviewer's own initiatives."""
    return ("|" + "|".join(str(a.get("member_id", "")) for a in authors) + "|")[:2000]


def content_of(d: dict[str, Any]) -> dict[str, Any]:
    """The item columns an ``initiative.submitted`` or ``initiative.revised`` payload sets."""
    authors = list(d.get("authors") or [])
    return {
        "campaign": str(d["campaign"]),
        "phase": d.get("phase"),
        "unit_code": str(d["unit_code"]),
        "seq": int(d.get("seq") or 0),
        "field": d.get("field"),
        "title": str(d.get("title") or "")[:300],
        "problem": d.get("problem"),
        "solution": d.get("solution"),
        "effect": d.get("effect"),
        "expected_benefit_vnd": int(d.get("expected_benefit_vnd") or 0),
        "applied_on": d.get("applied_on"),
        "confidential": bool(d.get("confidential")),
        "authors": authors,
        "author_ids": author_ids(authors),
        "entered_by": d.get("entered_by"),
        "submitted_at": _instant(d.get("submitted_at")),
        "revision": int(d.get("revision") or 0),
    }


def placeholder_of(d: dict[str, Any]) -> dict[str, Any]:
    """The row a withdrawal leaves when it arrives before the submission: no content, terminal."""
    authors = list(d.get("authors") or [])
    return {
        "campaign": str(d.get("campaign") or ""),
        "phase": d.get("phase"),
        "unit_code": str(d.get("unit_code") or ""),
        "seq": 0,
        "field": None,
        "title": "",
        "problem": None,
        "solution": None,
        "effect": None,
        "expected_benefit_vnd": 0,
        "applied_on": None,
        "confidential": False,
        "authors": authors,
        "author_ids": author_ids(authors),
        "entered_by": None,
        "submitted_at": None,
        "revision": NO_CONTENT,
        "status": "withdrawn",
    }


def new_item(initiative_id: str) -> dict[str, Any]:
    """The queue columns of a row review has not seen yet."""
    return {
        "initiative_id": initiative_id,
        "status": "pending",
        "lease_holder": None,
        "lease_expires_at": None,
        "decision_seq": 0,
        "reason": None,
        "verified_benefit_vnd": None,
        "decided_at": None,
        "similar": [],
        "appraisal_count": 0,
        "appraisal_mean": None,
        "appraisal_grade": None,
        "queued_at": None,
    }


@dataclass
class ItemState:
    """One item while a batch is folded: its values, whether it is stored, and what the batch did to it."""

    values: dict[str, Any] | None
    stored: bool
    changed: bool = False
    # The newest content was accepted: it needs its signature recorded and (unless the item was already
    # withdrawn when it came) its near-duplicates looked up.
    indexed: bool = False
    shows_similar: bool = False
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def apply_content(state: ItemState, initiative_id: str, content: dict[str, Any], now: datetime) -> None:
    """``initiative.submitted.v1`` / ``initiative.revised.v1``: the whole initiative, at some revision."""
    row = state.values
    if row is not None and row["revision"] >= content["revision"]:
        return  # a duplicate or an older revision arriving late
    state.changed = state.indexed = True
    if row is None:
        state.values = {**new_item(initiative_id), **content, "queued_at": now}
        state.shows_similar = True
        return
    row.update(content)
    if row["status"] == "withdrawn":
        state.shows_similar = False  # the text is kept (and indexed); the item stays out of the queue
        return
    state.shows_similar = True
    if row["status"] in OPEN:
        # A revision re-enters the queue; any lease on the old text ends.
        row.update(status="pending", lease_holder=None, lease_expires_at=None, queued_at=now)


def apply_withdrawal(state: ItemState, initiative_id: str, data: dict[str, Any]) -> None:
    """``initiative.withdrawn.v1``: terminal, unless a decision came first (intake refuses that case)."""
    row = state.values
    if row is None:
        state.values = {**new_item(initiative_id), **placeholder_of(data)}
        state.changed = True
        return
    if row["status"] in FINAL or row["status"] == "withdrawn":
        return
    row.update(status="withdrawn", lease_holder=None, lease_expires_at=None)
    state.changed = True
