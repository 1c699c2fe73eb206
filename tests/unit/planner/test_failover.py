"""The recovery plan for a failed centre, on the shipped topology (pure: no store, no cloud)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from govcloud.model.recovery import ProtectionGroup
from govcloud.model.resources import Resources
from govcloud.model.state import load_state
from govcloud.model.topology import Cloud, Topology
from govcloud.planner.failover import Facts, Placed, plan_recovery
from govcloud.settings import DataPaths

REPO = Path(__file__).resolve().parents[3]
MEDIUM = Resources(instances=1, vcpus=2, ram_mb=4096, disk_gb=40)
UP = {("gd-prov", "gz-backup"): ("gz-backup-1", "gz-backup-2"), ("gd-prov", "gz-main"): ("gz-main-1", "gz-main-2")}


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_state(DataPaths(root=REPO)).topology


@pytest.fixture(scope="module")
def prov(topology: Topology) -> Cloud:
    cloud = topology.cloud("gd-prov")
    assert cloud is not None
    return cloud


def vm(ticket: str, idx: int, protection: str, centre: str = "gz-main", *, server: str | None = "srv", size: Resources = MEDIUM,
       system: str = "") -> Placed:
    return Placed(ticket=ticket, idx=idx, name=f"gd-x-sys-{ticket}-{idx}", tenant="gd-x", cloud="gd-prov", centre=centre, zone=centre,
                  protection=protection, size=size, home=centre, server_id=server and f"{server}-{ticket}-{idx}", system=system)


def facts(**over: object) -> Facts:
    base = {"health": {("gd-prov", "gz-main"): "down", ("gd-prov", "gz-backup"): "healthy"}, "allocated": {}, "hosts_up": UP}
    return Facts(**{**base, **over})  # type: ignore[arg-type]


def test_protected_vms_go_to_the_same_city_partner_spread_over_its_hosts(prov: Cloud) -> None:
    vms = [vm("t-1", 1, "ha"), vm("t-1", 2, "ha"), vm("t-2", 1, "dr"), vm("t-3", 1, "ha", centre="gz-backup")]
    plan = plan_recovery(prov, "gz-main", vms, facts())
    assert [(m.vm.name, m.target, m.zone, m.host) for m in plan.moves] == [
        ("gd-x-sys-t-2-1", "gz-backup", "gz-backup", "gz-backup-1"),  # dr first: it paid for a reservation
        ("gd-x-sys-t-1-1", "gz-backup", "gz-backup", "gz-backup-2"),
        ("gd-x-sys-t-1-2", "gz-backup", "gz-backup", "gz-backup-1"),
    ]
    assert plan.held == ()  # t-3 runs in the healthy centre: not part of the plan


def test_unprotected_and_serverless_vms_are_held_with_the_reason(prov: Cloud) -> None:
    plan = plan_recovery(prov, "gz-main", [vm("t-1", 1, "none"), vm("t-2", 1, "ha", server=None)], facts())
    assert plan.moves == ()
    assert [(h.vm.ticket, h.reason) for h in plan.held] == [
        ("t-1", "protection none: no failover was asked for; it waits for its centre"),
        ("t-2", "no server recorded: nothing to move")]


def test_partner_down_too_holds_everything_and_names_dr(prov: Cloud) -> None:
    both_down = facts(health={("gd-prov", "gz-main"): "down", ("gd-prov", "gz-backup"): "down"})
    plan = plan_recovery(prov, "gz-main", [vm("t-1", 1, "dr"), vm("t-2", 1, "ha")], both_down)
    assert plan.moves == ()
    reasons = {h.vm.ticket: h.reason for h in plan.held}
    assert reasons["t-1"].startswith("gz-backup is down too") and "DR activation in sg-dr" in reasons["t-1"]
    assert reasons["t-2"] == "gz-backup is down too"  # an ha VM has no reservation in the DR centre (288-VM day finding)


def test_no_host_up_in_the_partner_holds(prov: Cloud) -> None:
    plan = plan_recovery(prov, "gz-main", [vm("t-1", 1, "ha")], facts(hosts_up={("gd-prov", "gz-backup"): ()}))
    assert [h.reason for h in plan.held] == ["nova reports no compute host up in gz-backup"]


def test_room_counts_the_ledger_and_earlier_moves(prov: Cloud) -> None:
    backup = prov.centre("gz-backup")
    assert backup is not None
    free = Resources(instances=backup.allocatable().instances, vcpus=3, ram_mb=10**6, disk_gb=10**5)  # one medium fits, two do not
    full = facts(allocated={("gd-prov", "gz-backup"): backup.allocatable() - free})
    plan = plan_recovery(prov, "gz-main", [vm("t-1", 1, "ha"), vm("t-1", 2, "ha")], full)
    assert [m.vm.idx for m in plan.moves] == [1]
    assert [h.vm.idx for h in plan.held] == [2] and plan.held[0].reason.startswith("no room in gz-backup (")


def test_the_dr_centre_and_single_centre_clouds_have_no_partner(topology: Topology, prov: Cloud) -> None:
    plan = plan_recovery(prov, "sg-dr", [vm("t-1", 1, "ha", centre="sg-dr")], facts())
    assert [h.reason for h in plan.held] == ["cloud gd-prov has no other serving centre to fail over to"]
    single = next(c for c in topology.clouds if len(c.centres) == 1 and c.driver == "openstack")
    lone = dataclasses.replace(vm("t-9", 1, "ha", centre=single.centres[0].id), cloud=single.id)
    plan = plan_recovery(single, single.centres[0].id, [lone], facts())
    assert plan.moves == () and plan.held[0].reason == f"cloud {single.id} has no other serving centre to fail over to"


def test_a_partner_in_another_region_cannot_take_an_evacuation(prov: Cloud) -> None:
    main, backup = prov.centre("gz-main"), prov.centre("gz-backup")
    assert main is not None and backup is not None
    split = dataclasses.replace(prov, centres=(main, dataclasses.replace(backup, region="gd-fs")))
    plan = plan_recovery(split, "gz-main", [vm("t-1", 1, "ha")], facts())
    assert plan.held[0].reason == "gz-backup is in region gd-fs, not gd-gz: evacuation stays within a region"


def test_plan_is_json_ready_and_unknown_centre_is_refused(prov: Cloud) -> None:
    plan = plan_recovery(prov, "gz-main", [vm("t-1", 1, "ha")], facts())
    assert plan.as_dict()["moves"] == [{"vm": "gd-x-sys-t-1-1", "ticket": "t-1", "system": "", "group": "unplanned", "from": "gz-main",
                                        "to": "gz-backup", "zone": "gz-backup", "host": "gz-backup-1", "protection": "ha"}]
    assert plan.as_dict()["groups"] == [{"name": "unplanned", "priority": 3, "depends_on": [], "hook": None, "moves": 1, "held": 0}]
    with pytest.raises(ValueError, match="no centre nowhere"):
        plan_recovery(prov, "nowhere", [], facts())


GROUPS = (ProtectionGroup("late", ("gd-x/c",), priority=5), ProtectionGroup("first", ("gd-x/a",), priority=1),
          ProtectionGroup("second", ("gd-x/b",), priority=2, depends_on=("first",)))


def test_vms_move_group_by_group_in_the_recovery_plans_order(prov: Cloud) -> None:
    """Priority 1 first, then 2, then the systems no group names (priority 3), then 5; dr before ha inside a group."""
    vms = [vm("t-1", 1, "ha", system="gd-x/c"), vm("t-2", 1, "ha", system="gd-x/other"), vm("t-3", 1, "ha", system="gd-x/b"),
           vm("t-4", 1, "ha", system="gd-x/a"), vm("t-5", 1, "dr", system="gd-x/b")]
    plan = plan_recovery(prov, "gz-main", vms, facts(), GROUPS)
    assert [(m.group, m.vm.ticket) for m in plan.moves] == [("first", "t-4"), ("second", "t-5"), ("second", "t-3"),
                                                              ("unplanned", "t-2"), ("late", "t-1")]
    assert [s.name for s in plan.steps] == ["first", "second", "unplanned", "late"]


def test_when_room_runs_out_the_later_groups_are_held(prov: Cloud) -> None:
    backup = prov.centre("gz-backup")
    assert backup is not None
    free = Resources(instances=backup.allocatable().instances, vcpus=3, ram_mb=10**6, disk_gb=10**5)  # one medium fits
    full = facts(allocated={("gd-prov", "gz-backup"): backup.allocatable() - free})
    plan = plan_recovery(prov, "gz-main", [vm("t-1", 1, "dr", system="gd-x/c"), vm("t-2", 1, "ha", system="gd-x/a")], full, GROUPS)
    assert [m.vm.ticket for m in plan.moves] == ["t-2"]  # priority 1 before the dr VM of priority 5
    assert [(h.vm.ticket, h.group) for h in plan.held] == [("t-1", "late")]
