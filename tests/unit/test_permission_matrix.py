"""The permission matrix (issue 11's fault suite): every role × every command of the README's permission
table × the requester's own and another tenant, run through the real CLI and compared with what the
table says. The table is parsed from README.md, so the documentation and the code cannot drift apart.

Each command gets a probe that is harmless once allowed (a ticket or cloud that does not exist, a read)
so that no allowed probe reaches a cloud: the test asks only *whether the permission check let it
through*, which the refusal's wording tells (``needs role``, ``is a requester for``, ``no acting
user``, ``nobody can act as it``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.tickets import REPO, write_ticket
from tests.unit.engine import test_reads
from tests.unit.engine.test_reads import OTHER, OWN, cli

world = test_reads.world
"""The fixture of tests/unit/engine/test_reads.py: one active ticket each for caijing's tenant and sunkai's."""

ROLES = {"requester": "caijing", "approver": "shenpi-chen", "operator": "yunwei-he", "admin": "admin", "no acting user": ""}
REFUSAL = re.compile(r"needs role|is a requester for|no acting user|nobody can act as it|unknown user|may not|refused|not for tenant")


def table() -> dict[str, dict[str, str]]:
    """README's permission table: command cell → {column: cell}."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Permissions"):]
    section = section[:section.index("\n## ", 3)]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def probes(world: dict[str, Any], tmp: Path) -> dict[str, tuple[list[str], list[str] | None]]:
    """Command cell of the table → (args for the requester's own tenant, args for another tenant or None)."""
    own, other = world[OWN], world[OTHER]
    _, mine = write_ticket(tmp, tenant=OWN, system="mzoa", requester="caijing", roles=(), expires="2027-01-31",
                           vms=[{"name": "web", "count": 1, "flavor": "gc.small", "cloud": "gd-prov"}])
    _, theirs = write_ticket(tmp, tenant=OTHER, system="oa", requester="sunkai", roles=(), expires="2027-01-31",
                             vms=[{"name": "web", "count": 1, "flavor": "gc.small", "cloud": "gd-prov"}])
    return {
        "`ticket submit`": (["ticket", "submit", str(mine)], ["ticket", "submit", str(theirs)]),
        "`ticket approve`": (["ticket", "approve", "t-none"], None),
        "`ticket reject`": (["ticket", "reject", "t-none", "--reason", "x"], None),
        "`ticket retire`": (["ticket", "retire", "t-none", "--yes"], None),
        "`apply`": (["apply", "t-none"], None),
        "`configure`": (["configure", "t-none"], None),
        "`adopt`": (["adopt", "s-1", "--tenant", OWN, "--system", "mzoa", "--cloud", "nowhere", "--centre", "x"], None),
        "`tenants sync`": (["tenants", "sync", "no-such-tenant"], None),
        "`failover plan` / `failover run` / `failover cancel`": (["failover", "plan", "no-such-centre"], None),
        "`failover status` / `failover history`": (["failover", "history", "-o", "json"], None),
        "`failover fence` / `failover unfence` / `failover fencing`": (["failover", "fence", "no-such-centre", "--yes"], None),
        "`failover migrate` / `failover failback`": (["failover", "migrate", "no-such-centre", "--yes"], None),
        "`dr replicate`": (["dr", "replicate", "--system", "no-such-system"], None),
        "`dr replicas`": (["dr", "replicas", "-o", "json"], None),
        "`dr activate`": (["dr", "activate", "--cloud", "no-such-cloud"], None),
        "`dr approve`": (["dr", "approve", "424242"], None),
        "`drill run` / `drill cleanup`": (["drill", "run", "no-such-group"], None),
        "`drill history`": (["drill", "history", "-o", "json"], None),
        "`dr return`": (["dr", "return", "--cloud", "no-such-cloud"], None),
        "`plan` (placement and quota)": (["plan", own], ["plan", other]),
        "`ticket list` / `ticket show`": (["ticket", "show", own], ["ticket", "show", other]),
        "`vm list`": (["vm", "list", "-o", "json"], None),
        "`quota show [TENANT]`": (["quota", "show", OWN], ["quota", "show", OTHER]),
        "`quota explain`": (["quota", "explain", own], ["quota", "explain", other]),
        "`audit list`": (["audit", "list", "-o", "json"], None),
        "`inventory --list\\|--host\\|--static`": (["inventory", "--list"], None),
        "`drift list`": (["drift", "list", "-o", "json"], None),
        "`status`": (["status", "-o", "json"], None),
        "`report usage\\|service\\|idle\\|month`": (["report", "usage", "--tenant", OWN, "-o", "json"],
                                                      ["report", "usage", "--tenant", OTHER, "-o", "json"]),
        "`report sample`": (["report", "sample", "-o", "json"], None),
        "`db upgrade`": (["db", "upgrade"], None),
        "`audit verify`, `db status`": (["audit", "verify"], None),
        "`validate`, `topology show`, `tenants list\\|show`, `version`, `completion`": (["topology", "show"], None),
    }


SKIPPED = {
    "`plan` (saving a Terraform plan)": "needs a Terraform cloud: tests/unit/engine/test_terraform_path.py",
    "`reconcile`": "an allowed run lists every cloud's servers: tests/unit/daemon (reconcile) and test_cli_access",
    "`daemon`": "tests/unit/test_cli_access.py and tests/unit/daemon/test_daemon.py run it per identity",
    "`inbox add USER`": "changes a directory's owner: tests/unit/daemon/test_inbox.py",
    "`devcloud …`": "a test installation: tests/integration/test_devcloud.py",
}


def refused(cell: str) -> bool:
    return cell.startswith("refused")


def test_every_row_of_the_table_is_probed_or_says_where_it_is_tested(world: dict[str, Any], tmp_path: Path) -> None:
    assert set(table()) == set(probes(world, tmp_path)) | set(SKIPPED)


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_gets_exactly_what_the_table_says(world: dict[str, Any], tmp_path: Path, role: str) -> None:
    user = ROLES[role]
    rows = table()
    wrong = []
    for command, (own_args, other_args) in probes(world, tmp_path).items():
        cell = rows[command][role]
        code, out, err = cli(world, *own_args, user=user or None)
        said = out + err
        was_refused = code == 2 and bool(REFUSAL.search(said)) and "not found" not in said
        if was_refused != refused(cell):
            wrong.append(f"{command} as {role} ({user or '-'}): table says {cell!r}, got exit {code}: {said.strip()[:200]}")
        if other_args is not None and role == "requester" and "own tenant" in cell:
            code, out, err = cli(world, *other_args, user=user)
            if code == 0 and OTHER in out:
                wrong.append(f"{command} as requester for another tenant: shown (exit 0): {out.strip()[:200]}")
            elif code not in (0, 2):
                wrong.append(f"{command} as requester for another tenant: exit {code}: {(out + err).strip()[:200]}")
    assert not wrong, "\n".join(wrong)


def test_listings_of_a_requester_hold_only_its_tenants(world: dict[str, Any]) -> None:
    for args in (["vm", "list", "-o", "json"], ["drift", "list", "-o", "json"], ["ticket", "list", "-o", "json"], ["dr", "replicas", "-o", "json"]):
        code, out, err = cli(world, *args, user="caijing")
        assert code == 0, err
        assert {row.get("tenant") for row in json.loads(out)} <= {OWN}, (args, out)
