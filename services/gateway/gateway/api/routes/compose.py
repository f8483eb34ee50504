"""Views composed from several services. A part that is down or slow is named in ``missing``.

Every part shares one time budget (``compose_budget_s``, 1.5 s by default), so a view answers in
bounded time whatever its collaborators do. The initiative view needs intake's record: without
it there is nothing to show, so it answers 503 in the error shape instead of an empty 200.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from gateway.adapters.downstream import DownstreamUnavailable
from gateway.api.deps import ContextDep, PrincipalDep, admit
from gateway.api.routes.proxy import forward_headers, proxy, unavailable
from gateway.context import GatewayContext
from shared.auth import Principal
from shared.http import JsonResponse

router = APIRouter(tags=["composed"])


class Part:
    """One downstream call of a composed view, bounded by the view's deadline."""

    def __init__(self, ctx: GatewayContext, request: Request, deadline: float) -> None:
        self.ctx = ctx
        self.request = request
        self.deadline = deadline

    def remaining(self) -> float:
        return max(0.01, self.deadline - asyncio.get_running_loop().time())

    async def get(self, service: str, path: str, params: dict[str, Any] | None = None) -> httpx.Response | None:
        """The response, or None when the service is down, slow or failing (5xx)."""
        timeout = self.remaining()
        try:
            resp = await asyncio.wait_for(
                self.ctx.downstreams[service].request(
                    "GET",
                    path,
                    params={k: v for k, v in (params or {}).items() if v is not None},
                    headers=forward_headers(self.request, with_auth=True),
                    timeout_s=timeout,
                ),
                timeout,
            )
        except (DownstreamUnavailable, TimeoutError):
            return None
        if resp.status_code >= 500:
            return None
        return resp


def segment(value: str) -> str:
    """A path segment of a downstream call, whatever the caller put in it (a ``?`` or ``/`` stays inside)."""
    return quote(str(value), safe="")


def _json(resp: httpx.Response | None) -> Any:
    if resp is None or resp.status_code != 200:
        return None
    try:
        return resp.json()
    except ValueError:
        return None


def _deadline(ctx: GatewayContext) -> float:
    return asyncio.get_running_loop().time() + ctx.settings.compose_budget_s


async def _gather(*aws: Awaitable[httpx.Response | None]) -> list[httpx.Response | None]:
    return list(await asyncio.gather(*aws))


def _note_missing(ctx: GatewayContext, view: str, missing: list[str]) -> None:
    for part in missing:
        ctx.metrics.composed_missing.labels(view, part).inc()


@router.get("/api/v1/initiatives/{initiative_id}", response_model=None)
async def initiative_view(initiative_id: str, request: Request, ctx: ContextDep) -> Response:
    """One initiative with its review (decisions visible to the caller), appraisal and its authors' awards."""
    try:
        uuid.UUID(initiative_id)
    except ValueError:
        return await proxy(request, ctx, "intake")  # not an id: some other intake path

    await admit(request, ctx, public=False)
    part = Part(ctx, request, _deadline(ctx))
    review_task = asyncio.create_task(part.get("review", f"/api/v1/review/items/{initiative_id}"))
    try:
        record_resp = await part.get("intake", f"/api/v1/initiatives/{initiative_id}")
    except BaseException:
        review_task.cancel()
        raise
    if record_resp is None:
        review_task.cancel()
        raise unavailable(DownstreamUnavailable("intake", "unavailable"))
    if record_resp.status_code != 200:
        review_task.cancel()
        # intake decides scope and existence (401/403/404): relay its answer unchanged.
        return Response(
            record_resp.content,
            record_resp.status_code,
            media_type=record_resp.headers.get("content-type", "application/json"),
        )
    record: dict[str, Any] = record_resp.json()
    missing: list[str] = []
    members = sorted({a.get("member_id") for a in record.get("authors") or [] if a.get("member_id")})
    award_resps = await _gather(
        *(part.get("awards", "/api/v1/awards", {"campaign": record.get("campaign"), "member": m}) for m in members[:20])
    )
    review_resp = await review_task
    view = dict(record)
    view["review"] = None
    view["decisions"] = []
    view["appraisal"] = None
    if review_resp is None:
        missing.append("review")
    elif review_resp.status_code == 200:
        item = review_resp.json()
        decisions = sorted(item.get("decisions") or [], key=lambda d: d.get("decision_seq") or 0)
        view["decisions"] = decisions
        if decisions:
            last = decisions[-1]
            view["review"] = {k: last.get(k) for k in ("outcome", "reason", "note", "decided_at", "decision_seq")}
        view["review_status"] = item.get("status")
        view["appraisal"] = item.get("appraisal")
    awards: dict[str, Any] = {}
    if any(r is None for r in award_resps):
        missing.append("awards")
    for resp in award_resps:
        for award in (_json(resp) or {}).get("items", []):
            awards[str(award.get("id"))] = award
    view["awards"] = list(awards.values())
    view["missing"] = missing
    _note_missing(ctx, "initiative", missing)
    return JsonResponse(view)


def _competition_rank(rows: list[tuple[str, float]], code: str) -> int | None:
    """Rank of ``code`` by value, equal values sharing a rank ("1, 2, 2, 4")."""
    ordered = sorted(rows, key=lambda r: (-r[1], r[0]))
    rank = 0
    previous: float | None = None
    for i, (c, v) in enumerate(ordered, start=1):
        if v != previous:
            rank, previous = i, v
        if c == code:
            return rank
    return None


@router.get("/api/v1/units/{code}/overview")
async def unit_overview(
    code: str,
    request: Request,
    ctx: ContextDep,
    principal: PrincipalDep,
    campaign: str = Query(..., min_length=1, max_length=64),
    phase: str | None = Query(None, max_length=64),
) -> JsonResponse:
    """A unit's figures against quota, its children, its rank among siblings, milestones and awards."""
    part = Part(ctx, request, _deadline(ctx))
    params = {"campaign": campaign, "phase": phase}
    tally_resp, unit_resp, milestones_resp, awards_resp = await _gather(
        part.get("tally", f"/api/v1/tally/units/{segment(code)}", params),
        part.get("tally", f"/api/v1/units/{segment(code)}"),
        part.get("tally", "/api/v1/tally/milestones", {"campaign": campaign}),
        part.get("awards", "/api/v1/awards", {"campaign": campaign, "unit": code}),
    )
    missing: list[str] = []
    if tally_resp is not None and tally_resp.status_code in (401, 403, 404):
        # tally owns scope and existence of units: relay its refusal unchanged.
        return JsonResponse(tally_resp.json(), tally_resp.status_code)
    figures = _json(tally_resp)
    unit = _json(unit_resp)
    view: dict[str, Any] = {"unit": None, "campaign": campaign, "phase": phase, "figures": None, "children": []}
    if figures is None:
        missing.append("tally")
    else:
        view["unit"] = figures.get("unit")
        view["figures"] = figures.get("figures")
        view["children"] = figures.get("children") or []
    if unit is not None:
        view["unit"] = {**(view["unit"] or {}), **{k: v for k, v in unit.items() if k != "children"}}
    view["rank_among_siblings"] = None
    parent = (unit or {}).get("parent_code")
    if figures is not None and parent:
        parent_figures = _json(await part.get("tally", f"/api/v1/tally/units/{segment(parent)}", params))
        if parent_figures is not None:
            rows = [
                (str(c["unit"]["code"]), float((c.get("figures") or {}).get("valid") or 0))
                for c in parent_figures.get("children") or []
            ]
            view["rank_among_siblings"] = {
                "metric": "valid",
                "rank": _competition_rank(rows, code),
                "of": len(rows),
                "parent_code": parent,
            }
        # A unit_admin of this unit may not read its parent: no rank then, and nothing is missing.
    milestones = _json(milestones_resp)
    if milestones is None:
        if "tally" not in missing:
            missing.append("tally")
        view["milestones"] = []
    else:
        items = milestones.get("items") or []
        view["milestones"] = sorted(items, key=lambda m: m.get("n") or 0, reverse=True)[:5]
    awards = _json(awards_resp)
    if awards is None:
        missing.append("awards")
    view["awards"] = (awards or {}).get("items", [])
    view["missing"] = missing
    _note_missing(ctx, "unit_overview", missing)
    return JsonResponse(view)


def _me_parts(principal: Principal) -> list[str]:
    parts = ["unit"]
    if principal.member_id:
        parts.append("awards")
    if principal.has("reviewer", "appraiser", "operator"):
        parts.append("review_stats")
    return parts


@router.get("/api/v1/me")
async def me(request: Request, ctx: ContextDep, principal: PrincipalDep) -> JsonResponse:
    """Who the caller is, their unit, their awards (members) and their review queue (reviewers)."""
    part = Part(ctx, request, _deadline(ctx))
    wanted = _me_parts(principal)
    calls: dict[str, Awaitable[httpx.Response | None]] = {}
    if principal.unit:
        calls["unit"] = part.get("tally", f"/api/v1/units/{segment(principal.unit)}")
    if "awards" in wanted:
        calls["awards"] = part.get("awards", "/api/v1/awards", {"member": principal.member_id})
    if "review_stats" in wanted:
        calls["review_stats"] = part.get("review", "/api/v1/review/stats")
    results = dict(zip(calls, await _gather(*calls.values()), strict=True))
    view: dict[str, Any] = {
        "sub": principal.sub,
        "name": principal.name,
        "roles": sorted(principal.roles),
        "unit_code": principal.unit,
        "member_id": principal.member_id,
        "unit": None,
    }
    missing: list[str] = []
    service_of = {"unit": "tally", "awards": "awards", "review_stats": "review"}
    for key, resp in results.items():
        if resp is None:
            missing.append(service_of[key])
            continue
        data = _json(resp)
        if key == "unit":
            view["unit"] = {k: v for k, v in (data or {}).items() if k != "children"} or None
        elif key == "awards":
            view["awards"] = (data or {}).get("items", [])
        else:
            view["review_stats"] = data
    view["missing"] = missing
    _note_missing(ctx, "me", missing)
    return JsonResponse(view)
