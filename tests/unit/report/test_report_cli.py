"""``govcloud report usage|service`` end to end (issue 15, items 2, 4, 5): through the store a month's report
pro-rates what lived a third of it; requesters see only their tenants, approvers all; an unknown tenant,
another's tenant, a bad period and a missing rates file exit 2 naming what is wrong; the table aligns
Chinese; CSV and JSON carry the same numbers; the spreadsheet reads back with openpyxl (one sheet per
section, Chinese headers, numbers as numbers)."""

from __future__ import annotations

import csv
import datetime
import io
import json
import shutil
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from rich.cells import cell_len

from govcloud.cli.report_xlsx import write_xlsx
from govcloud.engine import provision, reports, tickets
from govcloud.planner.periods import parse_period
from tests.support.fakecloud import FakeCloud, three_centres
from tests.support.tickets import REPO, write_ticket
from tests.unit.daemon.test_daemon import context
from tests.unit.engine import test_reads
from tests.unit.engine.test_reads import OTHER, OWN, cli

world = test_reads.world
NOW = datetime.datetime.now(datetime.UTC).strftime("%Y-%m")


def usage_json(world: dict[str, Any], user: str, *extra: str) -> tuple[int, Any, str]:
    code, out, err = cli(world, "report", "usage", "--period", NOW, "-o", "json", *extra, user=user)
    return code, json.loads(out) if code == 0 else None, err


def tenants_in(report: dict[str, Any], section: str = "usage") -> set[str]:
    (found,) = [s for s in report["sections"] if s["key"] == section]
    return {row["tenant"] for row in found["rows"]}


@pytest.fixture(scope="module", autouse=True)
def sampled(world: dict[str, Any]) -> None:
    """The quotas enter the history with a sample (the daemon's timer, here the operator's command)."""
    code, out, err = cli(world, "report", "sample", "-o", "json", user="yunwei-he")
    assert code == 0 and json.loads(out)["written"] > 20, err


def test_a_requester_sees_its_tenants_and_an_approver_all(world: dict[str, Any]) -> None:
    code, mine, err = usage_json(world, "caijing")
    assert code == 0, err
    assert tenants_in(mine) == {OWN} and tenants_in(mine, "quota") == {OWN}
    code, everything, err = usage_json(world, "shenpi-chen")
    assert code == 0 and tenants_in(everything) == {OWN, OTHER}
    assert len(tenants_in(everything, "quota")) > 20
    code, only, _ = usage_json(world, "admin", "--tenant", OTHER)
    assert code == 0 and tenants_in(only) == {OTHER}


@pytest.mark.parametrize(("args", "said"), [
    (["--tenant", OTHER], "is a requester for"),
    (["--tenant", "gd-nobody"], "no tenant 'gd-nobody'"),
    (["--period", "2026-13"], "--period"),
    (["--period", "2026-11..2026-01"], "--period"),
])
def test_bad_input_exits_2_and_says_why(world: dict[str, Any], args: list[str], said: str) -> None:
    for command in ("usage", "service"):
        code, out, err = cli(world, "report", command, *args, user="caijing")
        assert code == 2 and said in err and out == "", (command, err)


def test_a_missing_rates_file_is_named(world: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "data"
    for name in ("inventory", "quotas"):
        shutil.copytree(REPO / name, root / name)
    for name in ("tenants.yaml", "users.yaml"):
        shutil.copy(REPO / name, root / name)
    for command in ("usage", "service"):
        code, _, err = cli(world, "--root", str(root), "report", command, user="caijing")
        assert code == 2 and "error: rates.yaml: " in err and "no such file" in err, err


def test_the_table_aligns_chinese_columns(world: dict[str, Any]) -> None:
    code, out, err = cli(world, "report", "usage", "--period", NOW, "--section", "quota", user="shenpi-chen")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith(("│", "┃"))]
    assert len(lines) > 20 and "部门" in lines[0]
    borders = {tuple(i for i, ch in enumerate(line) if ch in "│┃") for line in lines}
    widths = {cell_len(line) for line in lines}
    assert len(widths) == 1 and len(borders) > 1  # same display width although the characters' positions differ


def test_csv_and_json_agree(world: dict[str, Any]) -> None:
    _, report, _ = usage_json(world, "shenpi-chen")
    code, out, err = cli(world, "report", "usage", "--period", NOW, "-o", "csv", "--section", "summary", user="shenpi-chen")
    assert code == 0, err
    (summary,) = [s for s in report["sections"] if s["key"] == "summary"]
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == [c["title"] for c in summary["columns"]]
    assert [r[1] for r in rows[1:]] == [r["tenant"] for r in summary["rows"]]


def test_the_spreadsheet_reads_back(world: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "usage.xlsx"
    code, _, err = cli(world, "report", "usage", "--period", NOW, "-o", "xlsx", "--file", str(path), user="shenpi-chen")
    assert code == 0, err
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["部门汇总", "资源使用", "灾备预留", "配额占用"]
    header = [c.value for c in book["配额占用"][1]]
    assert header[:3] == ["部门", "租户", "云"] and "闲置配额价值" in header
    report = reports.usage(test_reads.ctx_as(world, "shenpi-chen"), parse_period(NOW))  # one report, written and read back
    write_xlsx(report, path)
    book = openpyxl.load_workbook(path)
    for section in report.sections:
        sheet = book[section.title]
        assert [c.value for c in sheet[1]] == [c.title for c in section.columns]
        values = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
        assert values == [[row.get(c.key) for c in section.columns] for row in section.rows]
    quota = book["配额占用"]
    column = header.index("配额价值")
    assert all(isinstance(row[column].value, (int, float)) for row in quota.iter_rows(min_row=2)) and quota.max_row > 20
    assert quota.cell(row=2, column=header.index("配额使用率") + 1).number_format == "0.0%"
    code, _, err = cli(world, "report", "usage", "-o", "xlsx", user="shenpi-chen")
    assert code == 2 and "--file" in err


def test_service_lists_lead_times_and_centres(world: dict[str, Any]) -> None:
    code, out, err = cli(world, "report", "service", "--period", NOW, "-o", "json", user="caijing")
    assert code == 0, err
    report = json.loads(out)
    sections = {s["key"]: s for s in report["sections"]}
    (lead,) = sections["lead_times"]["rows"]
    assert lead["tenant"] == OWN and lead["total_hours"] is not None
    assert {(r["cloud"], r["centre"]) for r in sections["availability"]["rows"]} >= {("gd-prov", "gz-main"), ("gd-prov", "sg-dr")}
    (month,) = sections["months"]["rows"]
    assert month["delivered"] == 1 and month["month"] == NOW


def test_through_the_store_a_third_of_november_counts_a_third(tmp_path: Path) -> None:
    cloud: FakeCloud = three_centres()
    clock = [datetime.datetime(2026, 11, 11, tzinfo=datetime.UTC)]

    def as_user(user: str) -> Any:
        ctx = context(tmp_path, cloud, user=user)
        ctx.clock = lambda: clock[0]
        return ctx

    ticket_id, path = write_ticket(tmp_path, tenant=OWN, system="mzoa", requester="caijing", roles=(), expires="2027-01-31",
                                   vms=[{"name": "web", "count": 1, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"}])
    (row,) = tickets.submit(as_user("caijing"), [path])
    if row.state == "submitted":
        tickets.approve(as_user("shenpi-chen"), ticket_id)
    provision.apply(as_user("yunwei-he"), [ticket_id])
    clock[0] = datetime.datetime(2026, 11, 21, tzinfo=datetime.UTC)
    provision.retire(as_user("yunwei-he"), ticket_id)
    clock[0] = datetime.datetime(2026, 12, 3, tzinfo=datetime.UTC)
    report = reports.usage(as_user("caijing"), parse_period("2026-11"))
    (usage,) = report.section("usage").rows
    small = as_user("caijing").state.topology.flavor("gc.small")
    assert small is not None
    assert usage["instance_hours"] == 240 and usage["vcpu_hours"] == 240 * small.vcpus
    rates = reports.rates(as_user("caijing"))
    assert usage["cost"] == pytest.approx(round(240 * (rates.default.instance_hour + small.vcpus * rates.default.vcpu_hour
                                                       + small.ram_mb / 1024 * rates.default.ram_gb_hour
                                                       + small.disk_gb * rates.default.disk_gb_hour), 2))
    (lead,) = reports.service(as_user("caijing"), parse_period("2026-11")).section("lead_times").rows
    assert lead["ticket"] == ticket_id and lead["total_hours"] == 0.0
