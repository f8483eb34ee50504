"""Stateful fakes of the four services for the pages' browser tests: each answers what a page asks, in the
services' own shapes, and records what the page sent. One :class:`World` per test, so flows do not meet."""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from shared.text import fold

ERR = {"code": "not_found", "message": "Không tìm thấy đơn vị", "details": None}

UNITS: dict[str, dict[str, Any]] = {
    "VN": {"name": "Tổng LĐLĐ Việt Nam", "kind": "national", "parent_code": None},
    "HN": {"name": "LĐLĐ TP Hà Nội", "kind": "province", "parent_code": "VN", "cluster": "C1"},
    "TH": {"name": "LĐLĐ tỉnh Thanh Hóa", "kind": "province", "parent_code": "VN", "cluster": "C1"},
    "HN-BD": {"name": "LĐLĐ quận Ba Đình", "kind": "district", "parent_code": "HN"},
    "HN-CG": {"name": "LĐLĐ quận Cầu Giấy", "kind": "district", "parent_code": "HN"},
    "HN-BD-001": {"name": "CĐCS Công ty Điện lực Ba Đình", "kind": "grassroots", "parent_code": "HN-BD"},
}
# a district with many unions: the pages page and filter long lists
UNITS.update(
    {
        f"HN-CG-{i:03d}": {"name": f"CĐCS Trường học số {i}", "kind": "grassroots", "parent_code": "HN-CG"}
        for i in range(1, 61)
    }
)
FIGURES = {
    "HN": (1200, 1010, 60, 5240, 584_000_000_000, 1000),
    "HN-BD": (700, 600, 20, 3000, 300_000_000_000, 500),
    "HN-CG": (500, 410, 40, 2240, 284_000_000_000, 500),
    "HN-BD-001": (700, 600, 20, 3000, 300_000_000_000, 40),
    "VN": (1200, 1010, 60, 5240, 584_000_000_000, 2000),
    "TH": (0, 0, 0, 0, 0, 1000),
}


def _scope_path(code: str) -> list[str]:
    path = [code]
    while UNITS.get(path[0], {}).get("parent_code"):
        path.insert(0, UNITS[path[0]]["parent_code"])
    return path


def _in_scope(request: Request, code: str) -> bool:
    """The fakes read the scope from a header the tests cannot forge: the token's unit, decoded unverified."""
    import jwt

    auth = request.headers.get("authorization", "")
    claims = jwt.decode(auth.removeprefix("Bearer "), options={"verify_signature": False}) if auth else {}
    unit = claims.get("unit")
    return "operator" in claims.get("roles", []) or (unit is not None and unit in _scope_path(code))


def _has_role(request: Request, role: str) -> bool:
    import jwt

    auth = request.headers.get("authorization", "")
    claims = jwt.decode(auth.removeprefix("Bearer "), options={"verify_signature": False}) if auth else {}
    return bool({role, "operator"} & set(claims.get("roles", [])))


def _figures(code: str) -> dict[str, Any]:
    s, v, i, p, b, q = FIGURES.get(code, (0, 0, 0, 0, 0, 0))
    return {
        "submitted": s,
        "valid": v,
        "invalid": i,
        "pending": s - v - i,
        "participants": p,
        "benefit_vnd": b,
        "quota": q,
        "self_set": 0,
        "achievement_pct": round(v / q * 100, 2) if q else None,
    }


def claim_item(n: int) -> dict[str, Any]:
    titles = ("Khuôn định vị cáp ngầm", "Đặt lịch khám qua Zalo", "Máy cắt tôn tự động", "Sổ tay an toàn điện")
    authors = ("Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung")
    return {
        "initiative_id": str(uuid.UUID(int=100 + n)),
        "seq": 100 + n,
        "unit_code": "HN-BD-001",
        "title": titles[n % 4],
        "problem": "Lắp cáp mất nhiều thời gian",
        "solution": f"Giải pháp số {n}",
        "effect": "Giảm 30% thời gian",
        "authors": [{"member_id": f"M-{n:04d}", "full_name": authors[n % 4]}],
        "expected_benefit_vnd": 1_000_000 * (n + 1),
        "confidential": False,
        # the first is close to an earlier initiative the reviewer may read (intake knows _mine(0))
        "similar": [{"initiative_id": str(uuid.UUID(int=1000)), "title": "Cải tiến khuôn định vị cáp", "score": 0.8}]
        if n == 0
        else [],
    }


@dataclass
class World:
    posted: list[tuple[str, str, Any]] = field(default_factory=list)  # (service, path, json body)
    decision_delay_s: float = 0.0
    import_polls: int = 0
    withdrawn: set[str] = field(default_factory=set)
    appraised: dict[str, dict[str, Any]] = field(default_factory=dict)
    schemes: list[dict[str, Any]] = field(default_factory=list)

    def reset(self) -> None:
        self.posted.clear()
        self.decision_delay_s = 0.0
        self.import_polls = 0
        self.withdrawn.clear()
        self.appraised.clear()
        self.schemes.clear()

    def bodies(self, suffix: str) -> list[Any]:
        return [b for _s, p, b in self.posted if p.endswith(suffix)]


def _mine(n: int) -> dict[str, Any]:
    statuses = ("submitted", "revision_requested", "valid", "invalid")
    return {
        "id": str(uuid.UUID(int=1000 + n)),
        "seq": 1000 + n,
        "campaign": "1M",
        "unit_code": "HN-BD-001",
        "title": f"Sáng kiến số {n} về tiết kiệm điện" if n else "Cải tiến khuôn định vị",
        "status": statuses[n % 4],
        "authors": [{"member_id": "M-0001", "full_name": "Nguyễn Văn An"}],
        "submitted_at": f"2026-0{1 + n % 9}-1{n % 10}T08:00:00+07:00",
        "problem": "Thực trạng",
        "solution": "Giải pháp",
        "effect": "Hiệu quả",
        "expected_benefit_vnd": 25_000_000,
    }


def intake_app(world: World) -> FastAPI:
    app = FastAPI()
    mine = [_mine(n) for n in range(60)]

    @app.post("/api/v1/initiatives")
    async def submit(request: Request) -> Response:
        body = await request.json()
        world.posted.append(("intake", "/api/v1/initiatives", body))
        if body["title"] == "Sáng kiến đã gửi hôm qua":
            details = [{"field": "title", "message": "Sáng kiến này đã được gửi (#1017)"}]
            return JSONResponse({"error": {"code": "validation_error", "message": "x", "details": details}}, 422)
        return JSONResponse({"id": str(uuid.UUID(int=4242)), "seq": 42, "status": "submitted"}, 201)

    @app.get("/api/v1/initiatives")
    async def listing(request: Request) -> Response:
        status = request.query_params.get("status")
        rows = [dict(r, status="withdrawn") if r["id"] in world.withdrawn else r for r in mine]
        rows = [r for r in rows if not status or r["status"] == status]
        start = 50 if request.query_params.get("cursor") == "c2" else 0
        page = rows[start : start + 50]
        return JSONResponse({"items": page, "next_cursor": "c2" if start == 0 and len(rows) > 50 else None})

    @app.get("/api/v1/initiatives/{iid}")
    async def one(iid: str) -> Response:
        for r in mine:
            if r["id"] == iid:
                return JSONResponse(r)
        if iid == str(uuid.UUID(int=4242)):
            return JSONResponse({**_mine(0), "id": iid, "seq": 42, "status": "submitted", "title": "Vừa gửi"})
        return JSONResponse({"error": {**ERR, "message": "Không tìm thấy sáng kiến"}}, 404)

    @app.post("/api/v1/initiatives/{iid}/withdraw")
    async def withdraw(iid: str) -> Response:
        world.withdrawn.add(iid)
        world.posted.append(("intake", f"/api/v1/initiatives/{iid}/withdraw", None))
        return JSONResponse({"id": iid, "status": "withdrawn"})

    @app.patch("/api/v1/initiatives/{iid}")
    async def patch(iid: str, request: Request) -> Response:
        world.posted.append(("intake", f"/api/v1/initiatives/{iid}", await request.json()))
        return JSONResponse({**mine[1], "status": "submitted"})

    @app.get("/api/v1/imports/template.xlsx")
    async def template(request: Request) -> Response:
        from openpyxl import Workbook

        if not _has_role(request, "support"):
            error = {"code": "forbidden", "message": "Không có quyền thực hiện thao tác này", "details": None}
            return JSONResponse({"error": error}, 403)
        book = Workbook()
        book.active.title = "Sáng kiến"
        book.active.append(["Đơn vị", "Lĩnh vực", "Tên sáng kiến"])
        out = io.BytesIO()
        book.save(out)
        return Response(out.getvalue(), media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    @app.post("/api/v1/imports")
    async def start(request: Request) -> Response:
        form = await request.form()
        name = getattr(form.get("file"), "filename", "")
        world.posted.append(("intake", "/api/v1/imports", name))
        if "sai-cot" in name:
            details = [{"field": "file", "message": "Thiếu cột: title, solution"}]
            error = {"code": "validation_error", "message": "Tệp không hợp lệ", "details": details}
            return JSONResponse({"error": error}, 422)
        world.import_polls = 0
        return JSONResponse({"id": "job-1", "status": "queued", "total": 20}, 202)

    @app.get("/api/v1/imports/{job}")
    async def progress(job: str) -> Response:
        if job != "job-1":
            return JSONResponse({"error": {**ERR, "message": "Không tìm thấy lượt nhập"}}, 404)
        world.import_polls += 1
        if world.import_polls < 2:
            return JSONResponse({"id": job, "status": "running", "total": 20, "done": 9, "failed": 1, "errors": []})
        errors = [
            {"row": 4, "field": "unit_code", "message": "Không tìm thấy đơn vị HN-XX"},
            {"row": 9, "field": "title", "message": f"Trùng với sáng kiến đã gửi ({uuid.UUID(int=1017)})"},
        ]
        return JSONResponse({"id": job, "status": "done", "total": 20, "done": 18, "failed": 2, "errors": errors})

    return app


def review_app(world: World) -> FastAPI:
    app = FastAPI()
    valid = [
        {
            **claim_item(n),
            "initiative_id": str(uuid.UUID(int=500 + n)),
            "seq": 500 + n,
            "verified_benefit_vnd": None,
        }
        for n in range(3)
    ]
    earlier = {
        valid[0]["initiative_id"]: [
            {"novelty": 9, "applicability": 8, "effectiveness": 9, "scope": 8, "note": "Rất tốt", "mine": False}
        ]
    }

    @app.post("/api/v1/review/claims")
    async def claim(request: Request) -> Response:
        count = (await request.json()).get("count", 10)
        items = [claim_item(n) for n in range(min(count, 4))]
        expires = datetime.now(UTC) + timedelta(minutes=15)
        return JSONResponse({"lease_expires_at": expires.isoformat(), "items": items})

    @app.post("/api/v1/review/claims/release")
    async def release() -> Response:
        return JSONResponse({"released": 2})

    @app.post("/api/v1/review/items/{iid}/decision")
    async def decide(iid: str, request: Request) -> Response:
        body = await request.json()
        world.posted.append(("review", f"/api/v1/review/items/{iid}/decision", {**body, "id": iid}))
        await asyncio.sleep(world.decision_delay_s)
        return JSONResponse({"initiative_id": iid, "outcome": body["outcome"], "decision_seq": 1})

    @app.get("/api/v1/review/stats")
    async def stats() -> Response:
        decided = len(world.bodies("/decision"))
        return JSONResponse({"pending": 37 - decided, "leased": 4})

    @app.get("/api/v1/review/items/{iid}")
    async def item(iid: str) -> Response:
        return JSONResponse({"initiative_id": iid, "status": "pending", "decisions": [], "appraisal": None})

    @app.get("/api/v1/review/appraisals")
    async def worklist(request: Request) -> Response:
        state = request.query_params.get("state", "todo")
        out = []
        for it in valid:
            mine = world.appraised.get(it["initiative_id"])
            count = len(earlier.get(it["initiative_id"], [])) + (1 if mine else 0)
            if (state == "todo" and mine) or (state == "done" and not mine):
                continue
            out.append({**it, "mine": mine, "appraisal": {"count": count, "mean": None, "grade": None}})
        return JSONResponse({"items": out, "next_after": None})

    @app.get("/api/v1/review/items/{iid}/appraisals")
    async def earlier_of(iid: str) -> Response:
        rows = [dict(a, appraised_at="2026-03-01T08:00:00+07:00") for a in earlier.get(iid, [])]
        if iid in world.appraised:
            rows.append({**world.appraised[iid], "mine": True, "appraised_at": "2026-03-02T08:00:00+07:00"})
        return JSONResponse({"initiative_id": iid, "items": rows, "summary": {"count": len(rows)}})

    @app.post("/api/v1/review/items/{iid}/appraisals")
    async def appraise(iid: str, request: Request) -> Response:
        body = await request.json()
        world.posted.append(("review", f"/api/v1/review/items/{iid}/appraisals", body))
        world.appraised[iid] = body
        rows = [*earlier.get(iid, []), body]
        crit = ("novelty", "applicability", "effectiveness", "scope")
        mean = round(sum(r[c] for r in rows for c in crit) / (4 * len(rows)), 2)
        grade = ("excellent" if mean >= 8.5 else "typical" if mean >= 7 else "none") if len(rows) >= 2 else None
        summary = {"count": len(rows), "mean": mean if len(rows) >= 2 else None, "grade": grade}
        return JSONResponse({"initiative_id": iid, **body, "appraisal": summary}, 201)

    return app


def tally_app(world: World) -> FastAPI:
    app = FastAPI()
    campaign = {
        "code": "1M",
        "name": "01 triệu sáng kiến",
        "fields": [
            {"code": "production", "name": "Sản xuất kinh doanh"},
            {"code": "digital", "name": "Chuyển đổi số"},
        ],
        "phases": [
            {"code": "P1", "name": "Giai đoạn 1", "opens_on": "2022-01-08", "closes_on": "2022-05-31"},
            {"code": "P2", "name": "Giai đoạn 2", "opens_on": "2022-06-01", "closes_on": "2030-09-01"},
        ],
        "milestones": [1000, 2000, 5000],
    }

    def unit_or_error(request: Request, code: str) -> Response | None:
        if code not in UNITS:
            return JSONResponse({"error": ERR}, 404)
        if not _in_scope(request, code):
            msg = "Đơn vị nằm ngoài phạm vi của tài khoản"
            return JSONResponse({"error": {"code": "out_of_scope", "message": msg, "details": None}}, 403)
        return None

    @app.get("/api/v1/units")
    async def search_units(request: Request, q: str = "", limit: int = 20) -> Response:
        """Tally's unit search: every folded word of ``q`` in the folded code and name, inside the scope."""
        words = fold(q).split()
        hits = [c for c in UNITS if all(w in fold(f"{c} {UNITS[c]['name']}") for w in words)]
        mine = sorted((c for c in hits if _in_scope(request, c)), key=lambda c: (c != q, len(_scope_path(c)), c))
        items = [{"code": c, **UNITS[c], "path": _scope_path(c)} for c in mine[:limit]]
        return JSONResponse({"items": items, "more": len(mine) > limit, "outside_scope": not mine and bool(hits)})

    @app.get("/api/v1/units/{code}")
    async def unit(code: str) -> Response:
        if code not in UNITS:
            return JSONResponse({"error": ERR}, 404)
        kids = [{"code": k, **v} for k, v in UNITS.items() if v["parent_code"] == code]
        return JSONResponse({"code": code, **UNITS[code], "path": _scope_path(code), "children": kids})

    @app.get("/api/v1/tally/units/{code}")
    async def figures(code: str, request: Request) -> Response:
        refused = unit_or_error(request, code)
        if refused is not None:
            return refused
        kids = [k for k, v in UNITS.items() if v["parent_code"] == code]
        return JSONResponse(
            {
                "unit": {"code": code, **UNITS[code]},
                "campaign": "1M",
                "phase": None,
                "figures": _figures(code),
                "children": [{"unit": {"code": k, **UNITS[k]}, "figures": _figures(k)} for k in kids],
            }
        )

    @app.get("/api/v1/tally/timeseries")
    async def series() -> Response:
        return JSONResponse({"items": [{"date": "2026-03-01", "submitted": 1200, "valid": 1010}]})

    @app.get("/api/v1/tally/rankings")
    async def rankings(request: Request) -> Response:
        if request.query_params.get("kind") != "province":
            return JSONResponse({"metric": request.query_params.get("metric"), "items": []})
        items = [
            {"rank": 1, "unit": {"code": "HN", "name": UNITS["HN"]["name"]}, "value": 1010},
            {"rank": 2, "unit": {"code": "TH", "name": UNITS["TH"]["name"]}, "value": 0},
        ]
        return JSONResponse({"metric": request.query_params.get("metric"), "items": items})

    @app.get("/api/v1/tally/milestones")
    async def milestones() -> Response:
        authors = [{"member_id": "M-0001", "full_name": "Nguyễn Văn An"}]
        item = {"n": 1000, "initiative_id": "x", "unit_code": "HN-BD-001", "authors": authors}
        return JSONResponse({"items": [item]})

    @app.get("/api/v1/campaigns/{code}")
    async def get_campaign(code: str) -> Response:
        return JSONResponse(campaign)

    @app.put("/api/v1/campaigns/{code}")
    async def put_campaign(code: str, request: Request) -> Response:
        body = await request.json()
        world.posted.append(("tally", f"/api/v1/campaigns/{code}", body))
        return JSONResponse({"code": code, **body, "revision": 2})

    @app.get("/api/v1/campaigns/{code}/quotas")
    async def get_quotas(code: str, request: Request) -> Response:
        unit = request.query_params["unit"]  # tally requires it: one unit per call
        quotas = {"HN": [{"unit_code": "HN", "phase": "P2", "assigned": 1000, "self_set": 1300}]}
        return JSONResponse({"items": quotas.get(unit, [])})

    @app.put("/api/v1/campaigns/{code}/quotas")
    async def put_quotas(code: str, request: Request) -> Response:
        body = await request.json()
        world.posted.append(("tally", f"/api/v1/campaigns/{code}/quotas", body))
        return JSONResponse({"upserted": len(body)})

    @app.put("/api/v1/units")
    async def put_units(request: Request) -> Response:
        body = await request.json()
        world.posted.append(("tally", "/api/v1/units", body))
        return JSONResponse({"upserted": len(body)})

    @app.post("/api/v1/units/import")
    async def import_units() -> Response:
        details = [
            {"row": 0, "field": "kind", "message": "Input should be 'national', 'province'"},
            {"row": 3, "field": "code", "message": "Field required"},
        ]
        return JSONResponse(
            {"error": {"code": "validation_error", "message": "Dữ liệu không hợp lệ", "details": details}}, 422
        )

    @app.post("/api/v1/tally/snapshots")
    async def snapshot(request: Request) -> Response:
        world.posted.append(("tally", "/api/v1/tally/snapshots", await request.json()))
        return JSONResponse({"id": "snap-1", "taken_at": "2026-03-01T00:00:00+00:00"}, 201)

    return app


def awards_app(world: World) -> FastAPI:
    app = FastAPI()
    scheme = {
        "code": "TT-XS",
        "campaign": "1M",
        "phase": None,
        "name": "Tập thể xuất sắc",
        "recipient": "collective",
        "unit_kind": "district",
        "rule": {"min_achievement_pct": 100, "min_valid": 50},
        "order_by": ["valid"],
        "max_recipients": 2,
    }

    @app.get("/api/v1/awards")
    async def awards(request: Request) -> Response:
        if request.query_params.get("unit"):
            return JSONResponse({"items": []})
        recipient = {"unit_code": "HN-BD", "name": "LĐLĐ quận Ba Đình", "cluster": None}
        award = {"id": "a1", "scheme": "TT-XS", "recipient": recipient, "decision_no": "12/QĐ", "revoked": False}
        return JSONResponse({"items": [award]})

    @app.get("/api/v1/awards/schemes")
    async def schemes() -> Response:
        return JSONResponse({"items": [scheme, *world.schemes]})

    @app.put("/api/v1/awards/schemes/{code}")
    async def put_scheme(code: str, request: Request) -> Response:
        body = await request.json()
        world.posted.append(("awards", f"/api/v1/awards/schemes/{code}", body))
        world.schemes.append({"code": code, **body})
        return JSONResponse({"code": code, **body})

    @app.post("/api/v1/awards/schemes/{code}/nominations")
    async def nominate(code: str, request: Request) -> Response:
        world.posted.append(("awards", f"/api/v1/awards/schemes/{code}/nominations", await request.json()))
        items = [
            {"rank": 1, "recipient": {"unit_code": "HN-BD"}, "figures": {"valid": 600, "achievement_pct": 120.0}},
            {"rank": 2, "recipient": {"unit_code": "HN-CG"}, "figures": {"valid": 410, "achievement_pct": 82.0}},
        ]
        return JSONResponse({"snapshot_id": "snap-1", "items": items})

    @app.post("/api/v1/awards/schemes/{code}/decision")
    async def decide(code: str, request: Request) -> Response:
        body = await request.json()
        world.posted.append(("awards", f"/api/v1/awards/schemes/{code}/decision", body))
        n = 2 if body["approve"] == "all" else len(body["approve"])
        return JSONResponse({"items": [{"id": f"a{i}"} for i in range(n)]}, 201)

    return app


def with_ops(name: str, app: FastAPI, world: World) -> FastAPI:
    letter = {"routing_key": "initiative.reviewed.v1", "reason": "poison", "body": '{"id": "e-1"}'}
    letters = [letter] if name == "tally" else []

    @app.get(f"/api/v1/ops/{name}/dead-letters")
    async def dead() -> Response:
        return JSONResponse({"items": letters})

    @app.post(f"/api/v1/ops/{name}/dead-letters/replay")
    async def replay() -> Response:
        world.posted.append((name, f"/api/v1/ops/{name}/dead-letters/replay", None))
        return JSONResponse({"replayed": len(letters)})

    @app.get("/health")
    async def health() -> Response:
        checks = {"database": True, "broker": name != "awards"}
        body = {"status": "ok" if name != "awards" else "degraded", "service": name, "checks": checks}
        return JSONResponse(body, 200 if name != "awards" else 503)

    return app


def transports(world: World) -> dict[str, httpx.AsyncBaseTransport]:
    apps = {"intake": intake_app, "review": review_app, "tally": tally_app, "awards": awards_app}
    return {name: httpx.ASGITransport(app=with_ops(name, make(world), world)) for name, make in apps.items()}
