"""Review consuming whole batches set-based, on real PostgreSQL (and RabbitMQ for two replicas).

The dispatcher is driven with batches made by hand (the same Dispatcher, subscriptions and after_batch the
service runs), so a test can say exactly which events share a batch.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from review.adapters.orm import items, signatures
from review.app import create
from review.handlers import SUBSCRIPTIONS, make_apply_batch
from review_testkit import TREE, Review, initiative, review_settings
from sqlalchemy import func, select

from shared.bus.rabbitmq import RabbitMQBus
from shared.envelope import Envelope
from shared.messaging import Dispatcher
from shared.testing import AMQP_URL, amqp_prefix, auth, eventually, pg_database, running_app

pytestmark = pytest.mark.integration

OP = auth("operator", "VN", sub="op-1")
TEXT = "Cải tiến quy trình bảo dưỡng máy nén khí giúp giảm điện năng tiêu thụ ở phân xưởng cơ khí"


@dataclass(eq=False)
class Delivered:
    """A delivery as a bus hands it to the dispatcher; records how it was settled."""

    envelope: Envelope
    delivery_count: int = 1
    outcome: str | None = None
    reason: str | None = None

    async def ack(self) -> None:
        self.outcome = "ack"

    async def retry(self) -> None:
        self.outcome = "retry"

    async def dead_letter(self, reason: str | None = None) -> None:
        self.outcome = "dead"
        self.reason = reason


def event(event_type: str, data: dict[str, Any], event_id: str | None = None) -> Envelope:
    return Envelope(type=event_type, data=data, producer="intake", id=event_id or str(uuid.uuid4()))


def withdrawal(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in ("id", "campaign", "phase", "unit_code", "authors")}


def dispatcher(r: Review) -> Dispatcher:
    ctx = r.app.state.ctx
    runtime = ctx.runtime
    return Dispatcher(
        "review", ctx.sessions, ctx.inbox, SUBSCRIPTIONS, ctx.metrics, after_batch=make_apply_batch(runtime)
    )


async def deliver(r: Review, envelopes: Sequence[Envelope]) -> list[Delivered]:
    batch = [Delivered(e) for e in envelopes]
    await dispatcher(r)(batch)
    return batch


async def rows(r: Review) -> dict[str, Any]:
    async with r.app.state.ctx.sessions() as session:
        return {row.initiative_id: row for row in (await session.execute(select(items))).all()}


async def signature_counts(r: Review) -> dict[str, int]:
    async with r.app.state.ctx.sessions() as session:
        query = select(signatures.c.initiative_id, func.count()).group_by(signatures.c.initiative_id)
        return {iid: n for iid, n in (await session.execute(query)).all()}


async def test_duplicates_and_older_revisions_inside_one_batch(pg_review: Review) -> None:
    item = initiative(title="bản 0")
    again = event("initiative.submitted", item)
    batch = await deliver(
        pg_review,
        [
            event("initiative.revised", {**item, "revision": 2, "title": "bản 2"}),
            again,
            event("initiative.revised", {**item, "revision": 1, "title": "bản 1"}),
            Envelope(type=again.type, data=again.data, producer="intake", id=again.id),  # the same event twice
            event("initiative.submitted", item),  # the same submission under another event id
        ],
    )
    assert {d.outcome for d in batch} == {"ack"}
    stored = (await rows(pg_review))[item["id"]]
    assert (stored.revision, stored.title, stored.status) == (2, "bản 2", "pending")
    assert await signature_counts(pg_review) == {item["id"]: 1}
    metrics = (await pg_review.client.get("/metrics")).text
    assert 'sangkien_review_events_duplicate_total{service="review",type="initiative.submitted"} 1.0' in metrics


async def test_a_withdrawal_before_its_submission_in_one_batch_and_across_batches(pg_review: Review) -> None:
    a, b, c = initiative(), initiative(), initiative()
    await deliver(
        pg_review,
        [
            event("initiative.withdrawn", withdrawal(a)),
            event("initiative.submitted", a),
            event("initiative.submitted", b),
            event("initiative.withdrawn", withdrawal(b)),
            event("initiative.withdrawn", withdrawal(c)),
        ],
    )
    await deliver(pg_review, [event("initiative.submitted", c), event("initiative.revised", {**c, "revision": 1})])
    stored = await rows(pg_review)
    assert {k: stored[k].status for k in (a["id"], b["id"], c["id"])} == dict.fromkeys(
        (a["id"], b["id"], c["id"]), "withdrawn"
    )
    # The late text is kept (an operator may look at it), the item stays out of the queue.
    assert stored[c["id"]].revision == 1 and stored[c["id"]].title == c["title"]
    claimed = await pg_review.client.post("/api/v1/review/claims", json={"count": 10}, headers=OP)
    assert claimed.json()["items"] == []


async def test_an_unreadable_payload_is_dead_lettered_at_once_and_the_rest_of_its_batch_is_queued(
    pg_review: Review,
) -> None:
    good, other = initiative(), initiative()
    no_campaign = {k: v for k, v in initiative().items() if k != "campaign"}
    batch = await deliver(
        pg_review,
        [
            event("initiative.submitted", good),
            event("initiative.submitted", no_campaign),
            event("initiative.revised", {**other, "revision": "hai"}),
            event("initiative.submitted", other),
        ],
    )
    assert [d.outcome for d in batch] == ["ack", "dead", "dead", "ack"]
    assert batch[1].reason == "invalid payload (InitiativeContent): campaign: Field required"
    assert batch[2].reason is not None and batch[2].reason.startswith("invalid payload (InitiativeContent): revision:")
    stored = await rows(pg_review)
    assert set(stored) == {good["id"], other["id"]}
    assert {stored[k].status for k in stored} == {"pending"}
    # Redelivered after its consumer learns to read it, it is handled, not skipped as a duplicate.
    again = await deliver(pg_review, [Envelope(type="initiative.submitted", data={**no_campaign, "campaign": "1M"},
                                               producer="intake", id=batch[1].envelope.id)])  # fmt: skip
    assert [d.outcome for d in again] == ["ack"]
    assert no_campaign["id"] in await rows(pg_review)


async def test_redelivery_of_a_partly_handled_batch(pg_review: Review) -> None:
    first, second = initiative(), initiative()
    done = event("initiative.submitted", first)
    await deliver(pg_review, [done])
    before = (await rows(pg_review))[first["id"]]
    # The broker gives the first event back together with one it had not delivered yet.
    batch = await deliver(pg_review, [done, event("initiative.submitted", second)])
    assert [d.outcome for d in batch] == ["ack", "ack"]
    stored = await rows(pg_review)
    assert stored[first["id"]].queued_at == before.queued_at  # untouched by the redelivery
    assert stored[second["id"]].status == "pending"
    assert await signature_counts(pg_review) == {first["id"]: 1, second["id"]: 1}


async def test_a_redelivery_after_the_decision_changes_nothing_and_initiative_events_take_no_inbox_row(
    pg_review: Review,
) -> None:
    """The handlers' own keys (revision, a final status) absorb a redelivery in a later batch: review's initiative
    subscriptions are ``idempotent`` and write no inbox row; unit events still do."""
    item = initiative()
    submitted = event("initiative.submitted", item)
    await deliver(pg_review, [submitted])
    claimed = await pg_review.client.post("/api/v1/review/claims", json={"count": 10}, headers=OP)
    assert [i["initiative_id"] for i in claimed.json()["items"]] == [item["id"]]
    decided = await pg_review.client.post(
        f"/api/v1/review/items/{item['id']}/decision", json={"outcome": "valid"}, headers=OP
    )
    assert decided.status_code == 200, decided.text
    before = (await rows(pg_review))[item["id"]]
    again = await deliver(
        pg_review, [submitted, event("initiative.submitted", item), event("initiative.withdrawn", withdrawal(item))]
    )
    assert {d.outcome for d in again} == {"ack"}
    after = (await rows(pg_review))[item["id"]]
    assert (after.status, after.decision_seq, after.revision, after.queued_at) == (
        "valid",
        before.decision_seq,
        0,
        before.queued_at,
    )
    assert await signature_counts(pg_review) == {item["id"]: 1}
    assert await inbox_rows(pg_review) == {"unit.upserted.v1": len(TREE)}  # the tree the fixture sent
    await deliver(pg_review, [event("unit.upserted", {**TREE[0], "revision": 99})])
    assert await inbox_rows(pg_review) == {"unit.upserted.v1": len(TREE) + 1}


async def inbox_rows(r: Review) -> dict[str, int]:
    inbox = r.app.state.ctx.inbox
    async with r.app.state.ctx.sessions() as session:
        return dict((await session.execute(select(inbox.c.handler, func.count()).group_by(inbox.c.handler))).all())


async def test_near_duplicates_are_found_inside_one_batch_in_seq_order(pg_review: Review) -> None:
    earlier = initiative(title="Máy nén khí", solution=TEXT, seq=101)
    copy = initiative(title="Máy nén khí", solution=TEXT + " tại nhà máy", seq=102)
    other = initiative(title="Sổ tay an toàn", solution="Biên soạn sổ tay an toàn lao động cho công nhân mới", seq=103)
    # Delivered out of seq order: the lookup follows seq, not arrival.
    await deliver(pg_review, [event("initiative.submitted", x) for x in (other, copy, earlier)])
    stored = await rows(pg_review)
    assert stored[earlier["id"]].similar == []
    assert [(s["initiative_id"], s["title"]) for s in stored[copy["id"]].similar] == [(earlier["id"], "Máy nén khí")]
    assert stored[other["id"]].similar == []
    # A later batch finds them through the index, which caught up with the committed signatures.
    late = initiative(title="Máy nén khí", solution=TEXT, seq=104)
    await deliver(pg_review, [event("initiative.submitted", late)])
    found = {s["initiative_id"] for s in (await rows(pg_review))[late["id"]].similar}
    assert found == {earlier["id"], copy["id"]}


@dataclass
class Expected:
    revision: int = -1
    title: str = ""
    withdrawn: bool = False


async def test_two_replicas_consuming_one_queue_end_in_the_same_state_as_one() -> None:
    """Submissions, revisions (some late), withdrawals and redeliveries, published concurrently to the queue two
    review replicas share; afterwards every item is what the events say, whichever replica handled it."""
    rng = random.Random(7)
    async with amqp_prefix() as prefix, pg_database() as url:
        settings = review_settings(
            url, amqp_url=AMQP_URL, amqp_prefix=prefix, consumer_batch_size=25, consumer_batch_wait_ms=2
        )
        first, second = create(settings), create(settings)
        async with running_app(first), running_app(second):
            events: list[Envelope] = [event("unit.upserted", {**u, "revision": 1}) for u in TREE]
            expected: dict[str, Expected] = {}
            for n in range(300):
                item = initiative(title=f"Sáng kiến {n}", seq=1000 + n)
                want = expected.setdefault(item["id"], Expected())
                mine = [event("initiative.submitted", item)]
                for rev in range(1, rng.randint(1, 3)):
                    mine.append(event("initiative.revised", {**item, "revision": rev, "title": f"{n} bản {rev}"}))
                want.revision = len(mine) - 1
                want.title = item["title"] if want.revision == 0 else f"{n} bản {want.revision}"
                if n % 7 == 0:
                    mine.append(event("initiative.withdrawn", withdrawal(item)))
                    want.withdrawn = True
                rng.shuffle(mine)  # late revisions, withdrawals before submissions
                events += mine
            publisher = RabbitMQBus(AMQP_URL, prefix=prefix, pack_size=5)  # many messages: both replicas get some
            await publisher.start()
            try:
                await asyncio.gather(publisher.publish(events[::2]), publisher.publish(events[1::2]))
                await publisher.publish(events[-200:])  # a redelivered slice
            finally:
                await publisher.close()

            async def settled() -> bool:
                async with first.state.ctx.sessions() as session:
                    stored = {r.initiative_id: r for r in (await session.execute(select(items))).all()}
                    query = select(signatures.c.initiative_id, func.count()).group_by(signatures.c.initiative_id)
                    sig_counts = dict((await session.execute(query)).all())
                return sig_counts == dict.fromkeys(expected, 1) and all(
                    iid in stored
                    and (stored[iid].revision, stored[iid].title) == (want.revision, want.title)
                    and stored[iid].status == ("withdrawn" if want.withdrawn else "pending")
                    for iid, want in expected.items()
                )

            await eventually(settled, timeout_s=60)
            for app in (first, second):
                assert app.state.metrics.events_consumed.labels("initiative.submitted")._value.get() > 0
            # Either replica's index, caught up, holds every initiative once.
            async with second.state.ctx.sessions() as session:
                await second.state.ctx.runtime.similarity.sync(session)
            assert sorted(second.state.ctx.runtime.similarity.index("1M").ids) == sorted(expected)
