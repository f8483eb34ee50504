"""Schemes, nominations, decisions and exports (SPEC §5, §8, §9)."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from awards.adapters.inputs import member_inputs, snapshot_meta, unit_inputs
from awards.adapters.orm import awards, campaigns, nomination_runs, revocations, schemes
from awards.api.deps import ContextDep, Operator, SchemeCode, SessionDep, TallyDep
from awards.domain.schemes import (
    Scheme,
    SchemeError,
    collective_candidates,
    individual_candidates,
    nominate,
    parse_scheme,
)
from shared.auth import Principal
from shared.exports import append_xlsx_row, csv_cell
from shared.http import ApiError, JsonResponse
from shared.text import NO_NUL

router = APIRouter(prefix="/api/v1/awards", tags=["awards"])

MAX_BODY_ITEMS = 100_000


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def validation_error(exc: ValidationError) -> ApiError:
    details = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]} for e in exc.errors()]
    return ApiError(422, "validation_error", "Dữ liệu không hợp lệ", details)


async def load_scheme(session: AsyncSession, code: str) -> Scheme:
    body = (await session.execute(select(schemes.c.body).where(schemes.c.code == code))).scalar_one_or_none()
    if body is None:
        raise ApiError(404, "not_found", "Không tìm thấy hình thức khen thưởng")
    return Scheme.model_validate(orjson.loads(body))


async def active_recipients(session: AsyncSession, code: str) -> set[str]:
    """Recipients awarded in this scheme and not revoked."""
    rows = await session.execute(
        select(awards.c.recipient_key)
        .select_from(awards.outerjoin(revocations, revocations.c.award_id == awards.c.id))
        .where(awards.c.scheme_code == code, revocations.c.award_id.is_(None))
    )
    return {r[0] for r in rows}


def scheme_digest(scheme: Scheme) -> str:
    """Names the exact scheme a nomination list was computed under."""
    return hashlib.sha256(canonical(scheme.model_dump(mode="json"))).hexdigest()[:16]


def scheme_out(code: str, scheme: Scheme) -> dict[str, Any]:
    return {"code": code, **scheme.model_dump(mode="json", exclude_none=False)}


@router.put("/schemes/{code}")
async def put_scheme(
    code: SchemeCode, session: SessionDep, body: Annotated[Any, Body()], _op: Principal = Operator
) -> JsonResponse:
    try:
        scheme = parse_scheme(body)
    except SchemeError as exc:
        raise ApiError(422, "validation_error", "Hình thức khen thưởng không hợp lệ", exc.details) from exc
    row = {"code": code, "body": canonical(scheme.model_dump(mode="json")).decode(), "updated_at": datetime.now(UTC)}
    async with session.begin():
        # The campaign replica may lag behind tally: an unknown campaign is accepted, a known one is checked.
        phases = (
            await session.execute(select(campaigns.c.phases).where(campaigns.c.code == scheme.campaign))
        ).scalar_one_or_none()
        if phases is not None and scheme.phase is not None and scheme.phase not in orjson.loads(phases):
            raise ApiError(
                422,
                "validation_error",
                "Hình thức khen thưởng không hợp lệ",
                [{"field": "phase", "message": "Chiến dịch không có giai đoạn này"}],
            )
        exists = (await session.execute(select(schemes.c.code).where(schemes.c.code == code))).first()
        if exists is None:
            await session.execute(schemes.insert().values(**row))
        else:
            await session.execute(schemes.update().where(schemes.c.code == code).values(**row))
    return JsonResponse(scheme_out(code, scheme))


@router.get("/schemes")
async def list_schemes(
    session: SessionDep, campaign: Annotated[str | None, Query(max_length=64)] = None
) -> dict[str, Any]:
    rows = (await session.execute(select(schemes).order_by(schemes.c.code))).all()
    items = [scheme_out(r.code, Scheme.model_validate(orjson.loads(r.body))) for r in rows]
    if campaign is not None:
        items = [i for i in items if i["campaign"] == campaign]
    return {"items": items}


@router.get("/schemes/{code}")
async def get_scheme(code: SchemeCode, session: SessionDep) -> dict[str, Any]:
    return scheme_out(code, await load_scheme(session, code))


class NominationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    snapshot_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")


@router.post("/schemes/{code}/nominations")
async def compute_nominations(
    code: SchemeCode,
    request: Request,
    session: SessionDep,
    tally: TallyDep,
    body: Annotated[Any, Body()],
    op: Principal = Operator,
) -> Response:
    try:
        req = NominationRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from exc
    async with session.begin():
        scheme = await load_scheme(session, code)
    auth = request.headers.get("authorization")
    meta = await snapshot_meta(session, tally, req.snapshot_id, auth)
    if meta["campaign"] != scheme.campaign or meta["phase"] != scheme.phase:
        raise ApiError(
            422,
            "validation_error",
            "Bản chốt số liệu không cùng đợt thi đua với hình thức khen thưởng",
            [{"field": "snapshot_id", "message": "Bản chốt thuộc chiến dịch/giai đoạn khác"}],
        )
    if scheme.recipient == "collective":
        assert scheme.unit_kind is not None
        candidates = collective_candidates(await unit_inputs(session, tally, req.snapshot_id, scheme.unit_kind, auth))
    else:
        members = await member_inputs(session, req.snapshot_id, scheme.campaign, scheme.phase, meta["taken_at"])
        candidates = individual_candidates(members)
    async with session.begin():
        awarded = await active_recipients(session, code)
        items = nominate(scheme, candidates, awarded)
        result = {
            "scheme": code,
            "snapshot_id": req.snapshot_id,
            "campaign": scheme.campaign,
            "phase": scheme.phase,
            "taken_at": meta["taken_at"].isoformat(),
            "recipient_kind": scheme.recipient,
            "scheme_digest": scheme_digest(scheme),
            "items": items,
        }
        raw = canonical(result)
        await session.execute(
            nomination_runs.insert().values(
                scheme_code=code,
                snapshot_id=req.snapshot_id,
                body=raw.decode(),
                created_by=op.sub,
                created_at=datetime.now(UTC),
            )
        )
    return Response(raw, media_type="application/json")


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision_no: str = Field(min_length=1, max_length=100, pattern=NO_NUL)
    signed_on: date
    approve: Literal["all"] | list[str | dict[str, str]] = Field(max_length=MAX_BODY_ITEMS)


def _recipient_key(value: str | dict[str, str]) -> str:
    if isinstance(value, str):
        return value
    return str(value.get("unit_code") or value.get("member_id") or "")


@router.post("/schemes/{code}/decision", status_code=201)
async def decide(
    code: SchemeCode, ctx: ContextDep, session: SessionDep, body: Annotated[Any, Body()], op: Principal = Operator
) -> JsonResponse:
    try:
        req = DecisionRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from exc
    granted: list[dict[str, Any]] = []
    async with session.begin():
        scheme = await load_scheme(session, code)
        # Serialise decisions of one scheme (PostgreSQL row lock; SQLite's BEGIN IMMEDIATE already does).
        await session.execute(select(schemes.c.code).where(schemes.c.code == code).with_for_update())
        run = (
            await session.execute(
                select(nomination_runs)
                .where(nomination_runs.c.scheme_code == code)
                .order_by(nomination_runs.c.id.desc())
                .limit(1)
            )
        ).first()
        if run is None:
            raise ApiError(409, "no_nominations", "Chưa tính danh sách đề nghị khen thưởng cho hình thức này")
        nominated = orjson.loads(run.body)
        if nominated.get("scheme_digest") != scheme_digest(scheme):
            raise ApiError(
                409,
                "nominations_stale",
                "Hình thức khen thưởng đã thay đổi sau khi tính danh sách đề nghị; hãy tính lại",
            )
        by_key = {_recipient_key(i["recipient"]): i for i in nominated["items"]}
        if isinstance(req.approve, list) and not req.approve:
            raise ApiError(
                422, "validation_error", "Dữ liệu không hợp lệ", [{"field": "approve", "message": "Danh sách trống"}]
            )
        if req.approve == "all":
            chosen = list(nominated["items"])
        else:
            keys = [_recipient_key(v) for v in req.approve]
            unknown = [
                {"field": f"approve.{i}", "message": "Không có trong danh sách đề nghị gần nhất"}
                for i, k in enumerate(keys)
                if k not in by_key
            ]
            if unknown:
                raise ApiError(422, "validation_error", "Danh sách phê duyệt không hợp lệ", unknown)
            chosen = [by_key[k] for k in sorted(set(keys), key=lambda k: by_key[k]["rank"])]
        awarded = await active_recipients(session, code)
        now = datetime.now(UTC)
        for item in chosen:
            key = _recipient_key(item["recipient"])
            if key in awarded:
                continue
            award_id = str(uuid.uuid4())
            await session.execute(
                awards.insert().values(
                    id=award_id,
                    scheme_code=code,
                    campaign=scheme.campaign,
                    recipient_kind=scheme.recipient,
                    recipient_key=key,
                    recipient=canonical(item["recipient"]).decode(),
                    unit_code=item.get("unit_code"),
                    figures=canonical(item["figures"]).decode(),
                    rank=item["rank"],
                    snapshot_id=run.snapshot_id,
                    nomination_run_id=run.id,
                    decision_no=req.decision_no,
                    signed_on=req.signed_on.isoformat(),
                    decided_by=op.sub,
                    granted_at=now,
                )
            )
            data = {
                "award_id": award_id,
                "scheme": code,
                "campaign": scheme.campaign,
                "recipient_kind": scheme.recipient,
                "recipient": item["recipient"],
                "figures": item["figures"],
                "decision_no": req.decision_no,
                "signed_on": req.signed_on.isoformat(),
            }
            await ctx.emit(session, ctx.event("award.granted", data))
            granted.append({"id": award_id, **{k: v for k, v in data.items() if k != "award_id"}, "revoked": False})
    return JsonResponse({"scheme": code, "snapshot_id": run.snapshot_id, "granted": granted}, 201)


EXPORT_HEADERS = {
    "collective": [
        "STT",
        "Mã đơn vị",
        "Tên đơn vị",
        "Cụm thi đua",
        "Số sáng kiến hợp lệ",
        "Số người tham gia",
        "Tỷ lệ hoàn thành chỉ tiêu (%)",
        "Giá trị làm lợi (đồng)",
        "Số quyết định",
        "Ngày ký",
        "Trạng thái",
    ],
    "individual": [
        "STT",
        "Mã đoàn viên",
        "Họ và tên",
        "Đơn vị",
        "Số sáng kiến hợp lệ",
        "Xếp loại",
        "Giá trị làm lợi (đồng)",
        "Số quyết định",
        "Ngày ký",
        "Trạng thái",
    ],
}
GRADE_VI = {"excellent": "Xuất sắc", "typical": "Tiêu biểu", "none": ""}


def export_rows(kind: str, rows: list[Any]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for n, r in enumerate(rows, start=1):
        rec, fig = orjson.loads(r.recipient), orjson.loads(r.figures)
        status = f"Đã thu hồi ({r.revoke_no})" if r.revoke_no else "Hiệu lực"
        if kind == "collective":
            out.append(
                [
                    n,
                    rec.get("unit_code"),
                    rec.get("name"),
                    rec.get("cluster") or "",
                    fig.get("valid"),
                    fig.get("participants"),
                    fig.get("achievement_pct"),
                    fig.get("benefit_vnd"),
                    r.decision_no,
                    r.signed_on,
                    status,
                ]
            )
        else:
            out.append(
                [
                    n,
                    rec.get("member_id"),
                    rec.get("full_name"),
                    r.unit_code,
                    fig.get("valid"),
                    GRADE_VI.get(str(fig.get("grade")), ""),
                    fig.get("benefit_vnd"),
                    r.decision_no,
                    r.signed_on,
                    status,
                ]
            )
    return out


def _xlsx(title: str, header: list[str], rows: list[list[Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "Khen thưởng"
    append_xlsx_row(ws, [title])  # the scheme's name is an operator's text
    ws.append(header)
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for row in rows:
        append_xlsx_row(ws, row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows([[csv_cell(v) for v in row] for row in rows])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


@router.get(
    "/schemes/{code}/export",
    response_class=Response,
    responses={
        200: {
            "description": "Danh sách khen thưởng (XLSX hoặc CSV)",
            "content": {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
                "text/csv": {},
            },
        }
    },
)
async def export(
    code: SchemeCode, session: SessionDep, format: Annotated[Literal["xlsx", "csv"], Query()] = "xlsx"
) -> Response:
    async with session.begin():
        scheme = await load_scheme(session, code)
        rows = (
            await session.execute(
                select(
                    awards.c.recipient,
                    awards.c.figures,
                    awards.c.unit_code,
                    awards.c.decision_no,
                    awards.c.signed_on,
                    awards.c.rank,
                    revocations.c.decision_no.label("revoke_no"),
                )
                .select_from(awards.outerjoin(revocations, revocations.c.award_id == awards.c.id))
                .where(awards.c.scheme_code == code)
                .order_by(awards.c.signed_on, awards.c.decision_no, awards.c.rank, awards.c.recipient_key)
            )
        ).all()
    header = EXPORT_HEADERS[scheme.recipient]
    table = export_rows(scheme.recipient, list(rows))
    filename = f"khen-thuong-{code}.{format}"
    if format == "csv":
        data = await asyncio.to_thread(_csv, header, table)
        media = "text/csv; charset=utf-8"
    else:
        data = await asyncio.to_thread(_xlsx, f"{scheme.name} — {scheme.campaign}", header, table)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
