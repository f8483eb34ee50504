"""The decision path's statements on PostgreSQL: how many a request sends, whatever the size of its batch.

The path was tuned (bench/review.py --only-api measures its CPU per decision): the items read under lock in
one statement, then the audit rows, the items' new state and the events in one more (two data-modifying CTEs
and the outbox insert). A refactoring that adds a statement per decision, or one more per request, shows here
first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from review_testkit import Review, initiative
from sqlalchemy import event

from shared.logs import correlation_id_var
from shared.testing import auth, eventually

pytestmark = pytest.mark.integration

REVIEWER = auth("reviewer", "TH", sub="rev-count", member_id="M-R1")


@contextmanager
def statements_of(r: Review, correlation_id: str) -> Iterator[list[str]]:
    """The statements sent to the database on behalf of the request carrying ``correlation_id``."""
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if correlation_id_var.get() == correlation_id:
            sent.append(statement)

    engine = r.app.state.ctx.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", note)


async def _claim(r: Review, count: int) -> list[str]:
    got = await r.client.post("/api/v1/review/claims", json={"count": count}, headers=REVIEWER)
    assert got.status_code == 200, got.text
    return [i["initiative_id"] for i in got.json()["items"]]


async def _counted(r: Review, path: str, body: dict[str, Any]) -> tuple[Any, list[str]]:
    corr = uuid.uuid4().hex
    with statements_of(r, corr) as sent:
        answer = await r.client.post(path, json=body, headers={**REVIEWER, "X-Correlation-ID": corr})
    assert answer.status_code == 200, answer.text
    return answer.json(), sent


async def test_a_batch_of_decisions_costs_the_same_statements_as_one(pg_review: Review) -> None:
    made = [initiative() for _ in range(41)]
    await pg_review.submit(*made)

    async def queued() -> bool:
        stats = await pg_review.client.get("/api/v1/review/stats", headers=REVIEWER)
        return bool(stats.json()["pending"] == len(made))

    await eventually(queued)
    (one,) = await _claim(pg_review, 1)
    path = f"/api/v1/review/items/{one}/decision"
    decided, single = await _counted(pg_review, path, {"outcome": "valid"})
    assert decided["status"] == "valid"

    forty = await _claim(pg_review, 40)
    assert len(forty) == 40
    body = {"decisions": [{"initiative_id": i, "outcome": "valid"} for i in forty]}
    answer, batch = await _counted(pg_review, "/api/v1/review/decisions/batch", body)
    assert (answer["accepted"], answer["refused"]) == (40, 0)

    # In one transaction: the lock-and-read, then one statement writing the audit rows, the items' state and the
    # outbox.
    sent = [s for s in single if not s.lstrip().upper().startswith(("BEGIN", "COMMIT"))]
    assert len(single) == len(batch), (single, batch)
    assert [s.split()[0].upper() for s in sent] == ["SELECT", "WITH"], single
    write = " ".join(sent[1].split())
    for part in ("INSERT INTO review_decision", "UPDATE review_item", "INSERT INTO outbox"):
        assert part in write, write
