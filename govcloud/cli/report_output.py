"""Printing a ``Report`` (planner/reports.py): an aligned table per section (rich measures East Asian
wide characters as two columns, so Chinese headers and names line up), CSV, JSON; the spreadsheet and the
HTML page have their own modules (report_xlsx.py, report_html.py).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from govcloud.cli.output import FAST_ROWS, cell_len, plain_table
from govcloud.planner.reports import Column, Report, Section


def cell(column: Column, value: Any) -> str:
    """A value as a person reads it: money with two decimals and thousands separators, shares as percent."""
    if value is None:
        return ""
    if column.kind == "money":
        return f"{float(value):,.2f}"
    if column.kind == "percent":
        return f"{float(value) * 100:.1f}%"
    if column.kind in ("number", "hours"):
        return f"{float(value):,.2f}"
    return str(value)


def table_text(report: Report) -> str:
    """Every section as an aligned table (rich; a terminal gets its own width, anything else 250 columns).
    A section of more than ``FAST_ROWS`` rows is written by ``output.plain_table`` (the same characters;
    rich's layout of 10,000 rows takes seconds)."""
    buffer = io.StringIO()
    out = Console(file=buffer, width=WIDTH, no_color=True, highlight=False, soft_wrap=True)
    out.print(f"{report.title}" + (f"（{report.currency}）" if report.currency else ""))
    for section in report.sections:
        title = f"{section.title}（{len(section.rows)} 行）"
        fast = _plain(section, title) if len(section.rows) > FAST_ROWS else None
        if fast is not None:
            buffer.write(fast)
            continue
        table = Table(title=title, header_style="bold", title_justify="left")
        for column in section.columns:
            table.add_column(column.title, justify="left" if column.kind == "text" else "right", overflow="fold")
        for row in section.rows:
            table.add_row(*(cell(c, row.get(c.key)) for c in section.columns))
        out.print(table)
    for note in report.notes:
        out.print(note)
    return buffer.getvalue()


WIDTH = 250
"""The width a report's tables are laid out for (a file or a pipe as often as a terminal)."""


def _plain(section: Section, title: str) -> str | None:
    """The section as rich prints it when every column has its natural width (``output.plain_table``), or
    None when rich would fold some (wider than ``WIDTH``) or a cell holds a line break."""
    cols = [c.title for c in section.columns]
    cells = [[cell(c, row.get(c.key)) for c in section.columns] for row in section.rows]
    widths = [max([cell_len(head), *(cell_len(line[i]) for line in cells)]) for i, head in enumerate(cols)]
    right = [c.kind != "text" for c in section.columns]
    return plain_table(title, cols, widths, cells, styled=False, terminal=False, limit=WIDTH, right=right)


def _csv_section(section: Section, writer: Any) -> None:
    writer.writerow([c.title for c in section.columns])
    for row in section.rows:
        writer.writerow(["" if row.get(c.key) is None else row.get(c.key) for c in section.columns])


def to_csv(report: Report, section: str | None = None) -> str:
    """One section as plain CSV; without ``section`` every section, each after a ``# title`` line."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    chosen = [report.section(section)] if section else report.sections
    for i, part in enumerate(chosen):
        if section is None:
            if i:
                buffer.write("\n")
            buffer.write(f"# {part.title}\n")
        _csv_section(part, writer)
    return buffer.getvalue()


def render(report: Report, fmt: str, *, section: str | None = None) -> str:
    """table, csv or json as text; ``section``: that section only."""
    if section is not None:
        if section not in {s.key for s in report.sections}:
            raise click.BadParameter(f"{section!r}: this report's sections are {', '.join(s.key for s in report.sections)}",
                                     param_hint="--section")
        report = dataclasses.replace(report, sections=[report.section(section)], charts=[])
    if fmt == "json":
        return json.dumps(report.as_dict(), ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        return to_csv(report, section)
    return table_text(report)
