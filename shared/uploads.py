"""Reading uploaded tables (CSV or XLSX) without letting a hostile file take the service down.

An XLSX is a zip of XML, and both layers can be bombs: a 1.7 KB sheet declaring ``A1:XFD20000`` made
openpyxl walk 327 million empty cells (10.8 s of CPU, every other request 5–25× slower meanwhile), and a
0.2 MB shared-strings entry inflated the process by 400 MB (issue 14, finding 3). So:

- the zip's entries are checked before anything is parsed: their count, each one's size and
  compression ratio, and the total;
- the sheet's declared dimension is capped (rows and columns), and no row is read past the caps;
- every row counts toward the row limit, empty ones included;
- CSV fields are bounded (a 200 KB field is a 422, not a 500), and a file without delimiter is one column;
- the parse runs in a separate worker process, under a memory cap (RLIMIT_AS) and a time cap (the
  process is killed), a few at a time, awaited from a thread so the event loop never blocks.

What fails is a :class:`TableError` whose message, in Vietnamese, says why; callers answer 422.
"""

from __future__ import annotations

import asyncio
import csv
import io
import multiprocessing
import os
import resource
import weakref
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from multiprocessing.connection import Connection
from typing import Any

Cell = str | int | float | bool | date | datetime | time | None
Table = list[list[Cell]]


class TableError(Exception):
    """The file cannot be read as a table within the limits; the message says why (Vietnamese)."""


@dataclass(frozen=True, slots=True)
class TableLimits:
    max_rows: int = 200_000  # data rows, empty ones included (the header is not one)
    max_columns: int = 64
    max_cell_chars: int = 32_767  # Excel's own limit of a cell
    max_entries: int = 200  # files inside the XLSX zip
    max_entry_bytes: int = 128 * 1024 * 1024  # uncompressed, per entry
    max_total_bytes: int = 256 * 1024 * 1024  # uncompressed, all entries
    max_ratio: float = 100.0  # uncompressed / compressed, for entries above 1 MB
    timeout_s: float = 60.0
    memory_bytes: int = 768 * 1024 * 1024  # address space the worker may add to what it starts with


RATIO_FLOOR_BYTES = 1024 * 1024
# Parses running at once per event loop; more wait their turn on the loop, holding neither a worker process nor
# a thread of the default executor (a flood of uploads must not fork 100 workers).
PARALLEL_PARSES = 2
_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["shared.uploads", "openpyxl"])


def is_xlsx(filename: str, content: bytes) -> bool:
    return filename.lower().endswith(".xlsx") or content[:2] == b"PK"


async def read_table(filename: str, content: bytes, limits: TableLimits = TableLimits()) -> Table:
    """The file's rows (the header first), parsed in a worker process under ``limits``."""
    async with _slots():
        return await asyncio.to_thread(_in_worker, filename, content, limits)


def _slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _SLOTS.get(loop)
    if slots is None:
        slots = _SLOTS[loop] = asyncio.Semaphore(PARALLEL_PARSES)
    return slots


# ---- in the caller's process (a thread) ---------------------------------------------------------


def _in_worker(filename: str, content: bytes, limits: TableLimits) -> Table:
    if is_xlsx(filename, content):
        check_zip(content, limits)  # cheap, and it spares a worker for the obvious bombs
    receiver, sender = _CONTEXT.Pipe(duplex=False)
    worker = _CONTEXT.Process(target=_worker_main, args=(sender, filename, content, limits), daemon=True)
    worker.start()
    sender.close()
    try:
        if not receiver.poll(limits.timeout_s):
            raise TableError(f"Tệp quá phức tạp: đọc quá {limits.timeout_s:g} giây")
        try:
            kind, value = receiver.recv()
        except EOFError as exc:  # killed by its memory or CPU limit
            raise TableError("Tệp quá lớn hoặc quá phức tạp để đọc") from exc
    finally:
        receiver.close()
        if worker.is_alive():
            worker.kill()
        worker.join(5)
    if kind == "error":
        raise TableError(value)
    table: Table = value
    return table


def check_zip(content: bytes, limits: TableLimits) -> None:
    """Refuse a zip whose entries are too many, too big or too compressed, before inflating any of them."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise TableError("Không đọc được tệp XLSX") from exc
    if len(entries) > limits.max_entries:
        raise TableError("Tệp XLSX có quá nhiều thành phần")
    total = 0
    for entry in entries:
        total += entry.file_size
        if entry.file_size > limits.max_entry_bytes or total > limits.max_total_bytes:
            raise TableError("Tệp XLSX quá lớn khi giải nén")
        if entry.file_size > RATIO_FLOOR_BYTES and entry.file_size > limits.max_ratio * max(entry.compress_size, 1):
            raise TableError("Tệp XLSX bị nén bất thường (nghi ngờ tệp độc hại)")


# ---- in the worker process ------------------------------------------------------------------------


def _worker_main(sender: Connection, filename: str, content: bytes, limits: TableLimits) -> None:
    _cap_resources(limits)
    try:
        result: tuple[str, Any] = ("ok", parse_table(filename, content, limits))
    except TableError as exc:
        result = ("error", str(exc))
    except MemoryError:
        result = ("error", "Tệp quá lớn hoặc quá phức tạp để đọc")
    except Exception:  # openpyxl and csv raise many kinds on a malformed file
        result = ("error", "Không đọc được tệp: định dạng không hợp lệ")
    sender.send(result)
    sender.close()


def _cap_resources(limits: TableLimits) -> None:
    seconds = int(limits.timeout_s) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    try:  # Linux: the address space in use now, plus the cap (elsewhere the wall-clock kill still holds)
        with open("/proc/self/statm") as statm:
            in_use = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return
    cap = in_use + limits.memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def parse_table(filename: str, content: bytes, limits: TableLimits) -> Table:
    """Blocking, and trusting nothing but ``check_zip``: call it through :func:`read_table`."""
    if is_xlsx(filename, content):
        check_zip(content, limits)
        return _xlsx_rows(content, limits)
    return _csv_rows(content, limits)


def _xlsx_rows(content: bytes, limits: TableLimits) -> Table:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:
        raise TableError("Không đọc được tệp XLSX") from exc
    try:
        if not workbook.worksheets:
            raise TableError("Tệp XLSX không có trang tính")
        sheet = workbook.worksheets[0]
        declared_rows, declared_columns = sheet.max_row, sheet.max_column  # from <dimension>, when present
        if declared_columns is not None and declared_columns > limits.max_columns:
            raise TableError(f"Trang tính khai báo {declared_columns} cột; tối đa {limits.max_columns}")
        if declared_rows is not None and declared_rows > limits.max_rows + 1:
            raise TableError(f"Trang tính khai báo {declared_rows} dòng; tối đa {limits.max_rows}")
        rows: Table = []
        # Never past the caps, whatever the cells themselves claim: one row more than allowed says "too many".
        for values in sheet.iter_rows(max_row=limits.max_rows + 2, max_col=limits.max_columns, values_only=True):
            if len(rows) > limits.max_rows:
                raise TableError(f"Tệp có quá {limits.max_rows} dòng")
            row = list(values)
            for cell in row:
                if isinstance(cell, str) and len(cell) > limits.max_cell_chars:
                    raise TableError(f"Dòng {len(rows) + 1} có ô dài quá {limits.max_cell_chars} ký tự")
            rows.append(row)
        return rows
    finally:
        workbook.close()


def _csv_rows(content: bytes, limits: TableLimits) -> Table:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableError("Tệp CSV phải mã hoá UTF-8") from exc
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else csv.excel
    except csv.Error:
        dialect = csv.excel  # no delimiter found: one column, and the header check says what is missing
    csv.field_size_limit(limits.max_cell_chars)
    rows: Table = []
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        for values in reader:
            if len(rows) > limits.max_rows:
                raise TableError(f"Tệp có quá {limits.max_rows} dòng")
            if len(values) > limits.max_columns:
                raise TableError(f"Dòng {reader.line_num} có quá {limits.max_columns} cột")
            rows.append(list(values))
    except csv.Error as exc:
        raise TableError(
            f"Dòng {reader.line_num}: CSV không hợp lệ (ô dài quá {limits.max_cell_chars} ký tự hoặc sai định dạng)"
        ) from exc
    return rows
