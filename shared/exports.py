"""Writing user text into CSV and XLSX without handing a spreadsheet a formula (CWE-1236).

A member whose ``full_name`` is ``=HYPERLINK(...)`` must come out as that text, not as a formula cell
in the XLSX nor a cell that a spreadsheet evaluates when it opens the CSV (issue 14, finding 2).
Cells starting with ``= + - @``, a tab or a carriage return are escaped: in a CSV with a leading
apostrophe (OWASP's advice), in an XLSX written as a text cell with Excel's own quote prefix.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def risky(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_TRIGGERS)


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: None is empty, a risky text gets a leading apostrophe."""
    if value is None:
        return ""
    return "'" + value if risky(value) else value


def append_xlsx_row(sheet: Any, values: Iterable[Any]) -> None:
    """``sheet.append(values)``, with every risky text written as text (never a formula)."""
    values = list(values)
    sheet.append(values)
    row = sheet.max_row
    for column, value in enumerate(values, start=1):
        if risky(value):
            cell = sheet.cell(row=row, column=column)
            cell.value = value
            cell.data_type = "s"
            cell.quotePrefix = True
