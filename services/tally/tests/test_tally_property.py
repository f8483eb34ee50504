"""Property: any stream of initiative events — shuffled, duplicated, redelivered, with units moved between
batches — yields the figures a plain Python model of SPEC §4 gives (on the final tree), for every unit subtree
and phase, and ``verify`` finds no difference."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tally.adapters.maintenance import verify
from tally_testkit import LEAVES, OP, TREE, reviewed, submitted, withdrawn

from shared.envelope import Envelope

PARENT = {u["code"]: u["parent_code"] for u in TREE}
MEMBERS = ["M-1", "M-2", "M-3", "M-4", "M-5"]


# Moves the plan accepts: a district between provinces, grassroots units between a province and a district.
MOVES = [("TH-01", p) for p in ("TH", "HN")] + [("HN-001", p) for p in ("HN", "TH-01", "TH")]
MOVES += [("TH-01-002", p) for p in ("TH-01", "HN")]


def ancestors(code: str, parent: dict[str, str | None]) -> list[str]:
    out = []
    cur: str | None = code
    while cur is not None:
        out.append(cur)
        cur = parent[cur]
    return out


@dataclass
class Truth:
    unit: str
    phase: str
    authors: tuple[str, ...]
    counted: bool
    outcome: str | None
    benefit: int  # the benefit if valid


def model(truths: list[Truth], unit: str, phase: str | None, parent: dict[str, str | None]) -> dict[str, Any]:
    mine = [
        t for t in truths if t.counted and unit in ancestors(t.unit, parent) and (phase is None or t.phase == phase)
    ]
    valid = [t for t in mine if t.outcome == "valid"]
    invalid = [t for t in mine if t.outcome == "invalid"]
    return {
        "submitted": len(mine),
        "valid": len(valid),
        "invalid": len(invalid),
        "pending": len(mine) - len(valid) - len(invalid),
        "participants": len({a for t in mine for a in t.authors}),
        "benefit_vnd": sum(t.benefit for t in valid),
    }


authors_st = st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=3, unique=True).map(tuple)
decision_st = st.tuples(st.sampled_from(["valid", "invalid", "revision"]), st.none() | st.integers(0, 5000))
life_st = st.fixed_dictionaries(
    {
        "unit": st.sampled_from(LEAVES),
        "phase": st.sampled_from(["P1", "P2"]),
        "revisions": st.lists(st.tuples(authors_st, st.integers(0, 10_000)), min_size=1, max_size=3),
        "decisions": st.lists(decision_st, max_size=3),
        "withdraw": st.booleans(),
    }
)


def lifecycle(campaign: str, life: dict[str, Any]) -> tuple[list[Envelope], Truth]:
    """A plausible life: submitted, decisions (a revision request is followed by the next revision), maybe withdrawn."""
    iid = str(uuid.uuid4())
    unit, phase = life["unit"], life["phase"]
    revisions = life["revisions"]
    rev = 0
    authors, benefit = revisions[0]
    events = [submitted(iid, unit, campaign=campaign, phase=phase, authors=authors, benefit=benefit)]
    outcome: str | None = None
    verified: int | None = None
    for seq, (out, ver) in enumerate(life["decisions"], start=1):
        events.append(
            reviewed(
                iid, unit, out, seq, campaign=campaign, phase=phase, authors=authors, benefit=benefit, verified=ver
            )
        )
        outcome, verified = out, ver
        if out == "revision" and rev + 1 < len(revisions):
            rev += 1
            authors, benefit = revisions[rev]
            events.append(
                submitted(iid, unit, campaign=campaign, phase=phase, authors=authors, benefit=benefit, revision=rev)
            )
    withdraw = life["withdraw"] and outcome not in ("valid", "invalid")
    if withdraw:
        events.append(withdrawn(iid, unit, campaign=campaign, phase=phase))
    value = verified if verified is not None else benefit
    return events, Truth(unit, phase, authors, not withdraw, outcome, value if outcome == "valid" else 0)


async def check_stream(
    app: FastAPI, client: httpx.AsyncClient, lives: list[dict[str, Any]], data: st.DataObject
) -> None:
    campaign = "C" + uuid.uuid4().hex[:8]  # each example counts in its own campaign
    events: list[Envelope] = []
    truths: list[Truth] = []
    for life in lives:
        evs, truth = lifecycle(campaign, life)
        events += evs
        truths.append(truth)
    dupes = data.draw(st.lists(st.sampled_from(events), max_size=len(events)), label="duplicates")
    stream = data.draw(st.permutations(events + dupes), label="order")
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=4), label="cuts"))
    moves = data.draw(st.lists(st.tuples(st.integers(0, 4), st.sampled_from(MOVES)), max_size=3), label="moves")
    # The tree as planned (an earlier example may have moved units), then units move between the batches.
    assert (await client.put("/api/v1/units", json=TREE, headers=OP)).status_code == 200
    parent = dict(PARENT)
    bus = app.state.ctx.bus
    start = 0
    for k, cut in enumerate([*cuts, len(stream)]):
        if stream[start:cut]:
            await bus.publish(stream[start:cut])
        start = cut
        for code, new_parent in [m for when, m in moves if when == k]:
            unit = next(u for u in TREE if u["code"] == code) | {"parent_code": new_parent}
            assert (await client.put("/api/v1/units", json=[unit], headers=OP)).status_code == 200, unit
            parent[code] = new_parent
    # A late redelivery of everything changes nothing.
    await bus.publish(stream[: len(stream) // 3])
    for unit in [u["code"] for u in TREE]:
        for phase in (None, "P1", "P2"):
            params = {"campaign": campaign} | ({"phase": phase} if phase else {})
            got = (await client.get(f"/api/v1/tally/units/{unit}", params=params, headers=OP)).json()["figures"]
            want = model(truths, unit, phase, parent)
            assert {k: got[k] for k in want} == want, (unit, phase)
    assert await verify(app.state.ctx.engine) == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lives=st.lists(life_st, min_size=1, max_size=12),
    data=st.data(),
)
async def test_random_streams_match_the_model(
    planned: tuple[FastAPI, httpx.AsyncClient], lives: list[dict[str, Any]], data: st.DataObject
) -> None:
    await check_stream(*planned, lives, data)


@pytest.mark.integration
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lives=st.lists(life_st, min_size=1, max_size=12),
    data=st.data(),
)
async def test_random_streams_match_the_model_on_postgresql(
    planned_pg: tuple[FastAPI, httpx.AsyncClient], lives: list[dict[str, Any]], data: st.DataObject
) -> None:
    """The same property through the PostgreSQL path (arrays, ``unnest`` upserts, the members' rows merged in SQL)."""
    await check_stream(*planned_pg, lives, data)
