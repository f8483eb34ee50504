"""The initiative as clients send it (SPEC §3, §9): XCreate / XUpdate families with their bounds."""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from shared.http import validation_message
from shared.text import NO_NUL

TEXT_MAX = 20_000
CONFIDENTIAL_EFFECT_MAX = 2_000
BENEFIT_MAX = 10**15  # one million billion VND: far above any real estimate, keeps BIGINT safe

TITLE_MIN = 5
# Characters that take no place in a title: controls, format characters (zero-width space, joiners, BOM, word
# joiner), surrogates, private use, unassigned.
_UNSEEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def _visible_title(value: str) -> str:
    """A title of at least TITLE_MIN characters that take a place (spaces between words count, zero-width ones
    do not), one of them visible, and no control character but tab and line breaks (SPEC §3: 5–300)."""
    if value.isprintable():  # the usual case, checked in C: already stripped, so it has a visible character
        return value
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in value):
        raise ValueError("Tên sáng kiến không được chứa ký tự điều khiển")
    categories = [unicodedata.category(c) for c in value]
    placed = sum(1 for cat in categories if cat not in _UNSEEN)
    if placed < TITLE_MIN or not any(cat[0] not in "CZ" for cat in categories):
        raise ValueError(f"Tên sáng kiến cần ít nhất {TITLE_MIN} ký tự nhìn thấy được")
    return value


Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=NO_NUL)]
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=TITLE_MIN, max_length=300), AfterValidator(_visible_title)
]
LongText = Annotated[str, StringConstraints(max_length=TEXT_MAX, pattern=NO_NUL)]


class Author(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=NO_NUL)]
    full_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NO_NUL)]


class InitiativeCreate(BaseModel):
    """Đăng ký sáng kiến: what a member or a support team sends."""

    model_config = ConfigDict(extra="forbid")

    campaign: Code
    unit_code: Code
    field: Code
    title: Title
    problem: LongText | None = None
    solution: LongText | None = None
    effect: LongText | None = None
    expected_benefit_vnd: int = Field(default=0, ge=0, le=BENEFIT_MAX)
    applied_on: date
    confidential: bool = False
    authors: list[Author] = Field(min_length=1, max_length=20)


class InitiativeUpdate(BaseModel):
    """What an author may change while the initiative is ``revision_requested``."""

    model_config = ConfigDict(extra="forbid")

    field: Code | None = None
    title: Title | None = None
    problem: LongText | None = None
    solution: LongText | None = None
    effect: LongText | None = None
    expected_benefit_vnd: int | None = Field(default=None, ge=0, le=BENEFIT_MAX)
    applied_on: date | None = None
    authors: list[Author] | None = Field(default=None, min_length=1, max_length=20)


class BatchRequest(BaseModel):
    """Up to 1,000 initiatives. Each item is read as an ``InitiativeCreate`` where it is one, in the same pass
    as the JSON (pydantic-core); one that is not stays raw, so that it fails alone with its own refusal
    (issue item 6), and the valid ones are not validated twice."""

    model_config = ConfigDict(extra="forbid")

    items: list[Annotated[InitiativeCreate | dict[str, Any], Field(union_mode="left_to_right")]] = Field(
        min_length=1, max_length=1000
    )


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as SPEC §9 details, in Vietnamese (the same shape the HTTP layer gives)."""
    return [
        {"field": ".".join(str(p) for p in err.get("loc", ())) or "body", "message": validation_message(err)}
        for err in exc.errors()
    ]
