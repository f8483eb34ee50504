"""What the hot paths' shortcuts must keep exactly: the duplicate fingerprint's comparison form, the ids,
the batch's one-pass validation, and the group commit's one-statement write on PostgreSQL."""

from __future__ import annotations

import dataclasses
import re
import sys
import time
import unicodedata
import uuid
from typing import Any

import orjson
import pytest
from intake.domain.rules import normalise
from sqlalchemy import func, select
from sqlalchemy import inspect as sa_inspect

from shared.envelope import Envelope
from shared.ids import new_id, new_ids
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
        for text in (f"A{c}b", f"A{c}", f"{c}b"):  # the texts an already collapsed one could be taken for
            assert normalise(text) == _normalise_with_regex(text), hex(cp)
    for text in (None, "", "  ", "Cải  tiến\tkhuôn\n\u00a0định vị ", "E\u0302\u0301 ß İ"):
        assert normalise(text) == _normalise_with_regex(text)


def test_ids_are_version_7_uuids_that_grow_with_time() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_id(), *new_ids(500)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after  # the leading 48 bits: Unix milliseconds
    later = new_ids(1)[0]
    time.sleep(0.002)
    assert new_id()[:13] > later[:13]  # a later millisecond sorts after, as text too


async def test_a_batch_without_key_gets_the_same_answers_by_either_validation(world: Any, kit: Any) -> None:
    """Valid items are read in the same pass as the JSON (``BatchRequest``); an invalid one alone again. The answers
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
    assert out["items"][1]["error"]["details"][0] == {"field": "title", "message": "Tiêu đề cần ít nhất 5 ký tự"}
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
        plan = w.ctx.runtime.plan
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


def test_bulk_submitted_bodies_are_the_envelopes_bytes() -> None:
    """``SubmittedEvents.bodies`` serialises without an ``Envelope`` each: byte for byte what the envelope
    the same factory makes would serialise to, correlation ids included."""
    from datetime import UTC, date, datetime

    from intake.domain.events import PAYLOAD_FIELDS, submitted_event

    make = submitted_event("intake")
    at = datetime(2022, 3, 5, 2, 0, 0, 123456, tzinfo=UTC)
    records = [
        {k: None for k in PAYLOAD_FIELDS}
        | {
            "id": f"id-{i}",
            "seq": i,
            "title": 'Tên "lạ" ✓\n',
            "applied_on": date(2022, 3, 1),
            "submitted_at": at,
            "authors": [{"member_id": "M-1", "full_name": "Nguyễn Văn A"}],
            "confidential": bool(i % 2),
            "revision": 0,
        }
        for i in range(3)
    ]
    correlations = ["corr-0", None, "corr-2"]
    ids, bodies = make.bodies(records, correlations)
    for record, correlation, event_id, body in zip(records, correlations, ids, bodies, strict=True):
        envelope = dataclasses.replace(make(record, correlation), id=event_id)
        assert body == envelope.to_bytes()


def test_prepared_authors_are_what_model_dump_gives(kit: Any) -> None:
    from intake.domain.models import InitiativeCreate

    item = InitiativeCreate.model_validate(
        kit.body(authors=[{"member_id": " M-1 ", "full_name": "A "}, {"member_id": "M-2", "full_name": "B"}])
    )
    built = [{"member_id": a.member_id, "full_name": a.full_name} for a in item.authors]
    assert built == [a.model_dump() for a in item.authors]


@pytest.mark.integration
async def test_batch_rows_with_differing_columns_keep_their_own_values_on_postgres(kit: Any) -> None:
    """Columns of one value in the whole batch travel once as parameters; a column that differs between
    rows (unit, field, confidentiality, submitter, instant) stays per row: every row is stored as given."""
    from datetime import timedelta

    from intake.adapters.orm import initiative_authors, initiatives
    from intake.adapters.store import persist
    from intake.domain.events import submitted_event
    from intake.domain.models import InitiativeCreate
    from intake.submission import prepare

    from shared.auth import principal_from_claims

    async with pg_database() as url, kit.world_on(url) as w:
        w.ctx.relay.paused = True
        plan = w.ctx.runtime.plan
        ops = [principal_from_claims({"sub": s, "roles": ["operator"], "unit": None}) for s in ("op-1", "op-2")]
        bodies = [
            kit.body(title="Cùng cột", authors=[{"member_id": "M-1", "full_name": "A"}]),
            kit.body(
                title="Khác cột",
                unit_code="TH-01-002",
                field="safety",
                confidential=True,
                problem=None,
                solution=None,
                authors=[{"member_id": "M-2", "full_name": "B"}, {"member_id": "M-3", "full_name": "C"}],
            ),
        ]
        items = [
            await prepare(plan, ops[i], InitiativeCreate.model_validate(b), kit.NOW + timedelta(seconds=i))
            for i, b in enumerate(bodies)
        ]
        async with w.ctx.engine.begin() as conn:
            outcomes = await persist(conn, items, submitted_event(w.ctx.name))
        assert [o.kind for o in outcomes] == ["created", "created"]
        async with w.ctx.engine.connect() as conn:
            rows = {r.id: r for r in (await conn.execute(select(initiatives))).all()}
            authors = sorted(tuple(r) for r in (await conn.execute(select(initiative_authors))).all())
        for item in items:
            row = rows[item.record["id"]]
            assert {k: getattr(row, k) for k in item.record} == item.record
        ids = [item.record["id"] for item in items]
        assert authors == sorted([(ids[0], "M-1"), (ids[1], "M-2"), (ids[1], "M-3")])


@pytest.mark.integration
async def test_revision_and_withdrawal_release_fingerprints_on_postgres(kit: Any) -> None:
    """Without an index on ``initiative_id`` (migration 0002) an initiative's fingerprint rows are found
    through its campaign and authors: a revised text and a withdrawn initiative no longer block their
    authors, and the revised text does."""
    from intake.adapters.orm import fingerprints

    async with pg_database() as url, kit.world_on(url) as w:
        c = w.client
        async with w.ctx.engine.connect() as conn:
            indexes = await conn.run_sync(lambda s: sa_inspect(s).get_indexes("initiative_fingerprint"))
        assert [i["name"] for i in indexes] == []
        pair = [{"member_id": "M-0001", "full_name": "A"}, {"member_id": "M-0002", "full_name": "B"}]
        first = kit.body(title="Sáng kiến sẽ sửa", authors=pair)
        iid = (await c.post("/api/v1/initiatives", json=first, headers=kit.member())).json()["id"]
        reviewed = Envelope(
            type="initiative.reviewed",
            producer="review",
            data={"initiative_id": iid, "outcome": "revision", "reason": None, "decision_seq": 1, "campaign": "1M"},
        )
        await w.publish(reviewed)
        assert (await c.get(f"/api/v1/initiatives/{iid}", headers=kit.member())).json()[
            "status"
        ] == "revision_requested"
        r = await c.patch(f"/api/v1/initiatives/{iid}", json={"title": "Sáng kiến đã sửa"}, headers=kit.member())
        assert r.status_code == 200, r.text
        # The old text is free again for both authors; the new one is taken.
        again = await c.post("/api/v1/initiatives", json=kit.body(title="Sáng kiến sẽ sửa"), headers=kit.member())
        assert again.status_code == 201
        dup = await c.post("/api/v1/initiatives", json=kit.body(title="Sáng kiến đã sửa"), headers=kit.member())
        assert dup.status_code == 409
        assert (await c.post(f"/api/v1/initiatives/{iid}/withdraw", headers=kit.member())).status_code == 200
        async with w.ctx.engine.connect() as conn:
            held = (
                await conn.execute(
                    select(func.count()).select_from(fingerprints).where(fingerprints.c.initiative_id == iid)
                )
            ).scalar_one()
        assert held == 0
        resubmit = await c.post("/api/v1/initiatives", json=kit.body(title="Sáng kiến đã sửa"), headers=kit.member())
        assert resubmit.status_code == 201


async def test_started_service_sets_its_collector_thresholds(world: Any) -> None:
    import gc

    from shared.gc_tuning import GC_THRESHOLDS

    assert gc.get_threshold() == GC_THRESHOLDS


async def test_an_idempotent_batch_with_json_orjson_cannot_write_gets_its_item_refusals(world: Any, kit: Any) -> None:
    """An item with an integer beyond 64 bits (valid JSON, read by Python's parser) is refused alone, and the
    batch's Idempotency-Key is still claimed with a digest of the same body: the replay answers the same."""
    c = world.client
    body = '{"items": [{"title": "Sáng kiến số lớn", "n": 123456789012345678901234567890}]}'.encode()
    headers = kit.support("TH") | {"Idempotency-Key": "so-lon", "Content-Type": "application/json"}
    first = await c.post("/api/v1/initiatives/batch", content=body, headers=headers)
    assert first.status_code == 200 and first.json()["refused"] == 1
    assert {d["field"] for d in first.json()["items"][0]["error"]["details"]} >= {"n", "campaign"}
    again = await c.post("/api/v1/initiatives/batch", content=body, headers=headers)
    assert again.json() == first.json()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
async def test_a_batch_reads_its_units_in_one_query_and_refreshes_the_expired_in_one(backend: str, tmp_path) -> None:
    """``PlanReader.units``: the units a batch names are read together (one query), answered from the cache while
    fresh, answered stale within a second TTL while one background query refreshes all of them, and dropped once
    the plan no longer has them."""
    import asyncio
    import contextlib

    from intake.adapters.orm import metadata, units
    from intake.adapters.plan import PlanReader
    from sqlalchemy import event, update

    from shared.db import make_engine

    async with contextlib.AsyncExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}"
        else:
            url = await stack.enter_async_context(pg_database())
        engine = await make_engine(url)
        stack.push_async_callback(engine.dispose)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            rows = [
                {"code": f"U{n}", "name": f"Công đoàn {n}", "kind": "grassroots", "path": f"/VN/U{n}/", "revision": 1}
                for n in range(300)
            ]
            await conn.execute(units.insert(), rows)
        selects: list[str] = []

        def seen(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("SELECT") and "unit" in statement:
                selects.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", seen)
        plan = PlanReader(engine, ttl_s=60.0)
        codes = {f"U{n}" for n in range(250)} | {"NOPE"}
        got = await plan.units(codes)
        assert len(selects) == 1
        assert got["NOPE"] is None and got["U7"] is not None and got["U7"].path == "/VN/U7/"
        assert (await plan.units({"U1", "U2"}))["U2"].path == "/VN/U2/" and len(selects) == 1  # cached
        async with engine.begin() as conn:
            await conn.execute(update(units).where(units.c.code == "U3").values(path="/VN/X/U3/"))
            await conn.execute(units.delete().where(units.c.code == "U4"))
        for code in ("U3", "U4", "U5"):  # expired, within the second TTL
            at, unit = plan._units[code]
            plan._units[code] = (at - 61.0, unit)
        stale = await plan.units({"U3", "U4", "U5", "U6"})
        assert stale["U3"].path == "/VN/U3/" and stale["U4"] is not None  # answered at once, stale
        await asyncio.gather(*plan._refreshes)
        assert len(selects) == 2  # one background query for the three
        fresh = await plan.units({"U3", "U4", "U5"})
        assert fresh["U3"].path == "/VN/X/U3/" and fresh["U5"].path == "/VN/U5/"
        assert fresh["U4"] is None and len(selects) == 3  # U4 left the plan: read again, and not found


@pytest.mark.integration
async def test_a_decision_updates_its_initiative_heap_only_on_postgres(kit: Any) -> None:
    """Migration 0003 leaves room on the initiative table's pages: a batch of decisions (which change no indexed
    column) updates every initiative heap-only, with no new index entries."""
    from datetime import UTC, datetime

    from intake.adapters.reviews import apply_decisions
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncSession

    paragraph = "Thay khuôn định vị bằng thép tận dụng phế liệu, giảm thời gian gá lắp và phế phẩm. " * 5
    async with pg_database() as url, kit.world_on(url) as w:
        items = [
            kit.body(title=f"Sáng kiến khuôn định vị số {n}", problem=paragraph, solution=paragraph, effect=paragraph)
            for n in range(60)
        ]
        r = await w.client.post("/api/v1/initiatives/batch", json={"items": items}, headers=kit.support("TH"))
        assert r.status_code == 200 and r.json()["accepted"] == 60
        ids = [item["id"] for item in r.json()["items"]]
        decided_at = datetime.now(UTC).isoformat()
        rows = [
            {
                "id": iid,
                "status": "valid",
                "decision_seq": 1,
                "review_outcome": "valid",
                "review_reason": None,
                "review_note": "Đạt",
                "verified_benefit_vnd": None,
                "decided_at": decided_at,
            }
            for iid in ids
        ]
        async with AsyncSession(w.ctx.engine) as session, session.begin():
            await apply_decisions(session, rows)
            counts = await session.execute(
                text(
                    "SELECT pg_stat_get_xact_tuples_updated('initiative'::regclass),"
                    " pg_stat_get_xact_tuples_hot_updated('initiative'::regclass)"
                )
            )
            assert tuple(counts.one()) == (60, 60)
