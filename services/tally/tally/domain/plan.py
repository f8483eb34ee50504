"""The plan (kế hoạch): units, campaigns and quotas, with the rules a bulk upsert must obey (SPEC §1, §2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from shared.text import NO_NUL

CODE_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
Code = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True, pattern=NO_NUL)]

KINDS = ("national", "province", "sector", "district", "grassroots", "department")
# Which parent kinds each kind may sit under (None: a root).
ALLOWED_PARENTS: dict[str, tuple[str | None, ...]] = {
    "national": (None,),
    "province": ("national", None),
    "sector": ("national", None),
    "district": ("province", "sector"),
    "grassroots": ("district", "province", "sector"),
    "department": ("grassroots",),
}
COUNTING_KINDS = ("grassroots", "department")


class UnitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code
    name: Name
    kind: str
    parent_code: Code | None = None
    cluster: Annotated[str, StringConstraints(max_length=64, pattern=NO_NUL)] | None = None
    member_count: Annotated[int, Field(ge=0, le=10_000_000)] | None = None


class UnitRecord(BaseModel):
    code: str
    name: str
    kind: str
    parent_code: str | None
    cluster: str | None = None
    member_count: int | None = None


def check_units(batch: Sequence[UnitIn], existing: Mapping[str, UnitRecord]) -> list[dict[str, Any]]:
    """Every refusal of a bulk upsert, naming the offending rows (``row`` is the 0-based index).

    ``existing`` holds the stored units the batch may refer to (parents and their ancestors)."""
    errors: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, u in enumerate(batch):
        if u.code in seen:
            errors.append({"row": i, "field": "code", "message": f"Mã đơn vị {u.code} lặp lại (dòng {seen[u.code]})"})
        seen[u.code] = i
    merged: dict[str, UnitRecord] = dict(existing)
    for u in batch:
        merged[u.code] = UnitRecord(**u.model_dump())
    for i, u in enumerate(batch):
        if u.kind not in KINDS:
            errors.append({"row": i, "field": "kind", "message": f"Loại đơn vị không hợp lệ: {u.kind}"})
            continue
        parent = merged.get(u.parent_code) if u.parent_code else None
        if u.parent_code and parent is None:
            errors.append(
                {"row": i, "field": "parent_code", "message": f"Đơn vị cấp trên {u.parent_code} không tồn tại"}
            )
            continue
        if u.parent_code == u.code:
            errors.append({"row": i, "field": "parent_code", "message": "Đơn vị không thể là cấp trên của chính nó"})
            continue
        parent_kind = parent.kind if parent else None
        if parent_kind not in ALLOWED_PARENTS[u.kind]:
            if u.kind == "grassroots" and parent_kind == "grassroots":
                msg = "Công đoàn cơ sở không thể nằm dưới một công đoàn cơ sở khác"
            else:
                msg = f"Đơn vị loại {u.kind} không thể nằm dưới {parent_kind or 'gốc'}"
            errors.append({"row": i, "field": "parent_code", "message": msg})
    if errors:
        return errors
    for i, u in enumerate(batch):
        trail = {u.code}
        cur = merged[u.code].parent_code
        while cur is not None:
            if cur in trail:
                errors.append({"row": i, "field": "parent_code", "message": f"Vòng lặp cấp trên qua đơn vị {cur}"})
                break
            trail.add(cur)
            nxt = merged.get(cur)
            cur = nxt.parent_code if nxt else None
    return errors


class Field_(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Code
    name: Name


class PhaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Code
    name: Name | None = None
    opens_on: date
    closes_on: date

    @model_validator(mode="after")
    def _order(self) -> PhaseIn:
        if self.closes_on < self.opens_on:
            raise ValueError("Ngày kết thúc giai đoạn phải sau ngày bắt đầu")
        return self


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: date = Field(alias="from")
    to: date

    @model_validator(mode="after")
    def _order(self) -> Window:
        if self.to < self.from_:
            raise ValueError("Khoảng thời gian áp dụng không hợp lệ")
        return self


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    fields: Annotated[list[Field_], Field(max_length=100)] = []
    application_window: Window | None = None
    phases: Annotated[list[PhaseIn], Field(min_length=1, max_length=50)]
    milestones: Annotated[list[Annotated[int, Field(gt=0, le=10**9)]], Field(max_length=1000)] | None = None

    @field_validator("phases")
    @classmethod
    def _phases(cls, phases: list[PhaseIn]) -> list[PhaseIn]:
        codes = [p.code for p in phases]
        if len(set(codes)) != len(codes):
            raise ValueError("Mã giai đoạn lặp lại")
        ordered = sorted(phases, key=lambda p: p.opens_on)
        for a, b in zip(ordered, ordered[1:], strict=False):
            if b.opens_on <= a.closes_on:
                raise ValueError(f"Giai đoạn {a.code} và {b.code} chồng lấn nhau")
        return phases

    @field_validator("fields")
    @classmethod
    def _fields(cls, fields: list[Field_]) -> list[Field_]:
        codes = [f.code for f in fields]
        if len(set(codes)) != len(codes):
            raise ValueError("Mã lĩnh vực lặp lại")
        return fields

    def body(self) -> dict[str, Any]:
        milestones = sorted(set(self.milestones)) if self.milestones is not None else None
        return {
            "fields": [f.model_dump() for f in self.fields],
            "application_window": (
                {"from": self.application_window.from_.isoformat(), "to": self.application_window.to.isoformat()}
                if self.application_window
                else None
            ),
            "phases": [
                {
                    "code": p.code,
                    "name": p.name or p.code,
                    "opens_on": p.opens_on.isoformat(),
                    "closes_on": p.closes_on.isoformat(),
                }
                for p in self.phases
            ],
            "milestones": milestones if milestones is not None else list(range(100_000, 1_000_001, 100_000)),
        }


class QuotaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit_code: Code
    phase: Code
    assigned: Annotated[int, Field(ge=0, le=10**9)]
    self_set: Annotated[int, Field(ge=0, le=10**9)] | None = None
