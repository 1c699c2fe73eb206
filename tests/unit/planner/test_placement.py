"""Placement and quota levels on the shipped sample data (pure: no store, no cloud)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from govcloud.model.ledger import LedgerLine
from govcloud.model.parsed import DesiredState
from govcloud.model.resources import Resources
from govcloud.model.state import load_state
from govcloud.model.tickets import Ticket
from govcloud.planner.placement import place, vm_name
from govcloud.planner.usage import Usage
from govcloud.settings import DataPaths

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def state() -> DesiredState:
    return load_state(DataPaths(root=REPO))


def ticket(state: DesiredState, ticket_id: str) -> Ticket:
    return next(t for t in state.tickets if t.id == ticket_id)


def test_none_protection_puts_a_group_in_one_centre(state: DesiredState) -> None:
    plan = place(ticket(state, "t-2026-0001"), state, Usage())
    assert plan.ok
    assert [(v.name, v.cloud, v.region, v.centre, v.zone, v.server_group) for v in plan.vms] == [
        ("gd-mzt-mzoa-t-2026-0001-1", "gd-prov", "gd-gz", "gz-main", "gz-main", None)]


def test_none_protection_prefers_the_centre_with_more_room(state: DesiredState) -> None:
    t = ticket(state, "t-2026-0001")
    anywhere = dataclasses.replace(t, vms=(dataclasses.replace(t.vms[0], centre="any"),))
    assert {v.centre for v in place(anywhere, state, Usage()).vms} == {"gz-main"}
    busy = Usage.from_lines([LedgerLine("x", "gd-zf", "s", "gd-prov", "gz-main", Resources(1, 30000, 0, 0), "committed")])
    plan = place(anywhere, state, busy)
    assert {v.centre for v in plan.vms} == {"gz-backup"}


def test_ha_alternates_main_and_secondary_with_server_groups(state: DesiredState) -> None:
    plan = place(ticket(state, "t-2026-0003"), state, Usage())
    assert [v.centre for v in plan.vms] == ["gz-main", "gz-backup", "gz-main", "gz-backup", "gz-main"]
    assert plan.vms[0].server_group == "t-2026-0003-web-gz-main"
    assert plan.vms[3].server_group == "t-2026-0003-app-gz-backup"
    assert plan.reservations == ()


def test_dr_reserves_the_same_resources_in_the_dr_centre(state: DesiredState) -> None:
    plan = place(ticket(state, "t-2026-0004"), state, Usage())
    assert {v.centre for v in plan.vms} == {"gz-main", "gz-backup"}
    (reservation,) = plan.reservations
    assert (reservation.cloud, reservation.region, reservation.centre) == ("gd-prov", "gd-sg", "sg-dr")
    assert reservation.resources == Resources(instances=6, vcpus=4 * 4 + 2 * 8, ram_mb=4 * 8192 + 2 * 16384, disk_gb=4 * 80 + 2 * 160)
    assert any(c.level == "centre" and "sg-dr" in c.scope for c in plan.checks)


def test_ha_in_a_single_centre_cloud_says_so(state: DesiredState) -> None:
    plan = place(ticket(state, "t-2026-0002"), state, Usage())
    assert {v.centre for v in plan.vms} == {"jy-main"}
    assert plan.notes == ("app: cloud sec-edu has one serving centre; ha keeps host anti-affinity only",)


def test_denial_names_level_scope_numbers_and_what_fits(state: DesiredState) -> None:
    t = ticket(state, "t-2026-0001")
    used = Usage.from_lines([LedgerLine("t-old", "gd-mzt", "mzoa", "gd-prov", "gz-main", Resources(40, 10, 1024, 10), "committed")])
    plan = place(t, state, used)
    assert not plan.ok
    (denial,) = plan.denials
    assert denial.level == "tenant" and denial.scope == "tenant gd-mzt in gd-prov"
    assert denial.explain() == "tenant limit of tenant gd-mzt in gd-prov: instances 40 + 1 = 41 > 40"
    assert plan.suggestions == ("tenant limit of tenant gd-mzt in gd-prov: at most 0 × gc.small (test) would fit; requested 1",)


def test_parent_limit_covers_the_children(state: DesiredState) -> None:
    """gd-zf's limit in gd-prov counts every department under it (strict hierarchy)."""
    t = ticket(state, "t-2026-0001")
    siblings = Usage.from_lines([LedgerLine("t-x", "gd-gat", "hukou", "gd-prov", "gz-main", Resources(1, 8000, 0, 0), "committed")])
    plan = place(t, state, siblings)
    assert [d.level for d in plan.denials] == ["parent"]
    assert plan.denials[0].explain() == "parent limit of parent gd-zf (with its children) in gd-prov: vcpus 8000 + 1 = 8001 > 8000"


def test_dr_lines_use_the_centre_not_the_tenant_quota() -> None:
    usage = Usage.from_lines([LedgerLine("t", "a", "s", "c", "dr", Resources(2, 8, 1024, 20), "reserved", kind="dr")])
    assert usage.of_tenant("a", "c") == Resources()
    assert usage.of_centre("c", "dr") == Resources(2, 8, 1024, 20)


def test_any_cloud_falls_through_to_a_cloud_that_fits(state: DesiredState) -> None:
    t = ticket(state, "t-2026-0001")
    request = dataclasses.replace(t.vms[0], cloud="any", centre="any")
    anywhere = dataclasses.replace(t, tenant="gd-gat", system="hukou", vms=(request,))
    full = Usage.from_lines([LedgerLine("t", "gd-gat", "hukou", "gd-prov", "gz-main", Resources(200, 0, 0, 0), "committed")])
    plan = place(anywhere, state, full)
    assert plan.ok and {v.cloud for v in plan.vms} == {"sec-police"}


def test_names_are_deterministic(state: DesiredState) -> None:
    t = ticket(state, "t-2026-0003")
    assert vm_name(t, 3) == "gd-zsj-zwfw-t-2026-0003-3"
    assert [v.name for v in place(t, state, Usage()).vms] == [vm_name(t, i) for i in range(1, 6)]


def test_the_data_model_doc_names_servers_as_the_code_does(state: DesiredState) -> None:
    """docs/data-model.md's comment on ``vms[].name`` gives the server name pattern; filled in for a ticket
    it must be the name placement gives (it once had a ``<name>`` part the code never used)."""
    doc = (REPO / "docs" / "data-model.md").read_text(encoding="utf-8")
    (pattern,) = re.findall(r"servers are named (\S+?),", doc)
    t = ticket(state, "t-2026-0003")
    filled = pattern.replace("<tenant>", t.tenant).replace("<system>", t.system).replace("<ticket>", t.id).replace("<n>", "2")
    assert filled == place(t, state, Usage()).vms[1].name == vm_name(t, 2)
