"""Review's decision rules without a database: an item is a plain record, the caller a Principal."""

from __future__ import annotations

from collections import namedtuple
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from review.adapters.claims import SHOWN
from review.api.errors import STATUS
from review.domain.errors import (
    AlreadyDecided,
    ConflictOfInterest,
    Invalid,
    NotFound,
    NotLeaseHolder,
    OutOfScope,
    ReviewError,
    Withdrawn,
)
from review.domain.rules import check_decision
from review.service import claimed_item, public_item

from shared.auth import Principal
from shared.errors import to_api_error

NOW = datetime(2026, 3, 1, 8, tzinfo=UTC)
REVIEWER = Principal(sub="rev-1", name="Người xét", roles=frozenset({"reviewer"}), unit="TH", member_id="M-9")
OPERATOR = Principal(sub="op-1", name="Điều hành", roles=frozenset({"operator"}), unit="VN")


def item(**changes: Any) -> SimpleNamespace:
    row = {
        "initiative_id": "I-1",
        "path": "/VN/TH/TH-01/",
        "author_ids": "|M-1|",
        "status": "pending",
        "lease_holder": "rev-1",
        "lease_expires_at": NOW + timedelta(minutes=5),
        "decision_seq": 0,
    }
    return SimpleNamespace(**(row | changes))


def refusal(principal: Principal, row: Any, request: dict[str, Any]) -> ReviewError:
    with pytest.raises(ReviewError) as caught:
        check_decision(principal, row, request, NOW)
    return caught.value


def test_the_lease_holder_decides_and_the_decision_is_the_next_of_the_item() -> None:
    made = check_decision(REVIEWER, item(decision_seq=2), {"outcome": "valid", "verified_benefit_vnd": 5}, NOW)
    assert (made["decision_seq"], made["decided_by"], made["redecision"]) == (3, "rev-1", False)
    assert made["verified_benefit_vnd"] == 5 and made["decided_at"] == NOW


@pytest.mark.parametrize(
    ("principal", "row", "request_", "kind", "status"),
    [
        (REVIEWER, item(), {"outcome": "invalid"}, Invalid, 422),  # no reason
        (REVIEWER, None, {"outcome": "valid"}, NotFound, 404),
        (REVIEWER, item(path="/VN/HN/HN-001/"), {"outcome": "valid"}, OutOfScope, 403),
        (REVIEWER, item(author_ids="|M-9|"), {"outcome": "valid"}, ConflictOfInterest, 403),
        (REVIEWER, item(author_ids="|rev-1|"), {"outcome": "valid"}, ConflictOfInterest, 403),  # author by sub
        (REVIEWER, item(status="withdrawn"), {"outcome": "valid"}, Withdrawn, 409),
        (REVIEWER, item(status="valid"), {"outcome": "invalid", "reason": "spam"}, AlreadyDecided, 409),
        (REVIEWER, item(lease_holder="rev-2"), {"outcome": "valid"}, NotLeaseHolder, 409),
        (REVIEWER, item(lease_expires_at=NOW), {"outcome": "valid"}, NotLeaseHolder, 409),  # expired
    ],
)
def test_refusals_and_their_statuses(
    principal: Principal, row: Any, request_: dict[str, Any], kind: type[ReviewError], status: int
) -> None:
    refused = refusal(principal, row, request_)
    assert type(refused) is kind
    answer = to_api_error(refused, STATUS)
    assert (answer.status, answer.code, answer.message) == (status, refused.code, refused.message)


def test_an_operator_decides_again_without_a_lease() -> None:
    made = check_decision(
        OPERATOR,
        item(status="valid", lease_holder=None, decision_seq=1),
        {"outcome": "revision", "note": "Bổ sung"},
        NOW,
    )
    assert (made["redecision"], made["decision_seq"]) == (True, 2)
    details = refusal(OPERATOR, item(status="valid"), {"outcome": "revision"}).details
    assert details == [{"field": "note", "message": "Cần ghi chú nội dung cần bổ sung"}]


def test_a_claimed_row_is_shown_as_public_item_shows_any_row() -> None:
    Row = namedtuple("Row", [*SHOWN, "expired_lease"])  # type: ignore[misc]
    values = {c: f"v-{c}" for c in SHOWN} | {"submitted_at": datetime(2026, 11, 29, 8, tzinfo=UTC), "seq": 7}
    row = Row(**values, expired_lease=None)
    assert claimed_item(row) == public_item(row)
    assert list(claimed_item(row)) == list(public_item(row))  # the same order of keys in the JSON
    assert claimed_item(row)["submitted_at"] == "2026-11-29T08:00:00+00:00"


async def test_claims_at_once_read_the_floor_once_and_the_others_keep_the_one_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lowest pending seq is read by one claim; claims meanwhile (and until it is ``FLOOR_REFRESH_S`` old) use
    the floor read before, so eight reviewers do not read it eight times."""
    import asyncio

    from review import runtime as runtime_mod

    monkeypatch.setenv("ENVIRONMENT", "development")
    rt = runtime_mod.ReviewRuntime(runtime_mod.ReviewSettings())
    reads: list[int] = []
    release = asyncio.Event()

    async def lowest(_session: Any) -> int:
        reads.append(len(reads))
        await release.wait()
        return 100 * len(reads)

    first = asyncio.create_task(rt.claim_floor(None, lowest))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert await asyncio.gather(*(rt.claim_floor(None, lowest) for _ in range(7))) == [None] * 7  # type: ignore[arg-type]
    release.set()
    assert await first == 100 and reads == [0]
    assert await rt.claim_floor(None, lowest) == 100  # type: ignore[arg-type]
    read_at, floor = rt._floor
    rt._floor = (read_at - runtime_mod.FLOOR_REFRESH_S - 1, floor)  # as if it were read that long ago
    assert await rt.claim_floor(None, lowest) == 200 and reads == [0, 1]  # type: ignore[arg-type]
