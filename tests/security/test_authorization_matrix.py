"""The authorization matrix (issue 14, item 5): every route of the gateway's merged OpenAPI × the six roles ×
four callers (in scope, out of scope, a token without ``unit``, no token), against the whole system.

One table, ``ROUTES``, says for each route who may call it (SPEC §6) and how its scope works; the expected
answer of every cell is derived from it. A route of the OpenAPI without an entry fails the test, and so does
an entry whose route no longer exists. What a cell may answer:

- allowed: anything but 401/403/404 and below 500 (a 409 or 422 says the request passed authorization);
- refused: 403 (or 404 where the service hides existence, SPEC §6);
- hidden: a listing that answers, but never shows what lies outside the caller's scope (or refuses);
- no token on a non-public route: 401.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.security.system import CALLERS, ROLES, Seeded, embedded, headers, import_csv, initiative

Request = Callable[[Seeded], dict[str, Any]]  # → keyword arguments of httpx.AsyncClient.request (url, json, ...)
Leak = Callable[[httpx.Response, Seeded], bool]

ANY = frozenset(ROLES)
PUBLIC = "public"


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    request: Request
    roles: frozenset[str] | str  # who may call it (operators always may); PUBLIC: anyone, even without a token
    # "none": the caller's unit does not matter; "deny": outside it (or without one) is refused;
    # "hide": outside it the answer never shows the Hà Nội target (see ``leak``).
    scope: str = "none"
    refused: frozenset[int] = frozenset({403})
    leak: Leak | None = None
    # A member acts on what they authored, whatever their unit: the member without ``unit`` (but with the
    # author's member_id) is then in scope too.
    by_author: bool = False


def _get(url: str, **params: Any) -> Request:
    return lambda _s: {"url": url, "params": params}


def _shows(key: str) -> Leak:
    """The answer shows the seeded Hà Nội target ``key`` (an id of ``Seeded``)."""
    return lambda r, s: r.status_code == 200 and getattr(s, key) in r.text


def _shows_code(code: str) -> Leak:
    return lambda r, _s: r.status_code == 200 and f'"{code}"' in r.text


def _claims(r: httpx.Response, s: Seeded) -> bool:
    """Leased a Hà Nội initiative (its similar earlier initiatives may name others: SPEC §3 wants them)."""
    items = (r.json().get("items") or []) if r.status_code == 200 else []
    return bool({i["initiative_id"] for i in items} & {s.initiative, s.mutable})


def _batch_accepted(r: httpx.Response, _s: Seeded) -> bool:
    body = r.json() if r.status_code == 200 else {}
    return any(item.get("status") == 200 for item in body.get("items") or []) or bool(body.get("accepted"))


def roles(*names: str) -> frozenset[str]:
    return frozenset(names)


READ_404 = frozenset({403, 404})
INTAKE_READERS = roles("support", "reviewer", "appraiser", "member")

ROUTES: list[Route] = [
    # ---- awards: public reads, operator writes
    Route("GET", "/api/v1/awards", _get("/api/v1/awards", campaign="1M"), PUBLIC),
    Route("GET", "/api/v1/awards/schemes", _get("/api/v1/awards/schemes"), PUBLIC),
    Route("GET", "/api/v1/awards/schemes/{code}", _get("/api/v1/awards/schemes/COL-1"), PUBLIC),
    Route(
        "GET", "/api/v1/awards/schemes/{code}/export", _get("/api/v1/awards/schemes/COL-1/export", format="csv"), PUBLIC
    ),
    Route("GET", "/api/v1/awards/{award_id}", lambda s: {"url": f"/api/v1/awards/{s.award}"}, PUBLIC),
    Route(
        "PUT",
        "/api/v1/awards/schemes/{code}",
        lambda _s: {
            "url": "/api/v1/awards/schemes/IND-9",
            "json": {
                "campaign": "1M",
                "phase": None,
                "name": "Cá nhân",
                "recipient": "individual",
                "rule": {"min_valid": 1},
                "order_by": ["valid"],
                "max_recipients": 5,
            },
        },
        roles("operator"),
    ),
    Route(
        "POST",
        "/api/v1/awards/schemes/{code}/nominations",
        lambda s: {"url": "/api/v1/awards/schemes/COL-1/nominations", "json": {"snapshot_id": s.snapshot}},
        roles("operator"),
    ),
    Route(
        "POST",
        "/api/v1/awards/schemes/{code}/decision",
        lambda _s: {
            "url": "/api/v1/awards/schemes/COL-1/decision",
            "json": {"decision_no": "2/QĐ", "signed_on": "2023-09-07", "approve": "all"},
        },
        roles("operator"),
    ),
    Route(
        "POST",
        "/api/v1/awards/{award_id}/revoke",
        lambda s: {
            "url": f"/api/v1/awards/{s.award}/revoke",
            "json": {"decision_no": "3/QĐ", "revoked_on": "2023-09-08", "reason": "Nhầm"},
        },
        roles("operator"),
    ),
    # ---- the plan (tally)
    Route("GET", "/api/v1/campaigns", _get("/api/v1/campaigns"), ANY),
    Route("GET", "/api/v1/campaigns/{code}", _get("/api/v1/campaigns/1M"), ANY),
    Route(
        "PUT",
        "/api/v1/campaigns/{code}",
        lambda _s: {
            "url": "/api/v1/campaigns/2M",
            "json": {
                "name": "Khác",
                "fields": [{"code": "p", "name": "P"}],
                "application_window": {"from": "2021-01-01", "to": "2030-01-01"},
                "phases": [{"code": "P1", "name": "G1", "opens_on": "2021-01-01", "closes_on": "2030-01-01"}],
            },
        },
        roles("operator"),
    ),
    Route(
        "PUT",
        "/api/v1/campaigns/{code}/quotas",
        lambda _s: {
            "url": "/api/v1/campaigns/1M/quotas",
            "json": [{"unit_code": "HN-BD", "phase": "P1", "assigned": 5}],
        },
        roles("unit_admin"),
        scope="deny",
    ),
    Route(
        "GET",
        "/api/v1/campaigns/{code}/quotas",
        _get("/api/v1/campaigns/1M/quotas", unit="HN-BD-001"),
        roles("unit_admin"),
        scope="deny",
    ),
    Route(
        "PUT",
        "/api/v1/units",
        lambda _s: {
            "url": "/api/v1/units",
            "json": [{"code": "HN-CG", "name": "Cầu Giấy", "kind": "district", "parent_code": "HN"}],
        },
        roles("operator"),
    ),
    Route(
        "POST",
        "/api/v1/units/import",
        lambda _s: {
            "url": "/api/v1/units/import",
            "files": {"file": ("u.csv", b"code,name,kind,parent_code\nHN-HK,Hoan Kiem,district,HN\n", "text/csv")},
        },
        roles("operator"),
    ),
    Route("GET", "/api/v1/units/{code}", _get("/api/v1/units/HN"), ANY),
    # The unit pickers' search, accents left out: only the caller's subtree.
    Route("GET", "/api/v1/units", _get("/api/v1/units", q="ba dinh"), ANY, scope="hide", leak=_shows_code("HN-BD-001")),
    Route(
        "GET", "/api/v1/units/{code}/overview", _get("/api/v1/units/HN-BD/overview", campaign="1M"), ANY, scope="deny"
    ),
    # ---- figures and snapshots (tally)
    Route("GET", "/api/v1/tally/milestones", _get("/api/v1/tally/milestones", campaign="1M"), PUBLIC),
    Route(
        "GET",
        "/api/v1/tally/rankings",
        _get("/api/v1/tally/rankings", campaign="1M", kind="province", metric="valid"),
        PUBLIC,
    ),
    Route("GET", "/api/v1/tally/units/{code}", _get("/api/v1/tally/units/HN", campaign="1M"), ANY, scope="deny"),
    Route(
        "GET", "/api/v1/tally/timeseries", _get("/api/v1/tally/timeseries", campaign="1M", unit="HN"), ANY, scope="deny"
    ),
    Route(
        "POST",
        "/api/v1/tally/snapshots",
        lambda _s: {"url": "/api/v1/tally/snapshots", "json": {"campaign": "1M", "phase": None}},
        roles("operator"),
    ),
    Route(
        "GET",
        "/api/v1/tally/snapshots/{snapshot_id}",
        lambda s: {"url": f"/api/v1/tally/snapshots/{s.snapshot}"},
        roles("unit_admin"),
    ),
    Route(
        "GET",
        "/api/v1/tally/snapshots/{snapshot_id}/figures",
        lambda s: {"url": f"/api/v1/tally/snapshots/{s.snapshot}/figures"},
        roles("unit_admin"),
        scope="hide",
        leak=_shows_code("HN-BD-001"),
    ),
    Route(
        "GET",
        "/api/v1/tally/snapshots/{snapshot_id}/units/{code}",
        lambda s: {"url": f"/api/v1/tally/snapshots/{s.snapshot}/units/HN"},
        ANY,
        scope="deny",
    ),
    # ---- initiatives (intake; the single read is composed by the gateway)
    Route(
        "POST",
        "/api/v1/initiatives",
        lambda _s: {"url": "/api/v1/initiatives", "json": initiative()},
        roles("member", "support"),
        scope="deny",
    ),
    Route(
        "POST",
        "/api/v1/initiatives/batch",
        lambda _s: {"url": "/api/v1/initiatives/batch", "json": {"items": [initiative()]}},
        roles("member", "support"),
        scope="hide",
        leak=_batch_accepted,
    ),
    Route(
        "GET",
        "/api/v1/initiatives",
        _get("/api/v1/initiatives", campaign="1M"),
        INTAKE_READERS,
        scope="hide",
        leak=_shows("initiative"),
        by_author=True,
    ),
    Route(
        "GET",
        "/api/v1/initiatives/{initiative_id}",
        lambda s: {"url": f"/api/v1/initiatives/{s.initiative}"},
        INTAKE_READERS,
        scope="deny",
        refused=READ_404,
        by_author=True,
    ),
    Route(
        "PATCH",
        "/api/v1/initiatives/{initiative_id}",
        lambda s: {"url": f"/api/v1/initiatives/{s.mutable}", "json": {"effect": "Hiệu quả mới"}},
        roles("member", "support"),
        scope="deny",
        refused=READ_404,
        by_author=True,
    ),
    Route(
        "POST",
        "/api/v1/initiatives/{initiative_id}/withdraw",
        lambda s: {"url": f"/api/v1/initiatives/{s.mutable}/withdraw"},
        roles("member", "support"),
        scope="deny",
        refused=READ_404,
        by_author=True,
    ),
    Route("GET", "/api/v1/me", _get("/api/v1/me"), ANY),
    # ---- imports (intake)
    Route(
        "POST",
        "/api/v1/imports",
        lambda _s: {
            "url": "/api/v1/imports",
            "data": {"campaign": "1M"},
            "files": {"file": ("x.csv", import_csv(), "text/csv")},
        },
        roles("support"),
    ),
    Route("GET", "/api/v1/imports/template.xlsx", _get("/api/v1/imports/template.xlsx"), roles("support")),
    Route(
        "GET",
        "/api/v1/imports/{job_id}/errors.xlsx",
        lambda s: {"url": f"/api/v1/imports/{s.import_job}/errors.xlsx"},
        roles("support"),
        scope="deny",
        refused=READ_404,
    ),
    Route(
        "GET",
        "/api/v1/imports/{job_id}",
        lambda s: {"url": f"/api/v1/imports/{s.import_job}"},
        roles("support"),
        scope="deny",
        refused=READ_404,
    ),
    # ---- review
    Route(
        "POST",
        "/api/v1/review/claims",
        lambda _s: {"url": "/api/v1/review/claims", "json": {"count": 5}},
        roles("reviewer"),
        scope="hide",
        leak=_claims,
    ),
    Route(
        "POST",
        "/api/v1/review/claims/release",
        lambda _s: {"url": "/api/v1/review/claims/release", "json": {}},
        roles("reviewer"),
    ),
    Route(
        "POST",
        "/api/v1/review/decisions/batch",
        lambda s: {
            "url": "/api/v1/review/decisions/batch",
            "json": {"decisions": [{"initiative_id": s.initiative, "outcome": "valid"}]},
        },
        roles("reviewer"),
        scope="hide",
        leak=_batch_accepted,
    ),
    Route(
        "POST",
        "/api/v1/review/items/{initiative_id}/decision",
        lambda s: {"url": f"/api/v1/review/items/{s.initiative}/decision", "json": {"outcome": "valid"}},
        roles("reviewer"),
        scope="deny",
    ),
    Route(
        "POST",
        "/api/v1/review/items/{initiative_id}/appraisals",
        lambda s: {
            "url": f"/api/v1/review/items/{s.initiative}/appraisals",
            "json": {"novelty": 8, "applicability": 8, "effectiveness": 8, "scope": 8},
        },
        roles("appraiser"),
        scope="deny",
    ),
    Route(
        "GET",
        "/api/v1/review/items/{initiative_id}",
        lambda s: {"url": f"/api/v1/review/items/{s.initiative}"},
        INTAKE_READERS,
        scope="deny",
    ),
    Route(
        "GET",
        "/api/v1/review/appraisals",
        _get("/api/v1/review/appraisals", unit="HN"),
        roles("appraiser"),
        scope="deny",
    ),
    Route(
        "GET",
        "/api/v1/review/items/{initiative_id}/appraisals",
        lambda s: {"url": f"/api/v1/review/items/{s.initiative}/appraisals"},
        roles("appraiser"),
        scope="deny",
    ),
    Route(
        "GET",
        "/api/v1/review/stats",
        _get("/api/v1/review/stats", unit="HN"),
        roles("reviewer", "appraiser", "unit_admin"),
        scope="deny",
    ),
    # ---- development sign-in: ENVIRONMENT=development and loopback only (the matrix runs both)
    Route("GET", "/api/v1/dev/accounts", _get("/api/v1/dev/accounts"), PUBLIC),
    Route("POST", "/api/v1/dev/token", lambda _s: {"url": "/api/v1/dev/token", "json": {"account": "member"}}, PUBLIC),
    # ---- operations
    *(
        Route(
            method,
            f"/api/v1/ops/{service}/dead-letters{suffix}",
            lambda _s, u=f"/api/v1/ops/{service}/dead-letters{suffix}": {"url": u},
            roles("operator"),
        )
        for service in ("intake", "review", "tally", "awards")
        for method, suffix in (("GET", ""), ("POST", "/replay"))
    ),
    *(
        Route("GET", f"/api/v1/ops/{service}/status", _get(f"/api/v1/ops/{service}/status"), roles("operator"))
        for service in ("intake", "review", "tally", "awards")
    ),
    Route("GET", "/api/v1/ops/tally/verify", _get("/api/v1/ops/tally/verify"), roles("operator")),
]


def expected(route: Route, role: str, caller: str) -> str:
    """ "allowed", "refused", "hidden" or "unauthorized" for one cell of the matrix."""
    if route.roles == PUBLIC:
        return "allowed"
    if caller == "no_token":
        return "unauthorized"
    if role != "operator" and role not in route.roles:
        return "refused"
    if role == "operator" or caller == "in_scope" or route.scope == "none":
        return "allowed"
    if role == "member" and route.by_author and caller == "no_unit":
        return "allowed"
    return "refused" if route.scope == "deny" else "hidden"


def verdict(route: Route, want: str, resp: httpx.Response, seeded: Seeded) -> str | None:
    """None when ``resp`` is what the cell expects, else why not."""
    status = resp.status_code
    if status >= 500:
        return f"server error {status}"
    if want == "unauthorized":
        return None if status == 401 else f"{status}, expected 401"
    if want == "allowed":
        return None if status not in (401, 403, 404) else f"{status}, expected to be allowed: {resp.text[:200]}"
    if want == "refused":
        return None if status in route.refused else f"{status}, expected {sorted(route.refused)}: {resp.text[:200]}"
    if status in route.refused:
        return None
    assert route.leak is not None, route.template
    return f"{status} and it shows what lies outside the scope: {resp.text[:200]}" if route.leak(resp, seeded) else None


async def _openapi_routes(client: httpx.AsyncClient) -> set[tuple[str, str]]:
    doc = (await client.get("/api/v1/openapi.json")).json()
    assert doc["x-missing-services"] == []
    return {
        (m.upper(), p)
        for p, item in doc["paths"].items()
        for m in item
        if m in ("get", "put", "post", "patch", "delete")
    }


def test_the_table_is_one_entry_per_route_and_every_cell_has_an_answer() -> None:
    keys = [(r.method, r.template) for r in ROUTES]
    assert len(keys) == len(set(keys)), "a route is listed twice"
    for route in ROUTES:
        assert route.scope in ("none", "deny", "hide")
        assert (route.scope == "hide") == (route.leak is not None), route.template
        for role in ROLES:
            for caller in CALLERS:
                assert expected(route, role, caller) in ("allowed", "refused", "hidden", "unauthorized")


async def test_authorization_matrix(tmp_path: Path) -> None:
    async with embedded(tmp_path) as (client, seeded):
        documented = await _openapi_routes(client)
        listed = {(r.method, r.template) for r in ROUTES}
        assert not documented - listed, f"routes without an entry in ROUTES: {sorted(documented - listed)}"
        assert not listed - documented, f"entries whose route is gone: {sorted(listed - documented)}"
        failures: list[str] = []
        cells = 0
        for route in ROUTES:
            for role in ROLES:
                for caller in CALLERS:
                    want = expected(route, role, caller)
                    kwargs = route.request(seeded)
                    resp = await client.request(route.method, headers=headers(role, caller), **kwargs)
                    cells += 1
                    why = verdict(route, want, resp, seeded)
                    if why:
                        failures.append(f"{route.method} {route.template} as {role}/{caller} ({want}): {why}")
        assert cells == len(ROUTES) * len(ROLES) * len(CALLERS)
        assert not failures, f"{len(failures)} of {cells} cells:\n" + "\n".join(failures)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_a_caller_of_each_kind(role: str) -> None:
    tokens = {caller: headers(role, caller) for caller in CALLERS}
    assert tokens["no_token"] == {}
    assert len({t["Authorization"] for c, t in tokens.items() if c != "no_token"}) == 3
