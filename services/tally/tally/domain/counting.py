"""The counting rules of SPEC §4 as pure functions: how an event patches an initiative's fact, and
what a fact contributes to its unit's figures.

A fact merges every event about one initiative, in any order: content (authors, expected benefit)
comes from the highest ``revision`` of submitted/revised, the decision from the highest
``decision_seq``, and a withdrawal is terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from shared.instants import local_day, parse_optional_instant


@dataclass(frozen=True, slots=True)
class Fact:
    initiative_id: str
    campaign: str
    phase: str | None
    unit_code: str
    authors: tuple[str, ...] = ()
    expected_benefit_vnd: int = 0
    content_revision: int = -2  # -2: no content seen yet; -1: only from a review event
    withdrawn: bool = False
    decision_seq: int = 0
    outcome: str | None = None
    verified_benefit_vnd: int | None = None
    submitted_at: datetime | None = None
    decided_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one fact adds to the figures of its own unit (and so to every ancestor's)."""

    submitted: int = 0
    valid: int = 0
    invalid: int = 0
    benefit_vnd: int = 0
    members: frozenset[str] = field(default_factory=frozenset)
    submitted_day: date | None = None
    valid_day: date | None = None


NOTHING = Contribution()


def author_ids(authors: Any) -> tuple[str, ...]:
    ids: list[str] = []
    for a in authors or []:
        mid = a.get("member_id") if isinstance(a, dict) else a
        if mid and str(mid) not in ids:
            ids.append(str(mid)[:64])
    return tuple(ids)


def _int(value: Any, default: int = 0) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return default


def new_fact(initiative_id: str, data: dict[str, Any]) -> Fact:
    return Fact(
        initiative_id=initiative_id,
        campaign=str(data.get("campaign") or "")[:64],
        phase=(str(data["phase"])[:64] if data.get("phase") else None),
        unit_code=str(data.get("unit_code") or "")[:64],
    )


def _placed(fact: Fact, data: dict[str, Any]) -> Fact:
    """Fill the placement fields (campaign, phase, unit) if an earlier event lacked them."""
    if fact.campaign and fact.phase and fact.unit_code and fact.submitted_at:
        return fact  # the common case: nothing to fill, and no copy (``replace`` was 8% of tally's samples)
    return replace(
        fact,
        campaign=fact.campaign or str(data.get("campaign") or "")[:64],
        phase=fact.phase or (str(data["phase"])[:64] if data.get("phase") else None),
        unit_code=fact.unit_code or str(data.get("unit_code") or "")[:64],
        submitted_at=fact.submitted_at or parse_optional_instant(data.get("submitted_at")),
    )


def on_content(fact: Fact, data: dict[str, Any]) -> Fact:
    """``initiative.submitted.v1`` / ``initiative.revised.v1``: keep the newest revision's content."""
    fact = _placed(fact, data)
    revision = _int(data.get("revision"), 0)
    if revision < fact.content_revision:
        return fact
    return replace(
        fact,
        authors=author_ids(data.get("authors")) or fact.authors,
        expected_benefit_vnd=_int(data.get("expected_benefit_vnd")),
        content_revision=revision,
    )


def on_withdrawn(fact: Fact, data: dict[str, Any]) -> Fact:
    fact = _placed(fact, data)
    if not fact.authors:
        fact = replace(fact, authors=author_ids(data.get("authors")))
    return replace(fact, withdrawn=True)


def on_reviewed(fact: Fact, data: dict[str, Any]) -> Fact:
    """``initiative.reviewed.v1``: the decision with the highest ``decision_seq`` wins."""
    fact = _placed(fact, data)
    if fact.content_revision < -1:  # review arrived first: it repeats the facts a counter needs
        fact = replace(
            fact,
            authors=author_ids(data.get("authors")),
            expected_benefit_vnd=_int(data.get("expected_benefit_vnd")),
            content_revision=-1,
        )
    seq = _int(data.get("decision_seq"), 0)
    if seq <= fact.decision_seq:
        return fact
    outcome = data.get("outcome")
    verified = data.get("verified_benefit_vnd")
    return replace(
        fact,
        decision_seq=seq,
        outcome=outcome if outcome in ("valid", "invalid", "revision") else None,
        verified_benefit_vnd=None if verified is None else _int(verified),
        decided_at=parse_optional_instant(data.get("decided_at")),
    )


def contribution(fact: Fact | None) -> Contribution:
    """SPEC §4 for one initiative. A withdrawn one, or one known only from a withdrawal, counts nowhere."""
    if fact is None or fact.withdrawn or fact.content_revision < -1:
        return NOTHING
    valid = fact.outcome == "valid"
    benefit = 0
    if valid:
        benefit = fact.verified_benefit_vnd if fact.verified_benefit_vnd is not None else fact.expected_benefit_vnd
    return Contribution(
        submitted=1,
        valid=int(valid),
        invalid=int(fact.outcome == "invalid"),
        benefit_vnd=benefit,
        members=frozenset(fact.authors),
        submitted_day=local_day(fact.submitted_at) if fact.submitted_at else None,
        valid_day=local_day(fact.decided_at) if valid and fact.decided_at else None,
    )


def achievement_pct(valid: int, quota: int | None) -> float | None:
    if not quota:
        return None
    return round(int(valid) * 100 / int(quota), 2)


def figures(
    submitted: int,
    valid: int,
    invalid: int,
    participants: int,
    benefit_vnd: int,
    quota: int | None,
    self_set: int | None,
) -> dict[str, Any]:
    return {
        "submitted": submitted,
        "valid": valid,
        "invalid": invalid,
        "pending": submitted - valid - invalid,
        "participants": participants,
        "benefit_vnd": benefit_vnd,
        "quota": quota or 0,
        "self_set": self_set or 0,
        "achievement_pct": achievement_pct(valid, quota),
    }


def competition_ranks(values: list[Any]) -> list[int]:
    """Ranks "1, 2, 2, 4" for values already sorted best first."""
    ranks: list[int] = []
    for i, v in enumerate(values):
        ranks.append(ranks[-1] if i and v == values[i - 1] else i + 1)
    return ranks
