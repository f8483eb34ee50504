"""Award decisions (SPEC §5): which nominated recipients a decision grants, and when an award may be revoked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Literal

from awards.domain.errors import AlreadyRevoked, Invalid, NominationsStale, NoNominations

Approval = Literal["all"] | Sequence[str | Mapping[str, str]]


def recipient_key(value: str | Mapping[str, str]) -> str:
    """A recipient as named in an approval or a nomination: its unit code or member id."""
    if isinstance(value, str):
        return value
    return str(value.get("unit_code") or value.get("member_id") or "")


def nominations_to_decide(latest_run: Mapping[str, Any] | None, digest: str) -> dict[str, Any]:
    """The latest nomination list of a scheme, refused when there is none or the scheme changed since."""
    if latest_run is None:
        raise NoNominations()
    if latest_run.get("scheme_digest") != digest:
        raise NominationsStale()
    return dict(latest_run)


def chosen(nominated: Sequence[Mapping[str, Any]], approve: Approval) -> list[Mapping[str, Any]]:
    """The nominated items an approval names (``"all"``: every one), in rank order; names outside the list
    are refused."""
    if approve == "all":
        return list(nominated)
    if not approve:
        raise Invalid(details=[{"field": "approve", "message": "Danh sách trống"}])
    by_key = {recipient_key(i["recipient"]): i for i in nominated}
    keys = [recipient_key(v) for v in approve]
    unknown = [
        {"field": f"approve.{i}", "message": "Không có trong danh sách đề nghị gần nhất"}
        for i, k in enumerate(keys)
        if k not in by_key
    ]
    if unknown:
        raise Invalid("Danh sách phê duyệt không hợp lệ", unknown)
    return [by_key[k] for k in sorted(set(keys), key=lambda k: by_key[k]["rank"])]


def check_revocation(revoked_before: bool, signed_on: str, revoked_on: date) -> None:
    """An award is revoked once, on or after the day its decision was signed."""
    if revoked_before:
        raise AlreadyRevoked()
    if revoked_on.isoformat() < signed_on:
        raise Invalid(
            "Ngày thu hồi trước ngày ký quyết định khen thưởng",
            [{"field": "revoked_on", "message": "Phải từ ngày ký quyết định khen thưởng trở đi"}],
        )
