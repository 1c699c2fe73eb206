"""Failing a centre over on the in-memory cloud: the plan from the store and nova's hosts, the
evacuations, and what the store records (VM rows, ledger by centre, audit)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govcloud.engine.context import EngineContext, build
from govcloud.errors import PermissionDenied, TemporaryError
from govcloud.failover.recover import FailoverRefused, Recovery
from govcloud.planner.usage import Usage
from govcloud.settings import DaemonSettings, FailoverSettings, Settings
from govcloud.store import tickets as rows
from tests.support.fakecloud import GZ, FakeCloud, three_centres
from tests.support.tickets import REPO, no_fencing, write_ticket

ONE_AT_A_TIME = FailoverSettings(parallel_per_cloud=1)


@pytest.fixture
def cloud() -> FakeCloud:
    return three_centres()


@pytest.fixture
def ctx(tmp_path: Path, cloud: FakeCloud) -> Iterator[EngineContext]:
    settings = Settings.from_env(no_fencing(tmp_path)).with_overrides(root=str(REPO), db=f"sqlite:///{tmp_path / 'state.db'}", user="admin")
    settings = dataclasses.replace(settings, state_dir=tmp_path / "state", daemon=DaemonSettings(inbox=tmp_path / "inbox", inbox_settle=0))
    context = build(settings, driver_factory=cloud.driver)
    yield context
    context.store.close()


def recovery(ctx: EngineContext, user: str = "yunwei-he", **options: Any) -> Recovery:
    actor = ctx.state.users.get(user)
    assert actor is not None
    return Recovery(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, now=ctx.now, actor=actor, **options)


@pytest.mark.parametrize("user", ["caijing", "shenpi-chen"])
def test_only_operators_and_admins_may_fail_a_centre_over(ctx: EngineContext, user: str) -> None:
    """The check sits in failover/, so the CLI and the daemon cannot differ on it (issue 12, item 4)."""
    with pytest.raises(PermissionDenied, match="'failover' needs role operator or admin"):
        recovery(ctx, user)


def test_the_cloud_of_a_centre_is_found_in_the_topology(ctx: EngineContext) -> None:
    assert recovery(ctx).cloud_of(None, "gz-main").id == "gd-prov"
    with pytest.raises(FailoverRefused, match="centres that can fail over: gd-prov/gz-main"):
        recovery(ctx).cloud_of(None, "nowhere")


def active_ticket(ctx: EngineContext, tmp_path: Path, protection: str, count: int = 4) -> str:
    from govcloud.engine import provision, tickets

    ticket_id, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", roles=(), protection=protection,
                                   vms=[{"name": "web", "count": count, "flavor": "gc.small", "cloud": "gd-prov", "centre": "any"}])
    (row,) = tickets.submit(ctx, [path])
    if row.state == "submitted":  # the sample auto-approval rule takes small tickets at once
        tickets.approve(ctx, ticket_id)
    provision.apply(ctx, [ticket_id])
    return ticket_id


def fail(cloud: FakeCloud, zone: str) -> None:
    cloud.services[GZ] = [dataclasses.replace(s, state="down") if s.zone == zone else s for s in cloud.services[GZ]]


def centre_sums(ctx: EngineContext) -> dict[tuple[str, str], int]:
    with ctx.store.transaction() as conn:
        return {k: v.vcpus for k, v in Usage.from_lines(rows.ledger_lines(conn)).centre.items()}


def test_refused_while_nova_reports_the_hosts_up(ctx: EngineContext, tmp_path: Path) -> None:
    active_ticket(ctx, tmp_path, "ha")
    with pytest.raises(FailoverRefused, match="nova reports gz-main-1, gz-main-2 up in gz-main") as refused:
        recovery(ctx).plan("gd-prov", "gz-main")
    assert refused.value.exit_code == 2
    with pytest.raises(FailoverRefused, match="no centre gz-nowhere"):
        recovery(ctx).plan("gd-prov", "gz-nowhere")


def test_ha_vms_are_evacuated_recorded_and_a_second_run_has_nothing_to_do(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    ticket_id = active_ticket(ctx, tmp_path, "ha")
    with ctx.store.transaction() as conn:
        before = {v.name: v for v in rows.vms_of(conn, ticket_id)}
    in_main = sorted(n for n, v in before.items() if v.centre == "gz-main")
    assert len(in_main) == 2  # ha alternates between the two Guangzhou centres
    sums = centre_sums(ctx)
    fail(cloud, "gz-main")

    plan = recovery(ctx).plan("gd-prov", "gz-main")
    assert sorted(m.vm.name for m in plan.moves) == in_main and {m.host for m in plan.moves} == {"gz-backup-1", "gz-backup-2"}
    run = recovery(ctx).run(plan)
    assert run.failed == [] and len(run.outcomes) == 2

    with ctx.store.transaction() as conn:
        after = {v.name: v for v in rows.vms_of(conn, ticket_id)}
    assert {after[n].centre for n in in_main} == {"gz-backup"} and {after[n].zone for n in in_main} == {"gz-backup"}
    servers = {s.name: s for s in cloud.in_region(GZ)}
    assert {servers[n].host for n in in_main} == {"gz-backup-1", "gz-backup-2"}
    moved = centre_sums(ctx)
    assert moved.get(("gd-prov", "gz-main"), 0) == 0
    assert moved[("gd-prov", "gz-backup")] == sums[("gd-prov", "gz-backup")] + sums[("gd-prov", "gz-main")]
    actions = [r.action for r in ctx.store.audit.records()]
    assert actions[-4:] == ["failover.start", "failover.move", "failover.move", "failover.end"]

    again = recovery(ctx).plan("gd-prov", "gz-main")
    assert again.moves == () and again.held == ()


def test_unprotected_vms_stay_and_are_listed(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    active_ticket(ctx, tmp_path, "none", count=1)
    fail(cloud, "gz-main")
    plan = recovery(ctx).plan("gd-prov", "gz-main")
    assert plan.moves == () and [h.reason.split(":")[0] for h in plan.held] == ["protection none"]


def test_a_failed_evacuation_is_reported_and_the_rest_go_on(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    active_ticket(ctx, tmp_path, "ha")
    fail(cloud, "gz-main")
    plan = recovery(ctx).plan("gd-prov", "gz-main")
    cloud.vanish(plan.moves[0].vm.server_id or "")
    run = recovery(ctx, settings=ONE_AT_A_TIME).run(plan)
    assert [o.ok for o in run.outcomes] == [False, True]
    assert [r.action for r in ctx.store.audit.records()][-4:] == ["failover.start", "failover.failed", "failover.move", "failover.end"]
    with ctx.store.transaction() as conn:
        lost = next(v for v in rows.vms_of(conn) if v.name == plan.moves[0].vm.name)
    assert lost.centre == "gz-main"  # nothing recorded for the VM that did not move


def test_a_temporary_nova_error_during_an_evacuation_is_retried(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    active_ticket(ctx, tmp_path, "ha")
    fail(cloud, "gz-main")
    plan = recovery(ctx).plan("gd-prov", "gz-main")
    cloud.faults["evacuate_server"] = [TemporaryError("evacuate: HTTP 503: try again", delay=0)]
    retries: list[dict[str, object]] = []
    run = recovery(ctx, tries=2, on_retry=retries.append, settings=ONE_AT_A_TIME).run(plan)
    assert [o.ok for o in run.outcomes] == [True, True]
    assert [e["attempt"] for e in retries] == [1] and "HTTP 503" in str(retries[0]["error"])
    assert "failover.failed" not in [r.action for r in ctx.store.audit.records()]


def test_an_evacuation_still_failing_after_its_tries_is_reported(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    active_ticket(ctx, tmp_path, "ha")
    fail(cloud, "gz-main")
    plan = recovery(ctx).plan("gd-prov", "gz-main")
    cloud.faults["evacuate_server"] = [TemporaryError("evacuate: HTTP 503: try again", delay=0)] * 2
    run = recovery(ctx, tries=2, settings=ONE_AT_A_TIME).run(plan)  # which VM meets the faults is then known
    assert [o.ok for o in run.outcomes] == [False, True]
    assert "still failing after 2 tries" in run.outcomes[0].detail


def test_the_plan_follows_the_clouds_recovery_plan(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    """The sample province's recovery/gd-prov.yaml puts gd-mzt/shjz in its 'welfare' group; a system no group names is 'unplanned'."""
    from govcloud.engine import provision, tickets

    ids = []
    for system, name in (("shjz", "aid"), ("mzoa", "oa")):
        ticket_id, path = write_ticket(tmp_path, tenant="gd-mzt", system=system, requester="caijing", roles=(), protection="ha",
                                       vms=[{"name": name, "count": 2, "flavor": "gc.small", "cloud": "gd-prov", "centre": "any"}])
        (row,) = tickets.submit(ctx, [path])
        if row.state == "submitted":
            tickets.approve(ctx, ticket_id)
        provision.apply(ctx, [ticket_id])
        ids.append(ticket_id)
    fail(cloud, "gz-main")
    plan = recovery(ctx).plan("gd-prov", "gz-main")
    assert [(m.group, m.vm.system) for m in plan.moves] == [("unplanned", "gd-mzt/mzoa"), ("welfare", "gd-mzt/shjz")]
    assert [s.name for s in plan.steps] == ["unplanned", "welfare"] and plan.steps[1].priority == 4
