"""Issue 14, finding 3 and item 6: uploaded tables are read in a capped worker; bombs are refused before parsing."""

from __future__ import annotations

import io
import time
import zipfile

import pytest

from shared.testing import xlsx_bytes
from shared.uploads import TableError, TableLimits, check_zip, read_table


def xlsx(rows: list[list[object]]) -> bytes:
    return xlsx_bytes(rows)


def rewrite(content: bytes, name: str, change: object) -> bytes:
    """The same zip with entry ``name`` replaced by (or added as) ``change(old_bytes)``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        names = src.namelist()
        for filename in names:
            data = src.read(filename)
            dst.writestr(filename, change(data) if filename == name else data)  # type: ignore[operator]
        if name not in names:
            dst.writestr(name, change(b""))  # type: ignore[operator]
    return out.getvalue()


async def test_a_sheet_declaring_xfd20000_is_refused_at_once() -> None:
    bomb = xlsx_bytes([["code", "name"], ["VN", "Việt Nam"]], dimension="A1:XFD20000")
    assert len(bomb) < 8_000
    cpu = time.process_time()  # this process's CPU: the service's own, not the worker's
    with pytest.raises(TableError, match="16384 cột"):
        await read_table("bomb.xlsx", bomb)
    assert time.process_time() - cpu < 1.0  # the same sheet took 13 s of this process's CPU before
    with pytest.raises(TableError, match="dòng"):
        await read_table("rows.xlsx", xlsx_bytes([["code"], ["VN"]], dimension="A1:B300000"))


async def test_cells_past_the_caps_are_never_walked() -> None:
    # No <dimension>, but one cell far to the right: the row is cut at max_columns, not padded to XFD.
    def far_cell(xml: bytes) -> bytes:
        xml = xml.replace(b'<dimension ref="A1:B2"/>', b"")
        return xml.replace(b"</row></sheetData>", b'<c r="XFD2" t="inlineStr"><is><t>x</t></is></c></row></sheetData>')

    content = rewrite(xlsx([["code", "name"], ["VN", "Việt Nam"]]), "xl/worksheets/sheet1.xml", far_cell)
    table = await read_table("far.xlsx", content, TableLimits(max_columns=8))
    assert table[1][:2] == ["VN", "Việt Nam"] and len(table[1]) == 8


def test_a_shared_strings_bomb_is_refused_before_it_is_inflated() -> None:
    inflated = b"<sst>" + b"<si><t>" + b"a" * 60_000_000 + b"</t></si></sst>"
    bomb = rewrite(xlsx([["code"], ["VN"]]), "xl/sharedStrings.xml", lambda _old: inflated)
    assert len(bomb) < 250_000
    with pytest.raises(TableError, match="nén bất thường"):
        check_zip(bomb, TableLimits())


async def test_every_row_counts_toward_the_limit_empty_ones_included() -> None:
    csv_rows = b"code,name\n" + b",\n" * 10 + b"VN,Viet Nam\n"
    with pytest.raises(TableError, match="quá 5 dòng"):
        await read_table("units.csv", csv_rows, TableLimits(max_rows=5))
    sheet = xlsx([["code", "name"], *([[None, None]] * 3), ["VN", "x"], *([[None, None]] * 3), ["TH", "y"]])
    with pytest.raises(TableError, match="9 dòng"):  # 3 rows with values, 8 in all: refused
        await read_table("units.xlsx", sheet, TableLimits(max_rows=5))
    assert len(await read_table("units.xlsx", sheet, TableLimits(max_rows=8))) == 9


async def test_csv_without_delimiter_or_with_a_huge_field_is_a_table_error_not_a_crash() -> None:
    assert await read_table("one.csv", b"justonecolumn\nvalue\n") == [["justonecolumn"], ["value"]]
    huge = b"code,name\nVN," + b"x" * 200_000 + b"\n"
    with pytest.raises(TableError, match="CSV không hợp lệ"):
        await read_table("huge.csv", huge)
    with pytest.raises(TableError, match="UTF-8"):
        await read_table("latin.csv", "tên".encode("cp1258"))


async def test_the_worker_is_capped_in_memory_and_in_time() -> None:
    many = b"code,name\n" + b"".join(b"U-%06d,Don vi so %06d\n" % (i, i) for i in range(200_000))
    with pytest.raises(TableError, match="quá lớn hoặc quá phức tạp"):
        await read_table("many.csv", many, TableLimits(memory_bytes=8 * 1024 * 1024))
    with pytest.raises(TableError, match="giây"):
        await read_table("many.csv", many, TableLimits(timeout_s=0.05))
    assert len(await read_table("many.csv", many)) == 200_001


async def test_garbage_that_looks_like_a_zip_is_a_table_error() -> None:
    with pytest.raises(TableError):
        await read_table("x.xlsx", b"PK\x03\x04not really a zip")
