"""What a new user meets in the first ten minutes (issue 16): JSON on stdout alone, listings that say when
they are empty and fit the terminal, stores that reads and refusals do not create, one clear error outside
the repository, help texts without reStructuredText markup.

The CLI runs in-process through ``govcloud.cli.main`` with click's test isolation (stdout and stderr apart);
the engine's clouds are the in-memory fake (``tests/support/fakecloud.py``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

import govcloud.engine.context
from govcloud.cli import cli, main
from govcloud.engine import tickets
from govcloud.engine.context import build
from govcloud.settings import Settings
from tests.support.fakecloud import FakeCloud, three_centres
from tests.support.tickets import REPO, write_ticket


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``govcloud ARGS`` under ``env`` (added to the environment): exit code, stdout, stderr."""
    code: Any = None
    with CliRunner().isolation(env=env) as (out, err, _):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue().decode("utf-8"), err.getvalue().decode("utf-8")


def width(line: str) -> int:
    """Display width in a terminal: East Asian wide and full-width characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in line)


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> FakeCloud:
    """The CLI's OpenStack drivers replaced by the in-memory cloud."""
    fake = three_centres()
    monkeypatch.setattr(govcloud.engine.context, "openstack_factory", lambda _settings: fake.driver)
    return fake


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A fresh state directory and store for the CLI, on the repository's sample data."""
    return {"GOVCLOUD_STATE_DIR": str(tmp_path / "state"), "GOVCLOUD_DB": str(tmp_path / "state.db"), "GOVCLOUD_ROOT": str(REPO),
            "GOVCLOUD_USER": "", "COLUMNS": ""}


@pytest.fixture
def approved(tmp_path: Path, env: dict[str, str], cloud: FakeCloud) -> Iterator[str]:
    """An approved three-VM ticket of gd-mzt in the CLI's store."""
    settings = Settings.from_env().with_overrides(root=str(REPO), db=env["GOVCLOUD_DB"], user="admin")
    ctx = build(dataclasses.replace(settings, state_dir=Path(env["GOVCLOUD_STATE_DIR"])), driver_factory=cloud.driver)
    ticket_id, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", roles=(), protection="ha",
                                   vms=[{"name": "web", "count": 3, "flavor": "gc.small", "cloud": "gd-prov", "centre": "any"}])
    (row,) = tickets.submit(ctx, [path])
    if row.state == "submitted":
        tickets.approve(ctx, ticket_id)
    ctx.store.engine.dispose()
    yield ticket_id


def test_apply_json_is_all_of_stdout_and_progress_goes_to_stderr(approved: str, env: dict[str, str]) -> None:
    code, out, err = run("--as", "admin", "apply", "--skip-configure", "-o", "json", env=env)
    assert code == 0, (out, err)
    assert json.loads(out) == [{"ticket": approved, "state": "active", "detail": "3 server(s) ACTIVE"}]
    assert f"ticket {approved}" in err and "ACTIVE" in err  # the progress lines, where a pipe does not read them


def test_vm_list_json_has_the_server_id(approved: str, env: dict[str, str], cloud: FakeCloud) -> None:
    assert run("--as", "admin", "apply", "--skip-configure", env=env)[0] == 0
    code, out, err = run("--as", "admin", "vm", "list", "-o", "json", env=env)
    assert code == 0, err
    listed = json.loads(out)
    assert sorted(vm["server"] for vm in listed) == sorted(cloud.servers)
    assert all(vm["vm"] == cloud.servers[vm["server"]][1].name for vm in listed)


def test_vm_list_fits_80_columns_and_wide_shows_everything(approved: str, env: dict[str, str]) -> None:
    assert run("--as", "admin", "apply", "--skip-configure", env=env)[0] == 0
    code, out, _ = run("--as", "admin", "vm", "list", env=env | {"COLUMNS": "80"})
    assert code == 0
    assert max(width(line) for line in out.splitlines()) <= 80, out
    assert f"gd-mzt-mzoa-{approved}"[:10] in out and "server" not in out
    code, out, _ = run("--as", "admin", "vm", "list", "--wide", env=env | {"COLUMNS": "80"})
    assert code == 0
    assert max(width(line) for line in out.splitlines()) > 80
    assert all(name in out for name in ("server", "tenant", "flavor", f"gd-mzt-mzoa-{approved}-1"))


@pytest.mark.parametrize("columns", [80, 60, 40])
def test_chinese_tables_fit_the_terminal_with_an_ellipsis(columns: int) -> None:
    """tenants list has Chinese names (two columns per character) and is ~130 columns wide in full."""
    code, out, err = run("--root", str(REPO), "tenants", "list", env={"COLUMNS": str(columns)})
    assert code == 0, err
    lines = out.splitlines()
    assert max(width(line) for line in lines) <= columns, out
    assert "…" in out
    assert len([line for line in lines if line.startswith("│")]) == 65  # one line per tenant: truncated, never wrapped


def test_an_empty_listing_says_so_and_a_read_creates_no_store(env: dict[str, str], tmp_path: Path) -> None:
    code, out, err = run("--as", "admin", "vm", "list", env=env)
    assert (code, out, err) == (0, "no VMs\n", "")
    code, out, _ = run("--as", "admin", "ticket", "list", env=env)
    assert (code, out) == (0, "no tickets\n")
    code, out, _ = run("--as", "admin", "vm", "list", "-o", "json", env=env)
    assert (code, json.loads(out)) == (0, [])
    for args, said in ((("audit", "list"), "no audit records\n"), (("drift", "list"), "no findings (no reconcile pass recorded one)\n"),
                       (("apply",), "nothing to apply (no approved ticket, no interrupted run or retirement)\n")):
        code, out, err = run("--as", "admin", *args, env=env)
        assert (code, out) == (0, said), (args, out, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no state directory, no store, no audit key


def test_a_refused_command_creates_nothing(env: dict[str, str], tmp_path: Path) -> None:
    ticket = REPO / "tickets" / "t-2026-0001-small.yaml"
    for args in (("vm", "list"), ("ticket", "submit", str(ticket)), ("--as", "nobody", "ticket", "submit", str(ticket)),
                 ("tenants", "sync")):
        code, out, err = run(*args, env=env)
        assert code == 2 and "Traceback" not in err, (args, out, err)
        assert "no acting user" in err or "unknown user 'nobody'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_store_in_a_missing_directory_is_an_error_naming_it(env: dict[str, str], tmp_path: Path) -> None:
    ticket = REPO / "tickets" / "t-2026-0001-small.yaml"
    missing = tmp_path / "no" / "such"
    for args in (("vm", "list"), ("ticket", "submit", str(ticket)), ("audit", "verify"), ("db", "status"), ("db", "upgrade")):
        code, out, err = run("--as", "admin", "--db", str(missing / "x.db"), *args, env=env)
        assert code == 2, (args, out, err)
        assert f"directory {missing} does not exist" in err, (args, err)
    assert not (tmp_path / "no").exists()


def test_a_submit_still_creates_the_store(env: dict[str, str]) -> None:
    code, out, err = run("--as", "caijing", "ticket", "submit", str(REPO / "tickets" / "t-2026-0001-small.yaml"), env=env)
    assert code == 0, err
    assert Path(env["GOVCLOUD_DB"]).is_file()
    code, out, _ = run("--as", "admin", "ticket", "list", env=env)
    assert code == 0 and "t-2026-0001" in out


def test_outside_the_repository_one_error_names_root_and_the_variable(tmp_path: Path) -> None:
    code, out, err = run("--as", "admin", "vm", "list", env={"GOVCLOUD_ROOT": str(tmp_path / "elsewhere")})
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 2 and lines[1] == "1 problem(s) found; nothing was changed", err
    assert "no govcloud data here" in lines[0] and "--root DIR" in lines[0] and "GOVCLOUD_ROOT" in lines[0]
    code, _, err = run("validate", env={"GOVCLOUD_ROOT": str(tmp_path)})
    assert code == 2 and err.count("error:") == 1 and "--root" in err


def _commands(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


@pytest.mark.parametrize("path", list(_commands(cli)), ids=lambda p: " ".join(p) or "govcloud")
def test_help_has_no_markup_and_no_summary_cut_at_an_abbreviation(path: tuple[str, ...]) -> None:
    code, out, err = run(*path, "--help")
    assert code == 0, err
    assert "``" not in out, out
    summaries = re.findall(r"^  \S+\s{2,}(.+)$", out.split("Commands:", 1)[1], re.M) if "Commands:" in out else []
    assert not [s for s in summaries if re.search(r"\be\.g\.?$|\bi\.e\.?$", s)], summaries


def test_one_long_cell_does_not_cost_every_row_its_end() -> None:
    """The widest cell of a column is often one long name: the typical cells (90th percentile) stay whole."""
    from govcloud.cli.output import fitted

    cols, widths = fitted(["vm", "cloud", "status"], [36, 13, 6], 3 * 3 + 1 + 40, typical=[25, 7, 6])
    assert cols == ["vm", "cloud", "status"] and sum(widths) == 40
    assert widths[0] >= 25 and widths[1] >= 7 and widths[2] == 6
    cols, widths = fitted(["vm", "cloud", "status"], [36, 13, 6], 3 * 3 + 1 + 20)  # too narrow for the typical widths
    assert sum(widths) == 20 and min(widths) >= 5
    assert fitted(["vm", "cloud", "status"], [36, 13, 6], 3 * 2 + 1 + 14)[0] == ["vm", "cloud"]  # status left out


def test_audit_verify_and_db_status_create_no_store(env: dict[str, str], tmp_path: Path) -> None:
    """The store's own read commands on a machine with no store: an answer, and nothing written."""
    code, out, err = run("--as", "admin", "audit", "verify", env=env)
    assert code == 0, (out, err)
    code, out, err = run("--as", "admin", "db", "status", env=env)
    assert code == 0, (out, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "value"), [("GOVCLOUD_FAILOVER_PARALLEL_PER_HOST", "0"), ("GOVCLOUD_FAILOVER_PARALLEL_PER_CLOUD", "eight"),
                                             ("GOVCLOUD_EXPORTER_ADDRESS", "nowhere")])
def test_a_malformed_variable_is_bad_input_naming_it_not_an_internal_error(name: str, value: str, tmp_path: Path) -> None:
    code, out, err = run("--root", str(REPO), "--db", str(tmp_path / "x.db"), "tenants", "list", env={name: value})
    assert code == 2 and out == "" and name.removeprefix("GOVCLOUD_").lower().split("_")[0] in err.lower() and "internal" not in err
    assert not (tmp_path / "x.db").exists()


def test_the_failover_bounds_come_from_the_environment() -> None:
    failover = Settings.from_env({"GOVCLOUD_FAILOVER_PARALLEL_PER_HOST": "6", "GOVCLOUD_FAILOVER_PARALLEL_PER_CLOUD": " 24 "}).failover
    assert (failover.parallel_per_host, failover.parallel_per_cloud) == (6, 24)
    assert Settings.from_env({}).failover == dataclasses.replace(failover, parallel_per_host=4, parallel_per_cloud=16)
