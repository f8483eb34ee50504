"""What the hot paths' shortcuts must keep exactly: the duplicate fingerprint's comparison form, the ids,
the batch's one-pass validation, and the group commit's one-statement write on PostgreSQL."""

from __future__ import annotations

import re
import sys
import unicodedata
import uuid
from typing import Any

import orjson
import pytest
from intake.domain.ids import new_id, new_ids
from intake.domain.rules import normalise
from sqlalchemy import func, select

from shared.envelope import Envelope
from shared.testing import pg_database


def _normalise_with_regex(text: str | None) -> str:
    """The form fingerprints were first stored in; ``normalise`` must give the same for every text."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text or "").casefold()).strip()


def test_normalise_collapses_exactly_the_whitespace_the_regex_did() -> None:
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        text = f" A{c}b{c}{c}Ệ\u0301 {c}"
        assert normalise(text) == _normalise_with_regex(text), hex(cp)
    for text in (None, "", "  ", "Cải  tiến\tkhuôn\n\u00a0định vị ", "E\u0302\u0301 ß İ"):
        assert normalise(text) == _normalise_with_regex(text)


def test_ids_are_random_version_4_uuids() -> None:
    ids = [new_id(), *new_ids(500)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


async def test_a_batch_without_key_gets_the_same_answers_by_either_validation(world: Any, kit: Any) -> None:
    """All items valid: read in one pass (``ValidBatch``). One item invalid: read item by item. The answers
    per item are the same as the keyed batch's (which always goes item by item)."""
    c = world.client
    batch = "/api/v1/initiatives/batch"
    valid = [kit.body(title=f"Sáng kiến một lượt {i}") for i in range(3)]
    r = await c.post(batch, json={"items": valid}, headers=kit.support("TH"))
    assert r.status_code == 200 and r.json()["accepted"] == 3
    assert [i["seq"] for i in r.json()["items"]] == [1, 2, 3]
    mixed = [kit.body(title="Sáng kiến lô hỗn hợp"), kit.body(title="abc"), {"nonsense": True}, valid[0]]
    r = await c.post(batch, json={"items": mixed}, headers=kit.support("TH"))
    out = r.json()
    assert r.status_code == 200 and out["accepted"] == 1 and out["refused"] == 3
    assert out["items"][0]["seq"] == 4
    assert out["items"][1]["error"]["details"][0] == {"field": "title", "message": "Quá ngắn (5)"}
    assert {d["field"] for d in out["items"][2]["error"]["details"]} >= {"nonsense", "campaign", "title"}
    assert out["items"][3]["error"]["code"] == "duplicate"
    # Refusals that need the plan or the caller: out of scope, a member not among the authors.
    r = await c.post(
        batch, json={"items": [kit.body(title="Ngoài phạm vi", unit_code="HN-01-001")]}, headers=kit.support("TH")
    )
    assert r.json()["items"][0]["error"]["code"] == "out_of_scope"
    r = await c.post(batch, json={"items": [kit.body(title="Không phải tác giả")]}, headers=kit.member("M-0002"))
    assert r.json()["items"][0]["error"]["code"] == "not_an_author"


@pytest.mark.integration
async def test_group_commit_write_on_postgres_keeps_bodies_and_releases_partial_claims(kit: Any) -> None:
    """On PostgreSQL a group commit is one statement (initiatives as JSON, events as arrays): every column
    and every event body is stored as given. A co-authored item that duplicates one author's earlier
    initiative is refused and leaves no fingerprint behind for its other author."""
    from intake.adapters.orm import fingerprints, initiatives, outbox
    from intake.adapters.store import persist
    from intake.domain.events import submitted_event
    from intake.domain.models import InitiativeCreate
    from intake.submission import prepare

    from shared.auth import principal_from_claims

    async with pg_database() as url, kit.world_on(url) as w:
        w.ctx.relay.paused = True
        operator = principal_from_claims({"sub": "op", "roles": ["operator"], "unit": None})
        plan = w.ctx.extras["plan"]
        first = kit.body(title="Khuôn định vị", authors=[{"member_id": "M-1", "full_name": "A"}])
        co_authored = kit.body(
            title="Khuôn  định VỊ",
            authors=[{"member_id": "M-2", "full_name": "B"}, {"member_id": "M-1", "full_name": "A"}],
        )
        odd = kit.body(title='Tên có "ngoặc", \\ và\nxuống dòng ✓', problem=None, expected_benefit_vnd=0)
        made: list[Envelope] = []
        make = submitted_event(w.ctx.name)

        def remember(record: dict[str, Any], correlation_id: str | None = None) -> Envelope:
            made.append(make(record, correlation_id))
            return made[-1]

        items = [
            await prepare(plan, operator, InitiativeCreate.model_validate(b), kit.NOW)
            for b in (first, co_authored, odd)
        ]
        async with w.ctx.engine.begin() as conn:
            done = await persist(conn, items[:1], remember)
        async with w.ctx.engine.begin() as conn:
            outcomes = await persist(conn, items[1:], remember)
        assert done[0].kind == "created"
        assert [o.kind for o in outcomes] == ["duplicate", "created"]
        assert outcomes[0].existing_id == done[0].id
        async with w.ctx.engine.connect() as conn:
            bodies = (await conn.execute(select(outbox.c.event_id, outbox.c.body).order_by(outbox.c.id))).all()
            rows = {r.id: r for r in (await conn.execute(select(initiatives))).all()}
            held = (
                await conn.execute(
                    select(func.count()).select_from(fingerprints).where(fingerprints.c.member_id == "M-2")
                )
            ).scalar_one()
        assert [(r.event_id, bytes(r.body)) for r in bodies] == [(e.id, e.to_bytes()) for e in made]
        assert orjson.loads(bodies[1].body)["data"]["title"] == odd["title"]
        for item in (items[0], items[2]):
            row = rows[item.record["id"]]
            assert {k: getattr(row, k) for k in item.record} == item.record
        assert held == 0
