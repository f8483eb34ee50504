"""Awards' decision and revocation rules without a database."""

from __future__ import annotations

from datetime import date

import pytest
from awards.api.errors import STATUS
from awards.domain.decisions import check_revocation, chosen, nominations_to_decide
from awards.domain.errors import AlreadyRevoked, AwardsError, Invalid, NominationsStale, NoNominations

from shared.errors import to_api_error

NOMINATED = [
    {"rank": 1, "recipient": {"unit_code": "TH-01-001"}},
    {"rank": 2, "recipient": {"unit_code": "TH-01-002"}},
    {"rank": 3, "recipient": {"member_id": "M-7"}},
]


def test_an_approval_names_nominated_recipients_and_keeps_their_rank_order() -> None:
    assert chosen(NOMINATED, "all") == NOMINATED
    picked = chosen(NOMINATED, ["M-7", {"unit_code": "TH-01-001"}, "TH-01-001"])
    assert [i["rank"] for i in picked] == [1, 3]


def test_an_empty_or_unknown_approval_is_refused_naming_the_entry() -> None:
    with pytest.raises(Invalid) as empty:
        chosen(NOMINATED, [])
    assert empty.value.details == [{"field": "approve", "message": "Danh sách trống"}]
    with pytest.raises(Invalid) as unknown:
        chosen(NOMINATED, ["TH-01-002", "TH-09"])
    assert [d["field"] for d in unknown.value.details or []] == ["approve.1"]
    assert to_api_error(unknown.value, STATUS).status == 422


@pytest.mark.parametrize(
    ("run", "kind", "status"),
    [(None, NoNominations, 409), ({"scheme_digest": "old", "items": []}, NominationsStale, 409)],
)
def test_a_decision_needs_the_latest_nominations_of_the_scheme_as_it_is(
    run: dict[str, object] | None, kind: type[AwardsError], status: int
) -> None:
    with pytest.raises(kind) as refused:
        nominations_to_decide(run, "new")
    assert to_api_error(refused.value, STATUS).status == status
    assert nominations_to_decide({"scheme_digest": "new", "items": []}, "new") == {"scheme_digest": "new", "items": []}


def test_an_award_is_revoked_once_and_not_before_it_was_signed() -> None:
    check_revocation(False, "2023-09-07", date(2023, 9, 7))
    with pytest.raises(AlreadyRevoked):
        check_revocation(True, "2023-09-07", date(2023, 9, 8))
    with pytest.raises(Invalid) as early:
        check_revocation(False, "2023-09-07", date(2023, 9, 6))
    assert early.value.details == [{"field": "revoked_on", "message": "Phải từ ngày ký quyết định khen thưởng trở đi"}]
