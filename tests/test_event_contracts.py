"""Consumer-driven contracts: what the producers really emit against what every consumer's own models require.

The producers are not imitated: the five apps run embedded (SQLite, the in-process bus) and an operator, members,
a reviewer and appraisers drive them through the gateway, so every payload is built by the code that builds it in
production (tally's plan routes, intake's hot path and its revise/withdraw routes, review's decisions and
appraisals). Every message the bus routes is kept, and each is validated against the model of every consumer
that subscribes to its routing key (``<service>/handlers/events.py``, ``EVENTS``). The consumers run meanwhile
and must dead-letter nothing. docs/events.md's consumer tables are generated from the same models.
"""

from __future__ import annotations

import asyncio
import importlib.util
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from shared.bus.memory import InMemoryBroker
from shared.envelope import Envelope
from shared.testing import auth, eventually
from tests.flow import embedded_system, walking_skeleton

ROOT = Path(__file__).resolve().parents[1]


def _events_doc() -> Any:
    spec = importlib.util.spec_from_file_location("events_doc", ROOT / "scripts" / "events_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


events_doc = _events_doc()
MODELS: dict[str, dict[str, type[BaseModel]]] = events_doc.consumer_models()


def _subscribed_keys() -> dict[str, set[str]]:
    from awards.handlers import SUBSCRIPTIONS as awards
    from intake.handlers import make_subscriptions
    from review.handlers import SUBSCRIPTIONS as review
    from tally.handlers import SUBSCRIPTIONS as tally

    lists = {"intake": make_subscriptions(lambda: None), "review": review, "tally": tally, "awards": awards}
    return {name: {s.routing_key for s in subs} for name, subs in lists.items()}


def test_every_subscription_has_its_consumers_model() -> None:
    """A handler parses its payload into its service's model of that event: none is subscribed without one."""
    assert {name: set(events) for name, events in MODELS.items()} == _subscribed_keys()


def test_the_committed_doc_is_generated_from_the_models() -> None:
    doc = events_doc.DOC.read_text(encoding="utf-8")
    assert doc == events_doc.updated(doc), "docs/events.md is stale: run .venv/bin/python scripts/events_doc.py"
    for key in events_doc.PRODUCERS:
        assert f"### `{key}`" in doc


def _body(today: date, title: str, solution: str) -> dict[str, Any]:
    return {
        "campaign": "1M",
        "unit_code": "TH-01-001",
        "field": "production",
        "title": title,
        "problem": "Công đoạn này làm thủ công, tốn nhiều giờ công mỗi ca.",
        "solution": solution,
        "effect": "Giảm thời gian và chi phí.",
        "expected_benefit_vnd": 20_000_000,
        "applied_on": (today - timedelta(days=5)).isoformat(),
        "confidential": False,
        "authors": [{"member_id": "M-0001", "full_name": "Nguyễn Văn A"}],
    }


async def _drive(client: httpx.AsyncClient) -> None:
    """Every kind of event the producers emit, through the gateway (awards' own events have no consumer yet)."""
    today = date.today()
    first = (await walking_skeleton(client))["initiative"]  # units, campaign, submitted, reviewed, milestone
    operator = auth("operator", "VN", sub="op-1")
    quotas = [{"unit_code": "TH-01-001", "phase": "P1", "assigned": 4, "self_set": 6}]
    r = await client.put("/api/v1/campaigns/1M/quotas", json=quotas, headers=operator)
    assert r.status_code == 200, r.text
    r = await client.post("/api/v1/tally/snapshots", json={"campaign": "1M"}, headers=operator)
    assert r.status_code in (200, 201), r.text

    member = auth("member", "TH-01-001", sub="m-1", member_id="M-0001", name="Nguyễn Văn A")
    made = []
    for n, (title, solution) in enumerate(
        [
            ("Tự động hóa khâu đóng gói bao xi măng", "Băng tải có cảm biến đếm bao tự dừng khi đủ."),
            ("Tái sử dụng nước làm mát lò nung", "Bể lắng ba ngăn và bơm tuần hoàn cho nước làm mát."),
        ]
    ):
        headers = {**member, "Idempotency-Key": f"contract-{n}"}
        r = await client.post("/api/v1/initiatives", json=_body(today, title, solution), headers=headers)
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
    revised, withdrawn = made

    reviewer = auth("reviewer", "TH", sub="rv-1", member_id="M-9999")

    async def claimed() -> bool:
        r = await client.post("/api/v1/review/claims", json={"count": 10}, headers=reviewer)
        return r.status_code == 200 and revised in {i["initiative_id"] for i in r.json()["items"]}

    await eventually(claimed, timeout_s=30)
    r = await client.post(
        f"/api/v1/review/items/{revised}/decision",
        json={"outcome": "revision", "note": "Bổ sung số liệu đo."},
        headers=reviewer,
    )
    assert r.status_code == 200, r.text

    async def revise() -> bool:
        change = {"effect": "Giảm 40% lượng nước cấp mới mỗi tháng."}
        r = await client.patch(f"/api/v1/initiatives/{revised}", json=change, headers=member)
        return r.status_code == 200

    await eventually(revise, timeout_s=30)  # once intake has the reviewer's request for a revision
    r = await client.post(f"/api/v1/initiatives/{withdrawn}/withdraw", headers=member)
    assert r.status_code == 200, r.text

    scores = {"novelty": 8, "applicability": 9, "effectiveness": 9, "scope": 8, "note": None}
    for n in (1, 2):
        appraiser = auth("appraiser", "TH", sub=f"ap-{n}", member_id=f"M-700{n}")
        r = await client.post(f"/api/v1/review/items/{first['id']}/appraisals", json=scores, headers=appraiser)
        assert r.status_code == 201, r.text


async def test_every_event_the_producers_emit_satisfies_every_consumer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    routed: list[Envelope] = []
    route = InMemoryBroker.route

    def keep(self: InMemoryBroker, body: bytes, routing_key: str) -> list[asyncio.Future[None]]:
        routed.append(Envelope.from_bytes(body))
        return route(self, body, routing_key)

    monkeypatch.setattr(InMemoryBroker, "route", keep)
    consumed = {key for events in MODELS.values() for key in events}
    async with embedded_system(tmp_path) as (client, apps):
        await _drive(client)

        async def all_kinds() -> bool:
            return consumed <= {e.routing_key for e in routed}

        await eventually(all_kinds, timeout_s=30)
        await asyncio.sleep(1.0)  # let the consumers handle the last ones
        for name in MODELS:
            letters = await apps[name].state.ctx.bus.dead_letters(name)
            assert letters == [], (name, [(d.routing_key, d.reason) for d in letters])

    checked: dict[tuple[str, str], int] = {}
    for envelope in routed:
        assert envelope.producer == events_doc.PRODUCERS[envelope.routing_key], envelope.routing_key
        for consumer, events in MODELS.items():
            model = events.get(envelope.routing_key)
            if model is None:
                continue
            try:
                model.model_validate(envelope.data)
            except ValidationError as exc:
                pytest.fail(f"{envelope.producer} emits {envelope.routing_key} that {consumer} cannot read: {exc}")
            checked[consumer, envelope.routing_key] = checked.get((consumer, envelope.routing_key), 0) + 1
    # Every (consumer, event) pair of the models was met by a real event at least once.
    assert set(checked) == {(consumer, key) for consumer, events in MODELS.items() for key in events}

    # The check has teeth: a producer that dropped any field a consumer requires would fail it.
    for envelope in {e.routing_key: e for e in routed}.values():
        for consumer, events in MODELS.items():
            model = events.get(envelope.routing_key)
            if model is None:
                continue
            for name, field in model.model_fields.items():
                key = field.alias or name
                if field.is_required():
                    assert key in envelope.data, (envelope.routing_key, consumer, key)
                    dropped = {k: v for k, v in envelope.data.items() if k != key}
                    with pytest.raises(ValidationError):
                        model.model_validate(dropped)
