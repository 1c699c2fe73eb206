"""A report's long sections are written without rich's layout (issue 16: 10,000 rows took 4 s of CPU),
and the text is the very one rich prints: right-justified numbers, CJK names, empty cells, an empty section."""

from __future__ import annotations

import random

import pytest

from govcloud.cli import report_output
from govcloud.planner.reports import Column, Report, Section


def report(count: int, *, name: str = "佛山市顺德区人民政府") -> Report:
    rng = random.Random(count)
    columns = (Column("tenant", "租户"), Column("name", "单位名称"), Column("cloud", "云"), Column("hours", "vCPU·小时", "number"),
               Column("cost", "费用", "money"), Column("share", "占比", "percent"), Column("note", "备注"))
    rows = [{"tenant": f"gd-t{i:05d}", "name": rng.choice(["广东省公安厅", name, "ab", ""]), "cloud": "gd-prov",
             "hours": rng.random() * 1e5, "cost": rng.random() * 1e6, "share": rng.random(), "note": rng.choice([None, "DR", "超配额"])}
            for i in range(count)]
    return Report(kind="usage", title="资源使用与费用", period="2026-11", currency="CNY", notes=["注：示例"],
                  sections=[Section("usage", "按部门", columns, rows), Section("empty", "空", columns, [])])


def by_rich(monkeypatch: pytest.MonkeyPatch, value: Report) -> str:
    with monkeypatch.context() as patch:
        patch.setattr(report_output, "FAST_ROWS", 10**9)
        return report_output.table_text(value)


@pytest.mark.parametrize("count", [201, 1000])
def test_a_long_section_is_what_rich_prints(count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    value = report(count)
    assert report_output._plain(value.sections[0], "t") is not None  # the fast writer is the one used
    assert report_output.table_text(value) == by_rich(monkeypatch, value)


def test_a_section_wider_than_the_page_or_with_a_line_break_is_left_to_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in (report(300, name="很长的名字" * 30), report(300, name="两\n行")):
        assert report_output._plain(value.sections[0], "t") is None
        assert report_output.table_text(value) == by_rich(monkeypatch, value)
