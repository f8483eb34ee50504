"""The awards list of a scheme as a spreadsheet (XLSX through openpyxl) or CSV, columns in Vietnamese.

Risky text (= + - @ tab CR at the start of a cell) is written as text (``shared.exports``).
"""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import orjson

from shared.exports import append_xlsx_row, csv_cell

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
MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


async def awards_file(file_format: str, kind: str, title: str, rows: list[Any]) -> bytes:
    """The list of ``kind`` (collective/individual) awards as ``file_format``, built off the event loop."""
    header, cells = EXPORT_HEADERS[kind], table(kind, rows)
    if file_format == "csv":
        return await asyncio.to_thread(csv_bytes, header, cells)
    return await asyncio.to_thread(xlsx, title, header, cells)


def table(kind: str, rows: list[Any]) -> list[list[Any]]:
    """The cells of each award (``revoke_no``: the revocation's decision number, None when in force)."""
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


def xlsx(title: str, header: list[str], rows: list[list[Any]]) -> bytes:
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


def csv_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows([[csv_cell(v) for v in row] for row in rows])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
