"""The data commands (validate, tenants, topology, quota) on the minimal test data and the shipped sample data.

The CLI runs in-process through ``govcloud.cli.main`` — the function the console script calls, which maps
errors to exit codes — with click's test isolation capturing stdout and stderr.
"""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from govcloud.cli import main

REPO = Path(__file__).resolve().parents[2]
MINIMAL = REPO / "tests" / "data" / "minimal"
BROKEN = sorted((REPO / "examples" / "broken").glob("*.yaml"))


def run(*args: str) -> tuple[int, str, str]:
    """``govcloud ARGS``: exit code, stdout, stderr."""
    code: Any = None
    with CliRunner().isolation() as (out, err, _):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue().decode("utf-8"), err.getvalue().decode("utf-8")


def width(text: str) -> int:
    """Display width in a terminal: East Asian wide and full-width characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def table_rows(text: str) -> list[str]:
    """The lines of rich tables (box-drawing borders and rows)."""
    return [line for line in text.splitlines() if line[:1] in "┏┃┡│└┗"]


def assert_clean(code: int, out: str, err: str, expected_code: int) -> None:
    assert code == expected_code, (code, out, err)
    assert "Traceback" not in out + err
    assert "internal error" not in err


# --- validate -----------------------------------------------------------------------------------


def test_validate_repo_data_ok() -> None:
    code, out, err = run("--root", str(REPO), "validate")
    assert_clean(code, out, err, 0)
    assert out.startswith("ok: 27 clouds, ")
    assert "65 tenants" in out


def test_validate_minimal_ok() -> None:
    code, out, err = run("--root", str(MINIMAL), "validate")
    assert_clean(code, out, err, 0)
    assert out == "ok: 2 clouds, 4 centres, 3 tenants, 4 systems, 3 quotas, 1 tickets\n"
    assert err == ""


def test_validate_repo_json_ok() -> None:
    code, out, err = run("--root", str(REPO), "validate", "-o", "json")
    assert_clean(code, out, err, 0)
    report = json.loads(out)
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["tenants"] == 65


@pytest.mark.parametrize("path", BROKEN, ids=[p.name for p in BROKEN])
def test_validate_broken_example(path: Path) -> None:
    code, out, err = run("--root", str(REPO), "validate", str(path))
    assert_clean(code, out, err, 2)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors
    for line in errors:
        assert line.startswith(f"error: examples/broken/{path.name}:"), line
        location = line.removeprefix("error: ").split(" ", 1)[0]
        assert location.rstrip(":").rsplit(":", 1)[1].isdigit(), line
    assert err.splitlines()[-1] == f"{len(errors)} problem(s) found; nothing was changed"


def test_broken_examples_exist() -> None:
    assert len(BROKEN) >= 4


def test_validate_missing_ticket_file() -> None:
    code, out, err = run("--root", str(MINIMAL), "validate", str(MINIMAL / "tickets" / "nope.yaml"))
    assert_clean(code, out, err, 2)
    assert "tickets/nope.yaml" in err


def test_validate_alternative_files(tmp_path: Path) -> None:
    """--topology/--tenants/--quotas point at other files; problems name them."""
    tenants = tmp_path / "other-tenants.yaml"
    tenants.write_text((MINIMAL / "tenants.yaml").read_text(encoding="utf-8").replace("parent: gd-zf", "parent: gd-zz"), encoding="utf-8")
    code, out, err = run("--root", str(MINIMAL), "validate", "--tenants", str(tenants))
    assert_clean(code, out, err, 2)
    assert err.splitlines()[0] == (f"error: {tenants}:15: tenants[1].parent: unknown parent tenant (found: 'gd-zz'; "
                                   "expected: the id of a tenant in tenants.yaml)")


def test_validate_bad_output_option_is_usage_error() -> None:
    code, out, err = run("--root", str(MINIMAL), "validate", "-o", "xml")
    assert_clean(code, out, err, 2)
    assert "xml" in err


# --- tenants ------------------------------------------------------------------------------------


@pytest.mark.parametrize("root", [REPO, MINIMAL], ids=["repo", "minimal"])
def test_tenants_list_aligns_chinese(root: Path) -> None:
    code, out, err = run("--root", str(root), "tenants", "list")
    assert_clean(code, out, err, 0)
    rows = table_rows(out)
    assert len(rows) > 4
    assert any(unicodedata.east_asian_width(ch) == "W" for ch in "".join(rows))
    assert len({width(row) for row in rows}) == 1, sorted({width(row) for row in rows})


def test_tenants_list_json_repo() -> None:
    code, out, err = run("--root", str(REPO), "tenants", "list", "-o", "json")
    assert_clean(code, out, err, 0)
    tenants = json.loads(out)
    assert len(tenants) == 65
    gat = next(t for t in tenants if t["id"] == "gd-gat")
    assert gat == {"id": "gd-gat", "name": "广东省公安厅", "kind": "department", "parent": "gd-zf",
                   "clouds": ["gd-prov", "sec-police"], "systems": 4}


def test_tenants_list_yaml_repo() -> None:
    code, out, err = run("--root", str(REPO), "tenants", "list", "-o", "yaml")
    assert_clean(code, out, err, 0)
    tenants = yaml.safe_load(out)
    assert len(tenants) == 65
    assert "广东省公安厅" in out  # not \u-escaped


def test_tenants_show() -> None:
    code, out, err = run("--root", str(REPO), "tenants", "show", "gd-gat")
    assert_clean(code, out, err, 0)
    assert out.splitlines()[0] == "gd-gat  广东省公安厅  (department, parent gd-zf)"
    assert "clouds: gd-prov, sec-police" in out
    assert "户籍管理系统" in out
    rows = table_rows(out)
    assert rows


def test_tenants_show_json_minimal() -> None:
    code, out, err = run("--root", str(MINIMAL), "tenants", "show", "gd-gat", "-o", "json")
    assert_clean(code, out, err, 0)
    assert json.loads(out) == {
        "id": "gd-gat", "name": "广东省公安厅", "kind": "department", "parent": "gd-zf", "clouds": ["gd-prov"],
        "contacts": [{"name": "孙凯", "email": "sunkai@gdga.gov.cn", "phone": None, "ssh_key": None}],
        "systems": [{"id": "hukou", "name": "户籍管理系统", "protection": "dr", "owner": "孙凯"},
                    {"id": "oa", "name": "内部办公系统", "protection": "none", "owner": "孙凯"}],
    }


def test_tenants_show_unknown() -> None:
    code, out, err = run("--root", str(REPO), "tenants", "show", "nope")
    assert_clean(code, out, err, 2)
    assert out == ""
    assert err == "error: no tenant 'nope' in tenants.yaml (try `govcloud tenants list`)\n"


def test_tenants_list_on_broken_data_reports_problems(tmp_path: Path) -> None:
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "topology.yaml").write_text("version: 1\nclouds: [\n", encoding="utf-8")
    code, out, err = run("--root", str(tmp_path), "tenants", "list")
    assert_clean(code, out, err, 2)
    assert err.splitlines() == [
        "error: inventory/topology.yaml:3: YAML syntax error (found: expected the node content, but found '<stream end>'; expected: valid YAML)",
        "error: quotas: no quotas (found: no *.yaml files; expected: at least one quota file)",
        "error: tenants.yaml: missing file (found: no such file; expected: a readable file)",
        "3 problem(s) found; nothing was changed",
    ]


# --- topology and quota -------------------------------------------------------------------------


def test_topology_show_json() -> None:
    code, out, err = run("--root", str(REPO), "topology", "show", "-o", "json")
    assert_clean(code, out, err, 0)
    rows = json.loads(out)
    assert len({r["cloud"] for r in rows}) == 27
    main_row = next(r for r in rows if r["centre"] == "gz-main")
    assert main_row["vcpus"] == 8192 * 4
    assert next(r for r in rows if r["centre"] == "sg-dr")["region"] == "gd-sg"


def test_topology_show_minimal_json() -> None:
    code, out, err = run("--root", str(MINIMAL), "topology", "show", "-o", "json")
    assert_clean(code, out, err, 0)
    rows = json.loads(out)
    assert [(r["cloud"], r["centre"], r["role"], r["region"], r["vcpus"]) for r in rows] == [
        ("gd-prov", "gz-main", "main", "gd-gz", 4000),
        ("gd-prov", "gz-backup", "secondary", "gd-gz", 500),
        ("gd-prov", "sg-dr", "dr", "gd-sg", 500),
        ("city-foshan", "fs-main", "main", "gd-fs", 400),
    ]


def test_topology_show_table_aligned() -> None:
    code, out, err = run("--root", str(REPO), "topology", "show")
    assert_clean(code, out, err, 0)
    assert len({width(row) for row in table_rows(out)}) == 1


def minimal_with_an_operator(tmp_path: Path) -> Path:
    """The minimal data (which has no users.yaml) and one operator to act as: reads need an acting user."""
    root = tmp_path / "minimal"
    shutil.copytree(MINIMAL, root)
    (root / "users.yaml").write_text("version: 1\nusers:\n- {id: ops, name: 运维, role: operator}\n", encoding="utf-8")
    return root


def test_quota_show_json(tmp_path: Path) -> None:
    code, out, err = run("--root", str(REPO), "--db", str(tmp_path / "s.db"), "--as", "yunwei-he", "quota", "show", "gd-gat", "-o", "json")
    assert_clean(code, out, err, 0)
    rows = json.loads(out)
    assert {r["tenant"] for r in rows} == {"gd-gat"}
    prov = next(r for r in rows if r["cloud"] == "gd-prov")
    assert (prov["limit"]["instances"], prov["limit"]["vcpus"], prov["warn_at"]) == (200, 1000, 0.9)


def test_quota_show_minimal_json(tmp_path: Path) -> None:
    code, out, err = run("--root", str(minimal_with_an_operator(tmp_path)), "--db", str(tmp_path / "s.db"), "--as", "ops",
                         "quota", "show", "gd-gat", "-o", "json")
    assert_clean(code, out, err, 0)
    zero = {"instances": 0, "vcpus": 0, "ram_mb": 0, "disk_gb": 0}
    assert json.loads(out) == [{"tenant": "gd-gat", "cloud": "gd-prov",
                                "limit": {"instances": 40, "vcpus": 160, "ram_mb": 327680, "disk_gb": 8000},
                                "reserved": zero, "used": zero, "warn_at": 0.8, "warning": False, "override": None}]


def test_quota_show_unknown_tenant(tmp_path: Path) -> None:
    code, out, err = run("--root", str(minimal_with_an_operator(tmp_path)), "--db", str(tmp_path / "s.db"), "--as", "ops",
                         "quota", "show", "nope")
    assert_clean(code, out, err, 2)
    assert err == "error: no tenant 'nope' in tenants.yaml (try `govcloud tenants list`)\n"


def test_validate_json_with_lone_surrogate(tmp_path: Path) -> None:
    ticket = tmp_path / "t.yaml"
    ticket.write_text((MINIMAL / "tickets" / "t-1.yaml").read_text(encoding="utf-8").replace("id: t-1", 'id: "\\ud800"'), encoding="utf-8")
    code, out, err = run("--root", str(MINIMAL), "validate", "-o", "json", str(ticket))
    assert_clean(code, out, err, 2)
    assert json.loads(out)["problems"]
