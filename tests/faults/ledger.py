"""The ledger client of the fault tests: it submits a burst of initiatives through the gateway (single and
batch, every request with an Idempotency-Key, retried until it has an answer), decides some of them, and
writes down what was accepted and decided. After a fault, the system must agree with it exactly.

Every loop is bounded in attempts and in time; a request that never got an answer is settled at the end,
by sending it again with its key once the system is back.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from shared.testing import auth
from tests.flow import one_phase_campaign

PROVINCES = ("TH", "HN")
DISTRICTS_PER_PROVINCE = 2
GRASSROOTS_PER_DISTRICT = 3
MEMBERS = 400


def plan_units() -> list[dict[str, Any]]:
    units: list[dict[str, Any]] = [
        {"code": "VN", "name": "Tổng LĐLĐ Việt Nam", "kind": "national", "parent_code": None}
    ]
    for p in PROVINCES:
        units.append({"code": p, "name": f"LĐLĐ {p}", "kind": "province", "parent_code": "VN", "cluster": "C1"})
        for d in range(1, DISTRICTS_PER_PROVINCE + 1):
            district = f"{p}-{d:02d}"
            units.append({"code": district, "name": f"LĐLĐ {district}", "kind": "district", "parent_code": p})
            for g in range(1, GRASSROOTS_PER_DISTRICT + 1):
                units.append(
                    {
                        "code": f"{district}-{g:03d}",
                        "name": f"CĐCS {district}-{g:03d}",
                        "kind": "grassroots",
                        "parent_code": district,
                        "member_count": 100,
                    }
                )
    return units


def ancestors(code: str) -> list[str]:
    """The unit and every ancestor (codes are built as VN > TH > TH-01 > TH-01-001)."""
    parts = code.split("-")
    return ["VN", *("-".join(parts[:n]) for n in range(1, len(parts) + 1))]


@dataclass
class Initiative:
    body: dict[str, Any]
    key: str
    id: str | None = None
    outcome: str | None = None  # valid | invalid, once a decision was accepted
    verified_benefit_vnd: int | None = None


@dataclass
class Ledger:
    client: httpx.AsyncClient
    run: str
    campaign: str
    total: int = 3000
    batch_size: int = 100
    singles: int = 10  # single submissions after each batch
    rate_per_s: float = 150.0  # pace: the burst lasts long enough for a fault to land in the middle of it
    decide_share: float = 0.35
    request_budget_s: float = 150.0
    items: list[Initiative] = field(default_factory=list)
    statuses: list[tuple[float, int]] = field(default_factory=list)  # every answer: (monotonic time, status)
    unexpected: list[str] = field(default_factory=list)
    unanswered: list[tuple[str, Initiative | list[Initiative]]] = field(default_factory=list)
    retries: int = 0
    replays_checked: int = 0
    last_accept_at: float = 0.0

    def __post_init__(self) -> None:
        self.support = auth("support", "VN", sub=f"support-{self.run}")
        self.reviewer = auth("reviewer", "VN", sub=f"reviewer-{self.run}", member_id="R-0000")
        self.operator = auth("operator", "VN", sub=f"operator-{self.run}")
        self.rng = random.Random(self.run)
        grassroots = [u["code"] for u in plan_units() if u["kind"] == "grassroots"]
        today = date.today()
        for n in range(self.total):
            authors = self.rng.sample(range(MEMBERS), self.rng.choice((1, 1, 1, 2, 3)))
            body = {
                "campaign": self.campaign,
                "unit_code": self.rng.choice(grassroots),
                "field": "production",
                "title": f"Sáng kiến {self.run} số {n}: cải tiến quy trình {self.rng.randrange(10**6)}",
                "problem": "Công đoạn thủ công mất nhiều thời gian.",
                "solution": f"Giải pháp {n} của lần chạy {self.run}.",
                "effect": "Giảm thời gian thực hiện.",
                "expected_benefit_vnd": self.rng.randrange(0, 50_000_000, 1000),
                "applied_on": (today - timedelta(days=10)).isoformat(),
                "confidential": False,
                "authors": [{"member_id": f"M-{a:04d}", "full_name": f"Đoàn viên {a}"} for a in authors],
            }
            self.items.append(Initiative(body, f"{self.run}-i{n}"))

    # ---- requests ------------------------------------------------------------------------------------

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """The first answer that is not an outage's (503, no connection, a timeout), within the budget."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_budget_s
        delay = 0.2
        while loop.time() < deadline:
            try:
                resp = await self.client.request(method, path, **kwargs)
            except httpx.TransportError:
                resp = None
            if resp is not None:
                self.statuses.append((time.monotonic(), resp.status_code))
                if resp.status_code != 503:
                    return resp
            self.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        return None

    async def submit_single(self, item: Initiative) -> None:
        headers = {**self.support, "Idempotency-Key": item.key}
        resp = await self._send("POST", "/api/v1/initiatives", json=item.body, headers=headers)
        if resp is None:
            self.unanswered.append(("single", item))
            return
        if resp.status_code not in (200, 201):
            self.unexpected.append(f"single {item.key}: {resp.status_code} {resp.text[:300]}")
            return
        got = resp.json()["id"]
        if item.id is not None and item.id != got:
            self.unexpected.append(f"single {item.key}: replay answered {got}, first answer was {item.id}")
        item.id = got
        self.last_accept_at = time.monotonic()

    async def submit_batch(self, items: list[Initiative]) -> None:
        headers = {**self.support, "Idempotency-Key": f"{items[0].key}-batch"}
        body = {"items": [i.body for i in items]}
        resp = await self._send("POST", "/api/v1/initiatives/batch", json=body, headers=headers)
        if resp is None:
            self.unanswered.append(("batch", items))
            return
        if resp.status_code != 200:
            self.unexpected.append(f"batch {items[0].key}: {resp.status_code} {resp.text[:300]}")
            return
        for item, result in zip(items, resp.json()["items"], strict=True):
            if "id" not in result:
                self.unexpected.append(f"batch item {item.key}: {result}")
                continue
            if item.id is not None and item.id != result["id"]:
                self.unexpected.append(f"batch item {item.key}: replay answered another id")
            item.id = result["id"]
        self.last_accept_at = time.monotonic()

    # ---- the load --------------------------------------------------------------------------------------

    def _requests(self) -> list[Initiative | list[Initiative]]:
        """A batch of ``batch_size``, then ``singles`` single submissions, and again."""
        out: list[Initiative | list[Initiative]] = []
        n = 0
        while n < len(self.items):
            out.append(self.items[n : n + self.batch_size])
            n += self.batch_size
            out.extend(self.items[n : n + self.singles])
            n += self.singles
        return out

    async def submit_all(self, workers: int = 6) -> None:
        queue: asyncio.Queue[Initiative | list[Initiative]] = asyncio.Queue()
        for request in self._requests():
            queue.put_nowait(request)
        started = time.monotonic()
        sent = 0

        async def worker() -> None:
            nonlocal sent
            while not queue.empty():
                request = queue.get_nowait()
                count = len(request) if isinstance(request, list) else 1
                # Pace: the n-th initiative leaves no earlier than n / rate seconds after the start.
                wait = started + sent / self.rate_per_s - time.monotonic()
                sent += count
                if wait > 0:
                    await asyncio.sleep(wait)
                if isinstance(request, list):
                    await self.submit_batch(request)
                else:
                    await self.submit_single(request)
                    if self.rng.random() < 0.1 and request.id is not None:
                        await self.submit_single(request)  # a client retrying a request that did succeed
                        self.replays_checked += 1

        await asyncio.gather(*(worker() for _ in range(workers)))

    async def decide_some(self, submitting: asyncio.Task[None], time_limit_s: float = 240.0) -> None:
        """Claim and decide until ``decide_share`` of the initiatives are decided (after the burst ends, too)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + time_limit_s
        by_id: dict[str, Initiative] = {}
        while loop.time() < deadline:
            target = int(self.total * self.decide_share)
            decided = sum(1 for i in self.items if i.outcome is not None)
            if decided >= target:
                return
            resp = await self._send("POST", "/api/v1/review/claims", json={"count": 50}, headers=self.reviewer)
            if resp is None or resp.status_code != 200:
                if resp is not None:
                    self.unexpected.append(f"claim: {resp.status_code} {resp.text[:300]}")
                await asyncio.sleep(1)
                continue
            claimed = resp.json()["items"]
            if not claimed:
                await asyncio.sleep(0.5 if not submitting.done() else 1.0)
                continue
            for item in self.items:
                if item.id is not None:
                    by_id[item.id] = item
            decisions = []
            for c in claimed:
                item = by_id.get(c["initiative_id"])
                if item is None or item.outcome is not None:
                    continue  # accepted by a request whose answer has not come back yet: left pending
                outcome = "valid" if self.rng.random() < 0.7 else "invalid"
                verified = (
                    self.rng.randrange(0, 10_000_000, 1000) if outcome == "valid" and self.rng.random() < 0.3 else None
                )
                decisions.append(
                    {
                        "initiative_id": item.id,
                        "outcome": outcome,
                        "reason": "incomplete" if outcome == "invalid" else None,
                        "verified_benefit_vnd": verified,
                    }
                )
            if decisions:
                await self._decide(decisions, by_id)

    async def _decide(self, decisions: list[dict[str, Any]], by_id: dict[str, Initiative]) -> None:
        resp = await self._send(
            "POST", "/api/v1/review/decisions/batch", json={"decisions": decisions}, headers=self.reviewer
        )
        if resp is None or resp.status_code != 200:
            self.unexpected.append(f"decisions: {resp.status_code if resp else 'no answer'}")
            return
        for d, result in zip(decisions, resp.json()["items"], strict=True):
            # already_decided: the same decision, answered once already (the answer was lost on the way back).
            if result["status"] == 200 or result.get("error", {}).get("code") == "already_decided":
                item = by_id[d["initiative_id"]]
                item.outcome = d["outcome"]
                item.verified_benefit_vnd = d["verified_benefit_vnd"]
                self.last_accept_at = time.monotonic()
            else:
                self.unexpected.append(f"decision {d['initiative_id']}: {result}")

    async def settle(self) -> None:
        """Send again, with their keys, the requests that never got an answer (the system is back by now)."""
        pending, self.unanswered = self.unanswered, []
        for kind, request in pending:
            if kind == "batch":
                await self.submit_batch(request)  # type: ignore[arg-type]
            else:
                await self.submit_single(request)  # type: ignore[arg-type]

    # ---- what the system must show -----------------------------------------------------------------

    @property
    def accepted(self) -> list[Initiative]:
        return [i for i in self.items if i.id is not None]

    def expected_figures(self) -> dict[str, dict[str, int]]:
        """Per unit (each subtree): submitted, valid, invalid, pending, participants, benefit_vnd."""
        sums: dict[str, Counter[str]] = {}
        members: dict[str, set[str]] = {}
        for item in self.accepted:
            for code in ancestors(item.body["unit_code"]):
                c = sums.setdefault(code, Counter())
                c["submitted"] += 1
                if item.outcome == "valid":
                    c["valid"] += 1
                    benefit = item.verified_benefit_vnd
                    c["benefit_vnd"] += item.body["expected_benefit_vnd"] if benefit is None else benefit
                elif item.outcome == "invalid":
                    c["invalid"] += 1
                members.setdefault(code, set()).update(a["member_id"] for a in item.body["authors"])
        out: dict[str, dict[str, int]] = {}
        for unit in plan_units():
            code = unit["code"]
            c = sums.get(code, Counter())
            out[code] = {
                "submitted": c["submitted"],
                "valid": c["valid"],
                "invalid": c["invalid"],
                "pending": c["submitted"] - c["valid"] - c["invalid"],
                "participants": len(members.get(code, ())),
                "benefit_vnd": c["benefit_vnd"],
            }
        return out

    def bad_statuses(self, windows: list[tuple[float, float]]) -> list[tuple[float, int]]:
        """Answers ≥ 500 other than a 503 inside one of the outage ``windows``."""

        def in_outage(t: float) -> bool:
            return any(a <= t <= b for a, b in windows)

        return [(t, s) for t, s in self.statuses if s >= 500 and not (s == 503 and in_outage(t))]


async def plan_campaign(client: httpx.AsyncClient, operator: dict[str, str], code: str) -> None:
    """The units (again: an upsert) and one campaign of the run."""
    r = await client.put("/api/v1/units", json=plan_units(), headers=operator)
    assert r.status_code == 200, r.text
    campaign = one_phase_campaign(date.today(), milestones=(1000, 100000))
    r = await client.put(f"/api/v1/campaigns/{code}", json=campaign, headers=operator)
    assert r.status_code == 200, r.text
