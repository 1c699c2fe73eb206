"""Recovery plans (``recovery/*.yaml``) are validated like the rest of the data: every problem with
file, line and key, exit 2 from ``govcloud validate`` (issue 13, item 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from govcloud.model.recovery import ProtectionGroup, duration_seconds, recovery_order
from govcloud.model.state import load_state
from govcloud.settings import DataPaths
from tests.support.tickets import REPO
from tests.unit.test_cli_data import run

GOOD = """\
version: 1
cloud: gd-prov
groups:
- name: police
  priority: 2
  systems: [gd-gat/hukou]
- name: portal
  priority: 1
  systems: [gd-zsj/zwfw]
  depends_on: [police]
  hook: {role: smoke, vars: {smoke_tcp_ports: [80]}}
  rpo: 1h
  drill_every: 90d
- name: schools
  systems: [gd-jyt/gkzs]
"""


def data_root(tmp_path: Path, plans: dict[str, str]) -> Path:
    """The sample province with its own ``recovery/`` directory."""
    root = tmp_path / "data"
    root.mkdir()
    for name in ("inventory", "tenants.yaml", "quotas", "users.yaml", "playbooks"):
        (root / name).symlink_to(REPO / name)
    (root / "recovery").mkdir()
    for name, text in plans.items():
        (root / "recovery" / name).write_text(text, encoding="utf-8")
    return root


def validate(root: Path) -> tuple[int, str]:
    code, out, err = run("--root", str(root), "validate")
    return code, out + err


def test_the_sample_province_ships_a_valid_plan_with_three_or_more_priorities() -> None:
    state = load_state(DataPaths(root=REPO), ticket_files=[])
    groups = state.recovery.of("gd-prov")
    assert len({g.priority for g in groups}) >= 3
    assert [g.priority for g in groups] == sorted(g.priority for g in groups)  # the sample's depends_on agree with its priorities


def test_a_good_plan_loads_in_recovery_order(tmp_path: Path) -> None:
    state = load_state(DataPaths(root=data_root(tmp_path, {"gd-prov.yaml": GOOD})), ticket_files=[])
    groups = state.recovery.of("gd-prov")
    assert [g.name for g in groups] == ["police", "portal", "schools"]  # portal (priority 1) waits for police, its dependency
    assert groups[1].hook is not None and groups[1].hook.vars == {"smoke_tcp_ports": [80]}
    assert groups[2].priority == 3  # not written: the default
    assert duration_seconds("90d") == 90 * 86400 and duration_seconds("15m") == 900


def test_order_is_priority_then_name_among_groups_that_are_ready() -> None:
    groups = (ProtectionGroup("b", ("t/s",), priority=2), ProtectionGroup("a", ("t/s",), priority=2),
              ProtectionGroup("c", ("t/s",), priority=1, depends_on=("d",)), ProtectionGroup("d", ("t/s",), priority=5))
    assert [g.name for g in recovery_order(groups)] == ["a", "b", "d", "c"]


BAD = [
    ("cloud: gd-prov", "cloud: gd-nowhere", "cloud: unknown cloud"),
    ("priority: 2", "priority: 7", "groups[0].priority: out of range"),
    ("systems: [gd-gat/hukou]", "systems: [gd-gat/nothing]", "groups[0].systems[0]: unknown business system"),
    ("systems: [gd-gat/hukou]", "systems: [hukou]", "groups[0].systems[0]: not tenant/system"),
    ("systems: [gd-gat/hukou]", "systems: [gd-zsj/zwfw]", "groups[1].systems[0]: system in two groups"),
    ("depends_on: [police]", "depends_on: [nobody]", "groups[1].depends_on[0]: unknown group"),
    ("- name: schools", "- name: police", "groups[2].name: duplicate group"),
    ("role: smoke", "role: no-such-role", "groups[1].hook.role: unknown role"),
    ("smoke_tcp_ports: [80]", "ansible_host: 10.0.0.9", "groups[1].hook.vars.ansible_host: variable not allowed in a hook"),
    ("smoke_tcp_ports: [80]", "smoke_marker: \"{{ lookup('pipe', 'id') }}\"", "groups[1].hook.vars.smoke_marker: variable not allowed"),
    ("rpo: 1h", "rpo: an hour", "groups[1].rpo: not a duration"),
    ("drill_every: 90d", "drill_evry: 90d", "groups[1].drill_evry: unknown key; did you mean 'drill_every'?"),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD, ids=[m.split(":")[0] + "-" + n.split(":")[0] for _, n, m in BAD])
def test_a_bad_plan_is_refused_with_file_line_and_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    line = [n for n, t in enumerate(text.splitlines(), 1) if new in t][-1]  # the changed line (a duplicate is the later one)
    code, output = validate(data_root(tmp_path, {"gd-prov.yaml": text}))
    assert code == 2, output
    assert f"recovery/gd-prov.yaml:{line}: {message}" in output


def test_a_depends_on_cycle_and_a_second_plan_for_a_cloud_are_refused(tmp_path: Path) -> None:
    cyclic = GOOD.replace("  systems: [gd-gat/hukou]\n", "  systems: [gd-gat/hukou]\n  depends_on: [portal]\n", 1)
    code, output = validate(data_root(tmp_path, {"gd-prov.yaml": cyclic, "more.yaml": "version: 1\ncloud: gd-prov\n"}))
    assert code == 2, output
    assert "recovery/gd-prov.yaml:7: groups[0].depends_on: depends_on cycle (found: police → portal → police" in output
    assert "recovery/more.yaml:2: cloud: duplicate recovery plan" in output


def test_without_a_recovery_directory_nothing_is_planned(tmp_path: Path) -> None:
    root = data_root(tmp_path, {})
    (root / "recovery").rmdir()
    assert load_state(DataPaths(root=root), ticket_files=[]).recovery.of("gd-prov") == ()


EMERGENCY = GOOD + """\
emergency:
  auto_approve_after: 30m
  when: both-centres-down
  approver: shenpi-chen
"""


def test_an_emergency_rule_loads_and_names_its_file_line_and_approver(tmp_path: Path) -> None:
    state = load_state(DataPaths(root=data_root(tmp_path, {"gd-prov.yaml": EMERGENCY})), ticket_files=[])
    rule = state.recovery.emergency["gd-prov"]
    assert duration_seconds(rule.auto_approve_after) == 1800 and rule.when == "both-centres-down"
    assert rule.describe() == ("emergency rule recovery/gd-prov.yaml:16 (auto_approve_after 30m when both-centres-down, "
                               "written by approver shenpi-chen)")  # line 16: the rule's key
    (tmp_path / "x").mkdir()
    assert load_state(DataPaths(root=data_root(tmp_path / "x", {"gd-prov.yaml": GOOD})), ticket_files=[]).recovery.emergency == {}


BAD_EMERGENCY = [
    ("auto_approve_after: 30m", "auto_approve_after: soon", "emergency.auto_approve_after: not a duration"),
    ("when: both-centres-down", "when: one-centre-down", "emergency.when:"),
    ("approver: shenpi-chen", "approver: yunwei-he", "emergency.approver: emergency rule not written by an approver (found: 'yunwei-he' "
                                                     "(role operator)"),
    ("approver: shenpi-chen", "approver: nobody", "emergency.approver: emergency rule not written by an approver (found: 'nobody' "
                                                  "(not in users.yaml)"),
    ("approver: shenpi-chen", "approvr: shenpi-chen", "emergency.approvr: unknown key"),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD_EMERGENCY, ids=[n.split(":")[0].strip() + "-" + n.split(":")[1].strip()
                                                                        for _, n, _ in BAD_EMERGENCY])
def test_a_bad_emergency_rule_is_refused_with_file_line_and_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = EMERGENCY.replace(old, new, 1)
    line = [n for n, t in enumerate(text.splitlines(), 1) if new in t][-1]
    code, output = validate(data_root(tmp_path, {"gd-prov.yaml": text}))
    assert code == 2, output
    assert f"recovery/gd-prov.yaml:{line}: {message}" in output
