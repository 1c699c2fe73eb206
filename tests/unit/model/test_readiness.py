"""Readiness of recovery plans (``model/readiness.py``), pure: the sample province's plans and topology,
facts written by hand, an injected ``now``. Each reason on its own, then all together."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from govcloud.model.parsed import DesiredState
from govcloud.model.readiness import DrVmFact, Readiness, plan_readiness, replica_ages
from govcloud.model.resources import Resources
from tests.support.exporter import sample_state

NOW = datetime.datetime(2026, 12, 5, 8, 0, tzinfo=datetime.UTC)
DAY = 86400.0
SMALL = Resources(1, 2, 4096, 40)
HUKOU = [DrVmFact("t-1", i, f"t-1-app-{i}", "gd-gat", "hukou", "gd-prov", "gz-main" if i % 2 else "gz-backup", 2, 4096, 40) for i in (1, 2)]
SJGX = [DrVmFact("t-2", 1, "t-2-app-1", "gd-zsj", "sjgx", "gd-prov", "gz-main", 2, 4096, 40)]


@pytest.fixture(scope="module")
def state() -> DesiredState:
    return sample_state()


def good(**change: Any) -> dict[str, Any]:
    """Facts under which public-security (hukou; rpo 15m, drill_every 90d) and data-exchange (sjgx; rpo 1h,
    no drill_every: the default) are both ready."""
    facts: dict[str, Any] = {
        "vms": HUKOU + SJGX,
        "newest": {(v.ticket, v.idx): NOW - datetime.timedelta(minutes=5) for v in HUKOU + SJGX},
        "drills": {("gd-prov", "public-security"): NOW - datetime.timedelta(days=30),
                   ("gd-prov", "data-exchange"): NOW - datetime.timedelta(days=30)},
        "reserved": {("t-1", "gd-prov", "sg-dr"): SMALL.scaled(2), ("t-2", "gd-prov", "sg-dr"): SMALL},
        "held": {("gd-prov", "sg-dr"): SMALL.scaled(3), ("gd-prov", "gz-main"): SMALL.scaled(2)},
    }
    return facts | change


def verdicts(state: DesiredState, *, drill_every: float = 90 * DAY, rpo: float = 3600.0, now: datetime.datetime = NOW,
             **facts: Any) -> dict[str, Readiness]:
    found = plan_readiness(plans=state.recovery, topology=state.topology, now=now, drill_every=drill_every, rpo=rpo, **good(**facts))
    return {r.group: r for r in found if r.cloud == "gd-prov"}


def kinds(plan: Readiness) -> list[str]:
    return [r.kind for r in plan.reasons]


def test_every_group_of_the_plan_is_listed_and_ready_when_drilled_replicated_and_reserved(state: DesiredState) -> None:
    plans = verdicts(state)
    assert list(plans)[:5] == ["public-security", "data-exchange", "government-services", "welfare", "education"]  # recovery order
    assert plans["public-security"].ready and plans["data-exchange"].ready, (plans["public-security"].reasons, plans["data-exchange"].reasons)
    assert plans["public-security"].vms == ("t-1-app-1", "t-1-app-2") and plans["public-security"].rpo == 900
    assert plans["data-exchange"].rpo == 3600 and plans["data-exchange"].drill_every == 90 * DAY  # the defaults
    assert plans["welfare"].reasons and kinds(plans["welfare"]) == ["drill"]  # never drilled; no dr VMs: nothing else to check
    assert plans["public-security"].as_dict()["state"] == "READY"


def test_a_drill_older_than_drill_every_or_none_makes_the_plan_not_ready(state: DesiredState) -> None:
    later = NOW + datetime.timedelta(days=61)  # public-security's drill is 91 days old; replicas would be old too: refresh them
    fresh = {(v.ticket, v.idx): later for v in HUKOU + SJGX}
    plans = verdicts(state, now=later, newest=fresh)
    assert kinds(plans["public-security"]) == ["drill"]
    assert "older than drill_every 90d" in plans["public-security"].reasons[0].text
    assert kinds(plans["data-exchange"]) == ["drill"]  # the settings' default applies: 90 days too
    assert "older than drill_every 90d (settings.dr.drill_every)" in plans["data-exchange"].reasons[0].text
    assert verdicts(state, now=later, newest=fresh, drill_every=100 * DAY)["data-exchange"].ready  # a longer default
    never = verdicts(state, drills={("gd-prov", "data-exchange"): NOW})["public-security"]
    assert kinds(never) == ["drill"] and "never drilled" in never.reasons[0].text


def test_a_replica_older_than_the_groups_rpo_or_missing_makes_it_not_ready(state: DesiredState) -> None:
    newest = {("t-1", 1): NOW - datetime.timedelta(minutes=16), ("t-2", 1): NOW - datetime.timedelta(minutes=59)}  # t-1-app-2: none
    plans = verdicts(state, newest=newest)
    ps = plans["public-security"]
    assert kinds(ps) == ["replica", "replica"] and {r.tenant for r in ps.reasons} == {"gd-gat"}
    assert "t-1-app-1's newest replica is 16m0s old, older than its RPO 15m" in ps.reasons[0].text
    assert "t-1-app-2 has no ready replica" in ps.reasons[1].text
    assert plans["data-exchange"].ready  # 59 minutes: within its 1 h RPO
    assert not verdicts(state, newest=newest | {("t-2", 1): NOW - datetime.timedelta(minutes=61)})["data-exchange"].ready


def test_a_missing_or_short_reservation_makes_it_not_ready(state: DesiredState) -> None:
    plans = verdicts(state, reserved={("t-1", "gd-prov", "sg-dr"): SMALL})  # a resize doubled nothing: one VM's worth for two
    assert kinds(plans["public-security"]) == ["reservation"]
    assert "no longer covers its dr VMs (4 vCPU, 8192 MiB)" in plans["public-security"].reasons[0].text
    assert kinds(plans["data-exchange"]) == ["reservation"] and "no reservation in sg-dr" in plans["data-exchange"].reasons[0].text


def test_a_dr_centre_holding_more_than_its_capacity_makes_every_plan_with_dr_vms_not_ready(state: DesiredState) -> None:
    dr = next(c for c in state.topology.cloud("gd-prov").centres if c.id == "sg-dr")  # type: ignore[union-attr]
    room = dr.allocatable()
    plans = verdicts(state, held={("gd-prov", "sg-dr"): Resources(3, room.vcpus + 1, 0, 0)})
    assert kinds(plans["public-security"]) == kinds(plans["data-exchange"]) == ["capacity"]
    assert f"can hand out only {room.vcpus} vCPU" in plans["public-security"].reasons[0].text
    assert kinds(plans["welfare"]) == ["drill"]  # no dr VMs there: no reservation to lose


def test_dr_vms_already_in_the_dr_centre_are_not_checked_and_unnamed_systems_form_unplanned(state: DesiredState) -> None:
    moved = [v._replace(centre="sg-dr") for v in HUKOU]
    stray = DrVmFact("t-3", 1, "t-3-app-1", "gd-gat", "stray", "gd-prov", "gz-main", 2, 4096, 40)
    plans = verdicts(state, vms=moved + SJGX + [stray], newest={}, reserved={("t-2", "gd-prov", "sg-dr"): SMALL})
    assert kinds(plans["public-security"]) == []  # rebuilt in sg-dr: nothing to replicate or reserve
    unplanned = plans["unplanned"]
    assert kinds(unplanned) == ["drill", "replica", "reservation"] and unplanned.vms == ("t-3-app-1",)
    assert "settings.dr.drill_every" in unplanned.reasons[0].text


def test_replica_ages_per_system_take_the_oldest_newest_and_inf_for_none(state: DesiredState) -> None:
    newest = {("t-1", 1): NOW - datetime.timedelta(minutes=3), ("t-1", 2): NOW - datetime.timedelta(minutes=7)}
    ages = {(a.tenant, a.system): a for a in replica_ages(plans=state.recovery, topology=state.topology, vms=HUKOU + SJGX,
                                                         newest=newest, now=NOW, rpo=3600.0)}
    assert (ages["gd-gat", "hukou"].age, ages["gd-gat", "hukou"].rpo) == (420.0, 900.0)
    assert ages["gd-zsj", "sjgx"].age == float("inf") and ages["gd-zsj", "sjgx"].rpo == 3600.0


def test_a_ready_plan_knows_until_when_it_stays_ready_on_the_same_facts(state: DesiredState) -> None:
    newest = {("t-1", 1): NOW - datetime.timedelta(minutes=5), ("t-1", 2): NOW - datetime.timedelta(minutes=10)} | {
        ("t-2", 1): NOW - datetime.timedelta(minutes=5)}
    plans = verdicts(state, newest=newest)
    ps = plans["public-security"]
    assert ps.until == NOW + datetime.timedelta(minutes=5)  # t-1-app-2's replica reaches the 15 min RPO first
    assert ps.ready_at(NOW + datetime.timedelta(minutes=5)) and not ps.ready_at(NOW + datetime.timedelta(minutes=5, seconds=1))
    later = verdicts(state, newest=newest, now=NOW + datetime.timedelta(minutes=5, seconds=1))["public-security"]
    assert not later.ready  # the verdict computed afresh agrees
    assert plans["data-exchange"].until == NOW + datetime.timedelta(minutes=55)
    assert plans["welfare"].until is None and not plans["welfare"].ready_at(NOW)
