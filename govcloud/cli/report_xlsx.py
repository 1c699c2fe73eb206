"""The spreadsheet the office circulates: one sheet per section, Chinese headers, numbers stored as numbers
(money with two decimals, shares as percentages) so that a reader can sum and sort them. The only
importer of openpyxl (an import-linter contract).
"""

from __future__ import annotations

import re
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from govcloud.planner.reports import Report

FORMATS = {"money": "#,##0.00", "percent": "0.0%", "number": "#,##0.00", "hours": "0.00", "int": "0"}
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def _width(text: str) -> int:
    """Columns a text takes in a spreadsheet (a Chinese character takes two)."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def write_xlsx(report: Report, path: Path) -> None:
    book = Workbook()
    book.remove(book.active)
    book.properties.title = report.title
    for section in report.sections:
        sheet = book.create_sheet(_SHEET_FORBIDDEN.sub("_", section.title)[:31])
        sheet.append([c.title for c in section.columns])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in section.rows:
            sheet.append([row.get(c.key) for c in section.columns])
        for index, column in enumerate(section.columns, 1):
            letter = get_column_letter(index)
            if column.kind in FORMATS:
                for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                    cell.number_format = FORMATS[column.kind]
            widest = max([_width(column.title), *(_width(str(r.get(column.key) or "")) for r in section.rows[:500])])
            sheet.column_dimensions[letter].width = min(60, widest + 2)
        sheet.freeze_panes = "A2"
    book.save(path)
