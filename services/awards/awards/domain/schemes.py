"""Award schemes (SPEC §5) and the pure, deterministic computation of nominations.

A rule is a conjunction of thresholds; ``any_of`` adds a disjunction: a candidate qualifies when
it meets every threshold of the rule itself and, if ``any_of`` is given, every threshold of at
least one of its alternatives. "Grade excellent or at least 5 valid initiatives" is written
``{"any_of": [{"grade_in": ["excellent"]}, {"min_valid": 5}]}``.

Ordering: every ``order_by`` figure is ranked descending (a missing ``achievement_pct`` ranks
last), then the unit code or member id ascending. ``top_per_cluster: n`` keeps the best n
qualifying units of each emulation cluster (units without a cluster cannot be nominated by such
a scheme); the kept units are then ordered as above and cut at ``max_recipients``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from awards.domain.errors import Invalid
from shared.text import NO_NUL

UnitKind = Literal["national", "province", "sector", "district", "grassroots", "department"]
Grade = Literal["excellent", "typical"]
CollectiveOrder = Literal["valid", "achievement_pct", "benefit_vnd", "participants"]
IndividualOrder = Literal["valid", "benefit_vnd", "grade"]
CODE = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"
GRADE_RANK = {"none": 0, "typical": 1, "excellent": 2}
COLLECTIVE_ONLY = ("min_achievement_pct", "min_participants")
INDIVIDUAL_ONLY = ("grade_in",)


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    min_valid: int | None = Field(default=None, ge=0, le=10_000_000)
    min_achievement_pct: float | None = Field(default=None, ge=0, le=1_000_000)
    min_benefit_vnd: int | None = Field(default=None, ge=0, le=10**18)
    min_participants: int | None = Field(default=None, ge=0, le=100_000_000)
    grade_in: list[Grade] | None = Field(default=None, min_length=1, max_length=2)


class Rule(Condition):
    top_per_cluster: int | None = Field(default=None, ge=1, le=1000)
    any_of: list[Condition] | None = Field(default=None, min_length=1, max_length=10)


class Scheme(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    campaign: str = Field(pattern=CODE)
    phase: str | None = Field(default=None, pattern=CODE)
    name: str = Field(min_length=1, max_length=300, pattern=NO_NUL)
    recipient: Literal["collective", "individual"]
    unit_kind: UnitKind | None = None
    rule: Rule = Field(default_factory=Rule)
    order_by: list[str] = Field(min_length=1, max_length=4)
    max_recipients: int = Field(ge=1, le=100_000)


def canonical(value: Any) -> bytes:
    """JSON with sorted keys: equal values give equal bytes (stored schemes, nomination runs, digests)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def scheme_digest(scheme: Scheme) -> str:
    """Names the exact scheme a nomination list was computed under."""
    return hashlib.sha256(canonical(scheme.model_dump(mode="json"))).hexdigest()[:16]


def check_scheme(scheme: Scheme, campaign_phases: Sequence[str] | None) -> None:
    """Refuse an impossible scheme, naming the fields (its shape is the model's to check).

    ``campaign_phases``: the phases of the scheme's campaign, None while the campaign replica does not know
    it (it may lag behind tally: an unknown campaign is accepted, a known one is checked)."""
    details: list[dict[str, str]] = []
    groups: list[tuple[str, Condition]] = [("rule", scheme.rule)]
    groups += [(f"rule.any_of.{i}", c) for i, c in enumerate(scheme.rule.any_of or [])]
    if scheme.recipient == "collective":
        if scheme.unit_kind is None:
            details.append({"field": "unit_kind", "message": "Khen thưởng tập thể phải nêu loại đơn vị"})
        allowed_order: tuple[str, ...] = CollectiveOrder.__args__
        for prefix, cond in groups:
            for name in INDIVIDUAL_ONLY:
                if getattr(cond, name) is not None:
                    details.append({"field": f"{prefix}.{name}", "message": "Không áp dụng cho khen thưởng tập thể"})
    else:
        if scheme.unit_kind is not None:
            details.append({"field": "unit_kind", "message": "Khen thưởng cá nhân không có loại đơn vị"})
        allowed_order = IndividualOrder.__args__
        if scheme.rule.top_per_cluster is not None:
            details.append({"field": "rule.top_per_cluster", "message": "Chỉ áp dụng cho khen thưởng tập thể"})
        for prefix, cond in groups:
            for name in COLLECTIVE_ONLY:
                if getattr(cond, name) is not None:
                    details.append({"field": f"{prefix}.{name}", "message": "Không áp dụng cho khen thưởng cá nhân"})
    for prefix, cond in groups[1:]:
        if all(getattr(cond, name) is None for name in Condition.model_fields):
            details.append({"field": prefix, "message": "Phương án không có điều kiện nào"})
    for i, key in enumerate(scheme.order_by):
        if key not in allowed_order:
            details.append({"field": f"order_by.{i}", "message": f"Tiêu chí xếp hạng không hợp lệ: {key}"})
    if len(set(scheme.order_by)) != len(scheme.order_by):
        details.append({"field": "order_by", "message": "Tiêu chí xếp hạng bị lặp"})
    if campaign_phases is not None and scheme.phase is not None and scheme.phase not in campaign_phases:
        details.append({"field": "phase", "message": "Chiến dịch không có giai đoạn này"})
    if details:
        raise Invalid("Hình thức khen thưởng không hợp lệ", details)


# ---- computation ----------------------------------------------------------------------------


def _meets(cond: Condition, figures: Mapping[str, Any]) -> bool:
    def at_least(name: str, bound: float | int | None) -> bool:
        if bound is None:
            return True
        value = figures.get(name)
        return value is not None and value >= bound

    if not (
        at_least("valid", cond.min_valid)
        and at_least("achievement_pct", cond.min_achievement_pct)
        and at_least("benefit_vnd", cond.min_benefit_vnd)
        and at_least("participants", cond.min_participants)
    ):
        return False
    return cond.grade_in is None or figures.get("grade") in cond.grade_in


def qualifies(rule: Rule, figures: Mapping[str, Any]) -> bool:
    if not _meets(rule, figures):
        return False
    return rule.any_of is None or any(_meets(c, figures) for c in rule.any_of)


def _sort_key(order_by: Sequence[str], key: str, figures: Mapping[str, Any]) -> tuple[Any, ...]:
    parts: list[Any] = []
    for name in order_by:
        value = figures.get(name)
        if name == "grade":
            value = GRADE_RANK.get(str(value), 0)
        # Descending; a missing value (achievement_pct without quota) ranks after every number.
        parts.append((1, 0) if value is None else (0, -value))
    parts.append(key)
    return tuple(parts)


def nominate(
    scheme: Scheme, candidates: Iterable[Mapping[str, Any]], already_awarded: set[str]
) -> list[dict[str, Any]]:
    """Rank the candidates. Each is ``{"key", "cluster", "recipient", "figures", "unit_code"}``."""
    eligible = [c for c in candidates if c["key"] not in already_awarded and qualifies(scheme.rule, c["figures"])]
    eligible.sort(key=lambda c: _sort_key(scheme.order_by, c["key"], c["figures"]))
    if scheme.rule.top_per_cluster is not None:
        per_cluster: dict[str, int] = {}
        kept = []
        for c in eligible:
            cluster = c.get("cluster")
            if cluster is None:
                continue
            if per_cluster.get(cluster, 0) < scheme.rule.top_per_cluster:
                per_cluster[cluster] = per_cluster.get(cluster, 0) + 1
                kept.append(c)
        eligible = kept
    items = []
    for rank, c in enumerate(eligible[: scheme.max_recipients], start=1):
        item: dict[str, Any] = {"rank": rank, "recipient": dict(c["recipient"]), "figures": dict(c["figures"])}
        if c.get("cluster") is not None:
            item["cluster"] = c["cluster"]
        if c.get("unit_code") is not None:
            item["unit_code"] = c["unit_code"]
        items.append(item)
    return items


def member_figures(
    initiatives: Iterable[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Per-member figures from per-initiative facts already resolved at the snapshot instant.

    Each initiative is ``{"id", "unit_code", "authors", "valid": bool, "benefit_vnd", "grade"}``.
    Every co-author is credited with the whole initiative (count and benefit): an initiative is
    each of its authors' achievement. The member's unit is the unit of most of their valid
    initiatives (ties: the smallest code); their name is the one on the latest-id initiative.
    """
    acc: dict[str, dict[str, Any]] = {}
    for ini in sorted(initiatives, key=lambda i: str(i["id"])):
        if not ini["valid"]:
            continue
        seen: set[str] = set()
        for author in ini["authors"]:
            mid = str(author["member_id"])
            if mid in seen:
                continue
            seen.add(mid)
            m = acc.setdefault(mid, {"valid": 0, "benefit_vnd": 0, "grade": "none", "units": {}, "name": ""})
            m["valid"] += 1
            m["benefit_vnd"] += int(ini["benefit_vnd"])
            grade = str(ini.get("grade") or "none")
            if GRADE_RANK.get(grade, 0) > GRADE_RANK[m["grade"]]:
                m["grade"] = grade
            m["units"][ini["unit_code"]] = m["units"].get(ini["unit_code"], 0) + 1
            m["name"] = str(author.get("full_name") or m["name"])
    out = []
    for mid in sorted(acc):
        m = acc[mid]
        unit = sorted(m["units"].items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        out.append(
            {
                "member_id": mid,
                "full_name": m["name"],
                "unit_code": unit,
                "valid": m["valid"],
                "benefit_vnd": m["benefit_vnd"],
                "grade": m["grade"],
            }
        )
    return out


def collective_candidates(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Candidates from snapshot rows ``{"unit": {...}, "figures": {...}}``."""
    return [
        {
            "key": r["unit"]["code"],
            "cluster": r["unit"].get("cluster"),
            "unit_code": r["unit"]["code"],
            "recipient": {
                "unit_code": r["unit"]["code"],
                "name": r["unit"].get("name") or r["unit"]["code"],
                "cluster": r["unit"].get("cluster"),
            },
            "figures": dict(r["figures"]),
        }
        for r in rows
    ]


def individual_candidates(members: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "key": m["member_id"],
            "cluster": None,
            "unit_code": m["unit_code"],
            "recipient": {"member_id": m["member_id"], "full_name": m["full_name"]},
            "figures": {"valid": m["valid"], "benefit_vnd": m["benefit_vnd"], "grade": m["grade"]},
        }
        for m in members
    ]
