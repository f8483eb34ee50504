"""Tally's business signals for operators (issue 17): the campaign's pace and progress per province.

- ``sangkien_tally_initiatives_submitted_total{province}`` and
  ``sangkien_tally_initiatives_decided_total{province, outcome}``: counted as tally counts them (after
  the inbox, so a redelivered event is not counted twice); Prometheus makes rates per minute of them.
- ``sangkien_tally_province_{submitted,valid,quota}_initiatives{campaign, province}``: each province's
  (and national sector union's) figures against its quota, read every ``tally.runtime.PROGRESS_INTERVAL_S``.
- ``sangkien_tally_campaign_phase_open{campaign, phase}``: 1 while a phase takes submissions (its dates,
  inclusive, in Asia/Ho_Chi_Minh), so an alert can tell a quiet night in an open phase from a closed one.

"Province" is the unit right under the national root: a province or a national sector union.
"""

from __future__ import annotations

import dataclasses
from collections import Counter as Tally
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.envelope import Envelope
from shared.instants import LOCAL_TZ
from shared.metrics import ServiceMetrics
from tally.adapters import queries
from tally.adapters.orm import campaigns, units

PROVINCE_KINDS = ("province", "sector")


@dataclasses.dataclass
class BusinessMetrics:
    submitted: Counter
    decided: Counter
    province_submitted: Gauge
    province_valid: Gauge
    province_quota: Gauge
    phase_open: Gauge
    provinces: dict[str, str] = dataclasses.field(default_factory=dict)  # unit code -> province code

    @classmethod
    def on(cls, m: ServiceMetrics) -> BusinessMetrics:
        labels = ["campaign", "province"]
        return cls(
            submitted=m.counter(
                "sangkien_tally_initiatives_submitted_total", "Initiatives submitted, counted", ["province"]
            ),
            decided=m.counter(
                "sangkien_tally_initiatives_decided_total",
                "Review decisions (valid or invalid), counted",
                ["province", "outcome"],
            ),
            province_submitted=m.gauge(
                "sangkien_tally_province_submitted_initiatives", "Initiatives submitted per province", labels
            ),
            province_valid=m.gauge(
                "sangkien_tally_province_valid_initiatives", "Valid initiatives per province", labels
            ),
            province_quota=m.gauge(
                "sangkien_tally_province_quota_initiatives", "Quota of valid initiatives per province", labels
            ),
            phase_open=m.gauge(
                "sangkien_tally_campaign_phase_open", "1 while the phase takes submissions", ["campaign", "phase"]
            ),
        )


def province_of(path: str) -> str:
    """``/VN/TH/TH-01/TH-01-001/`` -> ``TH``; a unit on the national level is its own."""
    codes = [c for c in path.split("/") if c]
    return codes[1] if len(codes) > 1 else (codes[0] if codes else "")


def phase_open(body: dict[str, Any], today: date) -> dict[str, bool]:
    """Each phase of a campaign body, and whether ``today`` lies within its dates."""
    out: dict[str, bool] = {}
    for phase in body.get("phases") or []:
        try:
            opens, closes = date.fromisoformat(phase["opens_on"]), date.fromisoformat(phase["closes_on"])
        except (KeyError, TypeError, ValueError):
            continue
        out[str(phase.get("code"))] = opens <= today <= closes
    return out


async def count_batch(session: AsyncSession, m: BusinessMetrics, envelopes: Sequence[Envelope]) -> None:
    submitted: Tally[str] = Tally()
    decided: Tally[tuple[str, str]] = Tally()
    for env in envelopes:
        if env.type == "initiative.submitted":
            submitted[str(env.data.get("unit_code"))] += 1
        elif env.type == "initiative.reviewed" and env.data.get("outcome") in ("valid", "invalid"):
            decided[(str(env.data.get("unit_code")), str(env.data["outcome"]))] += 1
    if not submitted and not decided:
        return
    wanted = {*submitted, *(u for u, _ in decided)} - m.provinces.keys()
    if wanted:
        rows = await session.execute(select(units.c.code, units.c.path).where(units.c.code.in_(sorted(wanted))))
        m.provinces.update({code: province_of(path) for code, path in rows.all()})
    for unit, n in submitted.items():
        m.submitted.labels(m.provinces.get(unit, "unknown")).inc(n)
    for (unit, outcome), n in decided.items():
        m.decided.labels(m.provinces.get(unit, "unknown"), outcome).inc(n)


async def read_progress(session: AsyncSession, m: BusinessMetrics) -> None:
    today = datetime.now(LOCAL_TZ).date()
    for code, body in (await session.execute(select(campaigns.c.code, campaigns.c.body))).all():
        for phase, is_open in phase_open(body or {}, today).items():
            m.phase_open.labels(code, phase).set(1 if is_open else 0)
        for kind in PROVINCE_KINDS:
            ranked = await queries.rankings(session, code, None, kind, None, "valid", 1000)
            for item in ranked:
                province, figures = item["unit"]["code"], item["figures"]
                m.province_submitted.labels(code, province).set(figures["submitted"])
                m.province_valid.labels(code, province).set(figures["valid"])
                m.province_quota.labels(code, province).set(figures["quota"] or 0)
