"""What a report is, whatever computed it: titled sections of typed columns and rows, and charts.

The planners (chargeback.py, service.py, idle.py) build a ``Report``; the CLI prints it as a table, CSV,
JSON, a spreadsheet (one sheet per section, Chinese headers, numbers as numbers) or an HTML page with the
charts — so every format shows the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ColumnKind = Literal["text", "int", "number", "money", "percent", "hours"]


@dataclass(frozen=True)
class Column:
    """``key`` in the rows, ``title`` shown (Chinese), ``kind`` says how to print and store it."""

    key: str
    title: str
    kind: ColumnKind = "text"


@dataclass(frozen=True)
class Section:
    """One table of the report (one sheet of the spreadsheet)."""

    key: str
    title: str
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "columns": [c.__dict__ for c in self.columns], "rows": self.rows}


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float]


@dataclass(frozen=True)
class Chart:
    """``lines`` (one line per series over ``x``), ``bars`` (one series, a bar per x) or ``histogram``
    (one series of counts per bucket named by ``x``)."""

    key: str
    title: str
    kind: Literal["lines", "bars", "histogram"]
    x: list[str]
    series: list[Series]
    unit: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "kind": self.kind, "x": self.x, "unit": self.unit,
                "series": [s.__dict__ for s in self.series]}


@dataclass(frozen=True)
class Report:
    kind: str
    title: str
    period: str
    sections: list[Section]
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    currency: str = ""

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "title": self.title, "period": self.period, "currency": self.currency, "notes": self.notes,
                "sections": [s.as_dict() for s in self.sections], "charts": [c.as_dict() for c in self.charts]}


def merge(title: str, reports: list[Report]) -> Report:
    """Several reports as one (the HTML page of a month: usage, service and idle together)."""
    first = reports[0]
    return Report(kind="+".join(r.kind for r in reports), title=title, period=first.period,
                  sections=[s for r in reports for s in r.sections], charts=[c for r in reports for c in r.charts],
                  notes=[n for r in reports for n in r.notes], currency=next((r.currency for r in reports if r.currency), ""))
