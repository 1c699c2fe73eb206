"""Resize plans check the growth only, keep VMs where they are, grow the DR reservation alike."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from govcloud.model.ledger import LedgerLine
from govcloud.model.parsed import DesiredState
from govcloud.model.resources import Resources
from govcloud.model.state import load_state
from govcloud.model.tickets import Ticket
from govcloud.planner.placement import PlacementError, place
from govcloud.planner.resize import plan_resize
from govcloud.planner.usage import Usage
from govcloud.settings import DataPaths

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def state() -> DesiredState:
    return load_state(DataPaths(root=REPO))


def ticket(state: DesiredState, ticket_id: str) -> Ticket:
    return next(t for t in state.tickets if t.id == ticket_id)


def test_resize_checks_and_reserves_only_the_growth(state: DesiredState) -> None:
    target = place(ticket(state, "t-2026-0001"), state, Usage())  # 1 × gc.small
    resize = ticket(state, "t-2026-0006")  # → gc.medium
    plan = plan_resize(resize, target.vms, target.reservations, state, Usage())
    assert [(vm.name, vm.centre, vm.flavor) for vm in plan.vms] == [("gd-mzt-mzoa-t-2026-0001-1", "gz-main", "gc.medium")]
    per_cloud, _ = plan.demand()
    assert per_cloud == {"gd-prov": Resources(instances=0, vcpus=1, ram_mb=3072, disk_gb=30)}
    assert plan.ok and plan.notes == ("gd-mzt-mzoa-t-2026-0001-1: gc.small → gc.medium",)


def test_resize_denied_when_the_growth_does_not_fit(state: DesiredState) -> None:
    target = place(ticket(state, "t-2026-0001"), state, Usage())
    nearly = Usage.from_lines([LedgerLine("t-2026-0001", "gd-mzt", "mzoa", "gd-prov", "gz-main", Resources(1, 159, 1024, 10), "committed")])
    assert plan_resize(ticket(state, "t-2026-0006"), target.vms, target.reservations, state, nearly).ok  # 159 + 1 = 160 fits
    full = Usage.from_lines([LedgerLine("t-2026-0001", "gd-mzt", "mzoa", "gd-prov", "gz-main", Resources(1, 160, 1024, 10), "committed")])
    plan = plan_resize(ticket(state, "t-2026-0006"), target.vms, target.reservations, state, full)
    assert [d.explain() for d in plan.denials] == ["tenant limit of tenant gd-mzt in gd-prov: vcpus 160 + 1 = 161 > 160"]


def test_shrinking_needs_no_quota(state: DesiredState) -> None:
    base = ticket(state, "t-2026-0006")
    big = dataclasses.replace(base.vms[0], flavor="gc.large")
    target = place(dataclasses.replace(ticket(state, "t-2026-0001"), vms=(big,)), state, Usage())
    plan = plan_resize(base, target.vms, target.reservations, state, Usage())
    per_cloud, per_centre = plan.demand()
    assert per_cloud == {"gd-prov": Resources()} and per_centre == {("gd-prov", "gz-main"): Resources()}


def test_resize_must_not_change_counts(state: DesiredState) -> None:
    target = place(ticket(state, "t-2026-0001"), state, Usage())
    resize = ticket(state, "t-2026-0006")
    two = dataclasses.replace(resize, vms=(dataclasses.replace(resize.vms[0], count=2),))
    with pytest.raises(PlacementError, match="a resize changes sizes, not counts"):
        plan_resize(two, target.vms, target.reservations, state, Usage())


def test_dr_reservation_grows_with_the_vms(state: DesiredState) -> None:
    target = place(ticket(state, "t-2026-0004"), state, Usage())  # 4 × gc.large app, 2 × gc.xlarge db, dr
    resize = dataclasses.replace(ticket(state, "t-2026-0006"), tenant="gd-gat", system="hukou", target="t-2026-0004",
                                 vms=(dataclasses.replace(ticket(state, "t-2026-0006").vms[0], name="db", count=2, flavor="gc.xlarge"),
                                      dataclasses.replace(ticket(state, "t-2026-0006").vms[0], name="app", count=4, flavor="gc.xlarge")))
    plan = plan_resize(resize, target.vms, target.reservations, state, Usage())
    assert len(plan.vms) == 4  # only the app VMs change
    (growth,) = plan.reservations
    assert (growth.centre, growth.resources) == ("sg-dr", Resources(instances=0, vcpus=16, ram_mb=32768, disk_gb=320))
