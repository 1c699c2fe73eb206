"""The import contracts bite (issue 12, item 3): one violation of each kind is planted in a temporary copy
of the package and ``lint-imports`` must report exactly the contract it breaks. A contract that lists its
sources by hand can silently miss a package; this test is how we know none does."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).parent / "lint-imports"

PLANTS = {
    # module of the copy that gets the import → (the import, the contract name that must break)
    "govcloud/engine/leases.py": ("import click", "click and rich only in govcloud.cli"),
    "govcloud/failover/plan_steps_planted.py": ("import sqlalchemy", "SQLAlchemy and alembic only in govcloud.store"),
    "govcloud/daemon.py": ("import alembic", "SQLAlchemy and alembic only in govcloud.store"),
    "govcloud/engine/reconcile.py": ("import openstack", "openstacksdk and keystoneauth only in govcloud.drivers.openstack"),
    "govcloud/failover/health.py": ("import yaml", "PyYAML only in govcloud.model.loading"),
    "govcloud/planner/quota.py": ("import subprocess", "subprocess only where a process is really started"),
    # fencing runs ipmitool and fence agents only through drivers/ipmi.py and drivers/fence_command.py
    "govcloud/failover/fence.py": ("import subprocess", "subprocess only where a process is really started"),
    "govcloud/drivers/openstack.py": ("import ansible_runner", "ansible_runner only in govcloud.drivers.ansible"),
    "govcloud/store/facts.py": ("import prometheus_client", "prometheus_client only in govcloud.exporter"),
    "govcloud/engine/ticket_base.py": ("import govcloud.engine.tickets", "No import circles between the modules of any package"),
    "govcloud/cli/output.py": ("import govcloud.store.tickets", "The CLI never imports the state store"),
}


def lint(root: Path) -> str:
    done = subprocess.run([str(LINT), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300)
    return " ".join((done.stdout + done.stderr).split())  # contract names are wrapped at the terminal's width


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("plant")
    shutil.copytree(REPO / "govcloud", root / "govcloud", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / ".importlinter", root / ".importlinter")
    for relative, (line, _) in PLANTS.items():
        path = root / relative
        text = path.read_text(encoding="utf-8") if path.exists() else '"""Planted by the test."""\n'
        path.write_text(text + f"\n{line}  # planted\n", encoding="utf-8")
    return lint(root)


@pytest.mark.parametrize("module", list(PLANTS))
def test_each_planted_violation_breaks_its_contract(planted: str, module: str) -> None:
    _, contract = PLANTS[module]
    assert f"{contract}" in planted
    name_to_verdict = planted.split(contract, 1)[1]
    assert name_to_verdict.split(" BROKEN", 1)[0].count(" KEPT") == 0, f"{contract} kept despite {module}"
    assert module.removesuffix(".py").rsplit("/", 1)[1] in planted


def test_the_real_package_keeps_every_contract() -> None:
    report = lint(REPO)
    assert "BROKEN" not in report and " 0 broken" in report, report[-2000:]


def test_the_cli_checks_no_permission_itself() -> None:
    """Permission checks sit where the work starts (engine or failover), once for the CLI and the daemon
    alike (issue 12, item 4): a ``require(`` in a CLI module is a second, divergent place."""
    cli = Path(__file__).resolve().parents[2] / "govcloud" / "cli"
    found = [f"{p.name}:{n}" for p in sorted(cli.glob("*.py")) for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if re.search(r"\brequire\(", line)]
    assert found == []
