"""Who the CLI and the daemon act as (issue 11, items 3 and 4): no hidden ``system`` admin, a daemon
only as an operator service identity, ``db upgrade`` only for admins; each refused with exit 2 and
nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tickets import REPO
from tests.unit.model.test_corpus import make_dataset, problems_of
from tests.unit.test_cli_data import run


def _cli(tmp_path: Path, *args: str) -> tuple[int, str]:
    code, out, err = run("--root", str(REPO), "--db", str(tmp_path / "state.db"), *args)
    return code, out + err


@pytest.mark.parametrize("args", [("ticket", "list"), ("ticket", "approve", "t-2026-0001"), ("failover", "plan", "gz-main")])
def test_nobody_can_act_as_system(tmp_path: Path, args: tuple[str, ...]) -> None:
    code, output = _cli(tmp_path, "--as", "system", *args)
    assert code == 2 and "nobody can act as it" in output, output


def test_a_users_yaml_entry_called_system_is_refused(tmp_path: Path) -> None:
    users = "version: 1\nusers:\n- {id: system, name: 冒充者, role: admin}\n- {id: sunkai, name: 孙凯, role: requester, tenants: [gd-gat]}\n"
    root = make_dataset(tmp_path, {"users.yaml": users})
    assert problems_of(root) == ["users.yaml:3: users[0].id: reserved user id (found: 'system'; expected: another id: "
                                 "'system' is the name govcloud records for its own automatic decisions)"]


@pytest.mark.parametrize("user", ["nobody", "system", "caijing", "shenpi-chen", "admin"])
def test_the_daemon_runs_only_as_an_operator(tmp_path: Path, user: str) -> None:
    """(That an operator identity runs it is the daemon tests' business: tests/unit/daemon.)"""
    code, output = _cli(tmp_path, "--as", user, "daemon", "--once", "--listen", "none", "--inbox", str(tmp_path / "inbox"))
    assert code == 2 and ("needs role operator" in output or "nobody can act as it" in output or "unknown user" in output), output
    assert not (tmp_path / "inbox").exists()


def test_db_upgrade_needs_an_admin(tmp_path: Path) -> None:
    code, output = _cli(tmp_path, "--as", "yunwei-he", "db", "upgrade")
    assert code == 2 and "'db-upgrade' needs role admin" in output, output
    assert not (tmp_path / "state.db").exists()
    code, output = _cli(tmp_path, "db", "upgrade")
    assert code == 2 and "no acting user" in output
    code, output = _cli(tmp_path, "--as", "admin", "db", "upgrade")
    assert code == 0 and "schema at revision" in output, output
