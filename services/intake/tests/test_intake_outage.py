"""Issue 14: while PostgreSQL is unreachable, submissions answer 503 (never 500), and intake takes them
again as soon as it is back (the group-commit writer outlives the outage). The outage is a cut TCP proxy;
the server is shared and keeps running."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.tcpproxy import proxy_for
from shared.testing import pg_database

pytestmark = pytest.mark.integration


async def test_single_and_batch_submissions_answer_503_during_an_outage_and_201_after(kit: Any) -> None:
    async with (
        pg_database() as url,
        proxy_for(url, 5432) as proxy,
        kit.world_on(proxy.url(url)) as w,
        asyncio.timeout(120),  # a request that never answers (the writer gone) fails the test instead of hanging it
    ):
        first = await w.client.post("/api/v1/initiatives", json=kit.body(title="Trước sự cố"), headers=kit.member())
        assert first.status_code == 201

        await proxy.cut()
        for n in range(3):  # the writer's own connections are gone; each attempt must answer, and answer 503
            r = await w.client.post(
                "/api/v1/initiatives", json=kit.body(title=f"Trong sự cố {n}"), headers=kit.member()
            )
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "unavailable"
        batch = {"items": [kit.body(title=f"Lô trong sự cố {i}") for i in range(3)]}
        r = await w.client.post("/api/v1/initiatives/batch", json=batch, headers=kit.support("TH"))
        assert r.status_code == 503, r.text

        await proxy.restore()
        answers = []
        for n in range(3):  # pooled connections are checked first (pre-ping); the writer connects afresh
            r = await w.client.post("/api/v1/initiatives", json=kit.body(title=f"Sau sự cố {n}"), headers=kit.member())
            answers.append(r.status_code)
        assert answers[0] in (201, 503) and answers[1:] == [201, 201], answers
        r = await w.client.post("/api/v1/initiatives/batch", json=batch, headers=kit.support("TH"))
        assert r.status_code == 200 and r.json()["accepted"] == 3
