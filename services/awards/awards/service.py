"""Awards' use cases (SPEC §5, §8, §9): schemes, nominations, decisions, revocations, reads and exports.

They read and write through ``awards.adapters`` and refuse with ``awards.domain.errors`` (no HTTP here;
``awards.api.errors`` maps the refusals).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, Unpack

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from awards import export
from awards.adapters import store
from awards.adapters.inputs import member_inputs, snapshot_meta, unit_inputs
from awards.adapters.tally_client import TallyClient
from awards.domain.decisions import Approval, check_revocation, chosen, nominations_to_decide, recipient_key
from awards.domain.errors import AwardNotFound, Invalid, SchemeNotFound
from awards.domain.schemes import (
    Scheme,
    canonical,
    check_scheme,
    collective_candidates,
    individual_candidates,
    nominate,
    scheme_digest,
)
from shared.auth import Principal
from shared.service import ServiceContext


def scheme_out(code: str, scheme: Scheme) -> dict[str, Any]:
    return {"code": code, **scheme.model_dump(mode="json", exclude_none=False)}


def award_out(r: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.id,
        "scheme": r.scheme_code,
        "campaign": r.campaign,
        "recipient_kind": r.recipient_kind,
        "recipient": orjson.loads(r.recipient),
        "unit_code": r.unit_code,
        "figures": orjson.loads(r.figures),
        "rank": r.rank,
        "snapshot_id": r.snapshot_id,
        "decision_no": r.decision_no,
        "signed_on": r.signed_on,
        "revoked": r.revoke_no is not None,
    }
    if r.revoke_no is not None:
        out["revocation"] = {"decision_no": r.revoke_no, "reason": r.revoke_reason, "revoked_on": r.revoked_on}
    return out


async def _scheme(session: AsyncSession, code: str) -> Scheme:
    body = await store.scheme_body(session, code)
    if body is None:
        raise SchemeNotFound()
    return Scheme.model_validate(orjson.loads(body))


# ---- schemes -------------------------------------------------------------------------------------


async def save_scheme(session: AsyncSession, code: str, scheme: Scheme) -> dict[str, Any]:
    """Create or replace a scheme; its campaign's phases are checked when the replica knows the campaign."""
    row = {"code": code, "body": canonical(scheme.model_dump(mode="json")).decode(), "updated_at": datetime.now(UTC)}
    async with session.begin():
        check_scheme(scheme, await store.campaign_phases(session, scheme.campaign))
        await store.save_scheme(session, row)
    return scheme_out(code, scheme)


async def list_schemes(session: AsyncSession, campaign: str | None) -> dict[str, Any]:
    async with session.begin():
        stored = await store.scheme_bodies(session)
    items = [scheme_out(code, Scheme.model_validate(orjson.loads(body))) for code, body in stored]
    if campaign is not None:
        items = [i for i in items if i["campaign"] == campaign]
    return {"items": items}


async def get_scheme(session: AsyncSession, code: str) -> dict[str, Any]:
    async with session.begin():
        return scheme_out(code, await _scheme(session, code))


# ---- nominations and decisions -------------------------------------------------------------------


async def compute_nominations(
    session: AsyncSession,
    tally: TallyClient,
    code: str,
    snapshot_id: str,
    authorization: str | None,
    operator: Principal,
) -> bytes:
    """Rank the scheme's candidates from a snapshot's frozen figures; the run is kept (its canonical JSON)."""
    async with session.begin():
        scheme = await _scheme(session, code)
    meta = await snapshot_meta(session, tally, snapshot_id, authorization)
    if meta["campaign"] != scheme.campaign or meta["phase"] != scheme.phase:
        raise Invalid(
            "Bản chốt số liệu không cùng đợt thi đua với hình thức khen thưởng",
            [{"field": "snapshot_id", "message": "Bản chốt thuộc chiến dịch/giai đoạn khác"}],
        )
    if scheme.recipient == "collective":
        assert scheme.unit_kind is not None
        candidates = collective_candidates(
            await unit_inputs(session, tally, snapshot_id, scheme.unit_kind, authorization)
        )
    else:
        members = await member_inputs(session, snapshot_id, scheme.campaign, scheme.phase, meta["taken_at"])
        candidates = individual_candidates(members)
    async with session.begin():
        items = nominate(scheme, candidates, await store.active_recipients(session, code))
        result = {
            "scheme": code,
            "snapshot_id": snapshot_id,
            "campaign": scheme.campaign,
            "phase": scheme.phase,
            "taken_at": meta["taken_at"].isoformat(),
            "recipient_kind": scheme.recipient,
            "scheme_digest": scheme_digest(scheme),
            "items": items,
        }
        raw = canonical(result)
        await store.add_nomination_run(
            session,
            {
                "scheme_code": code,
                "snapshot_id": snapshot_id,
                "body": raw.decode(),
                "created_by": operator.sub,
                "created_at": datetime.now(UTC),
            },
        )
    return raw


async def decide(
    session: AsyncSession,
    ctx: ServiceContext,
    code: str,
    *,
    decision_no: str,
    signed_on: date,
    approve: Approval,
    operator: Principal,
) -> dict[str, Any]:
    """Grant the approved recipients of the scheme's latest nominations (those already awarded are skipped),
    staging ``award.granted.v1`` for each."""
    granted: list[dict[str, Any]] = []
    async with session.begin():
        scheme = await _scheme(session, code)
        await store.lock_scheme(session, code)
        run = await store.latest_nomination_run(session, code)
        nominated = nominations_to_decide(None if run is None else orjson.loads(run.body), scheme_digest(scheme))
        approved = chosen(nominated["items"], approve)
        awarded = await store.active_recipients(session, code)
        now = datetime.now(UTC)
        for item in approved:
            key = recipient_key(item["recipient"])
            if key in awarded:
                continue
            award_id = str(uuid.uuid4())
            await store.add_award(
                session,
                {
                    "id": award_id,
                    "scheme_code": code,
                    "campaign": scheme.campaign,
                    "recipient_kind": scheme.recipient,
                    "recipient_key": key,
                    "recipient": canonical(item["recipient"]).decode(),
                    "unit_code": item.get("unit_code"),
                    "figures": canonical(item["figures"]).decode(),
                    "rank": item["rank"],
                    "snapshot_id": run.snapshot_id,
                    "nomination_run_id": run.id,
                    "decision_no": decision_no,
                    "signed_on": signed_on.isoformat(),
                    "decided_by": operator.sub,
                    "granted_at": now,
                },
            )
            data = {
                "award_id": award_id,
                "scheme": code,
                "campaign": scheme.campaign,
                "recipient_kind": scheme.recipient,
                "recipient": item["recipient"],
                "figures": item["figures"],
                "decision_no": decision_no,
                "signed_on": signed_on.isoformat(),
            }
            await ctx.emit(session, ctx.event("award.granted", data))
            granted.append({"id": award_id, **{k: v for k, v in data.items() if k != "award_id"}, "revoked": False})
    return {"scheme": code, "snapshot_id": run.snapshot_id, "granted": granted}


async def export_awards(session: AsyncSession, code: str, file_format: str) -> bytes:
    """The scheme's awards (revoked ones marked) as an XLSX or CSV file."""
    async with session.begin():
        scheme = await _scheme(session, code)
        rows = await store.export_rows(session, code)
    return await export.awards_file(file_format, scheme.recipient, f"{scheme.name} — {scheme.campaign}", rows)


# ---- awards --------------------------------------------------------------------------------------


async def find_awards(session: AsyncSession, **filters: Unpack[store.AwardFilters]) -> dict[str, Any]:
    async with session.begin():
        rows = await store.find_awards(session, **filters)
    return {"items": [award_out(r) for r in rows]}


async def get_award(session: AsyncSession, award_id: str) -> dict[str, Any]:
    async with session.begin():
        row = await store.award(session, award_id)
    if row is None:
        raise AwardNotFound()
    return award_out(row)


async def revoke(
    session: AsyncSession,
    ctx: ServiceContext,
    award_id: str,
    *,
    decision_no: str,
    reason: str,
    revoked_on: date,
    operator: Principal,
) -> dict[str, Any]:
    """Revoke an award (the only correction of one), staging ``award.revoked.v1``."""
    async with session.begin():
        row = await store.award(session, award_id)
        if row is None:
            raise AwardNotFound()
        check_revocation(row.revoke_no is not None, row.signed_on, revoked_on)
        await store.add_revocation(
            session,
            {
                "award_id": award_id,
                "decision_no": decision_no,
                "reason": reason,
                "revoked_on": revoked_on.isoformat(),
                "revoked_by": operator.sub,
                "revoked_at": datetime.now(UTC),
            },
        )
        data = {
            "award_id": award_id,
            "scheme": row.scheme_code,
            "campaign": row.campaign,
            "recipient_kind": row.recipient_kind,
            "recipient": orjson.loads(row.recipient),
            "decision_no": decision_no,
            "reason": reason,
            "revoked_on": revoked_on.isoformat(),
        }
        await ctx.emit(session, ctx.event("award.revoked", data))
        row = await store.award(session, award_id)
    return award_out(row)
