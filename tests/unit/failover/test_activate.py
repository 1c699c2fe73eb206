"""DR activation on the in-memory cloud (issue 14, part 2): refused unless the Guangzhou centres are down
or declared lost; nothing created before an approver (not the requester) or the plan's emergency rule
approved it; then each dr VM rebuilt in sg-dr from its newest replica, in the recovery plan's order, with
VM rows, ledger (reservation → allocation), journal and audit right."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any

import pytest

from govcloud.engine.context import EngineContext
from govcloud.errors import PermissionDenied
from govcloud.failover.activate import ActivationRefused, AwaitingApproval, DrActivation
from govcloud.failover.recover import Recovery
from govcloud.failover.replicate import Replicator, replica_listing
from govcloud.failover.steps import HookCall, HookResult
from govcloud.model.recovery import Emergency, RecoveryPlans
from govcloud.planner.usage import Usage
from govcloud.settings import DrSettings, FailoverSettings
from govcloud.store import facts, runs
from govcloud.store import tickets as rows
from govcloud.store.facts import CentreHealth
from tests.support.fakecloud import GZ, SG, FakeCloud
from tests.support.tickets import write_ticket
from tests.unit.failover.test_recover import active_ticket
from tests.unit.failover.test_replicate import T0, Clock

ONE_AT_A_TIME = FailoverSettings(parallel_per_cloud=1)


@pytest.fixture
def clock(ctx: EngineContext) -> Clock:
    moving = Clock()
    ctx.clock = moving
    return moving


def activation(ctx: EngineContext, user: str = "yunwei-he", **options: Any) -> DrActivation:
    actor = ctx.state.users.get(user)
    assert actor is not None
    return DrActivation(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, now=ctx.now, actor=actor,
                        tries=3, sleep=lambda _s: None, **options)


def replicate(ctx: EngineContext) -> None:
    actor = ctx.state.users.get("yunwei-he")
    assert actor is not None
    Replicator(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, clock=ctx.clock, actor=actor,
               settings=DrSettings(), sleep=lambda _s: None).run(force=True)


def down(ctx: EngineContext, *centres: str, since: datetime.datetime = T0) -> None:
    with ctx.store.transaction() as conn:
        for centre in centres:
            facts.record_health(conn, CentreHealth("gd-prov", centre, "down", since.isoformat(), since.isoformat(), 0, 2, True))


def dr_servers(cloud: FakeCloud) -> list[Any]:
    return cloud.in_region(SG)


def all_runs(ctx: EngineContext) -> list[runs.RunRow]:
    with ctx.store.transaction() as conn:
        return runs.runs(conn)


def ledger(ctx: EngineContext) -> dict[tuple[str, str], tuple[int, int]]:
    """(centre, kind) → (instances, vCPUs) over the ledger."""
    with ctx.store.transaction() as conn:
        found: dict[tuple[str, str], tuple[int, int]] = {}
        for line in rows.ledger_lines(conn):
            n, v = found.get((line.centre, line.kind), (0, 0))
            found[(line.centre, line.kind)] = (n + line.resources.instances, v + line.resources.vcpus)
        return found


# -- 1. request -------------------------------------------------------------------------------
def test_refused_unless_both_guangzhou_centres_are_down_or_declared_lost(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                        clock: Clock) -> None:
    active_ticket(ctx, tmp_path, "dr", count=2)
    with pytest.raises(ActivationRefused, match=r"not down: gz-main never checked, gz-backup never checked.*--declare-lost") as refused:
        activation(ctx).request("gd-prov", reason="flood")
    assert refused.value.exit_code == 2
    down(ctx, "gz-main")
    with pytest.raises(ActivationRefused, match="not down: gz-backup never checked"):
        activation(ctx).request("gd-prov", reason="flood")
    assert all_runs(ctx) == [] and "dr-activation.request" not in [r.action for r in ctx.store.audit.records()]
    with pytest.raises(ActivationRefused, match=r"no cloud 'gd-nowhere'.*clouds with a DR centre: gd-prov"):
        activation(ctx).request("gd-nowhere", reason="x")

    run = activation(ctx).request("gd-prov", reason="flood", declare_lost=True)
    assert (run.kind, run.state, run.centre, run.started_by) == ("dr-activation", "new", "sg-dr", "yunwei-he")
    assert run.plan["declared_lost"] is True and run.plan["lost_at"] == run.created_at
    declared = [r for r in ctx.store.audit.records() if r.action == "dr.declare-lost"]
    assert len(declared) == 1 and declared[0].actor == "yunwei-he" and declared[0].details["reason"] == "flood"


def test_when_both_centres_are_recorded_down_the_loss_dates_from_the_later_one(ctx: EngineContext, tmp_path: Path, clock: Clock) -> None:
    down(ctx, "gz-main", since=T0)
    down(ctx, "gz-backup", since=T0 + datetime.timedelta(minutes=3))
    run = activation(ctx).request("gd-prov", reason="earthquake")
    assert run.plan["declared_lost"] is False and run.plan["lost_at"] == (T0 + datetime.timedelta(minutes=3)).isoformat()
    assert "dr.declare-lost" not in [r.action for r in ctx.store.audit.records()]


@pytest.mark.parametrize("user", ["caijing", "shenpi-chen"])
def test_only_operators_and_admins_request_an_activation(ctx: EngineContext, user: str) -> None:
    with pytest.raises(PermissionDenied, match="'dr-activate' needs role operator or admin"):
        activation(ctx, user).request("gd-prov", reason="x", declare_lost=True)


# -- 2. approval ------------------------------------------------------------------------------
def test_nothing_is_created_before_approval(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path, clock: Clock) -> None:
    active_ticket(ctx, tmp_path, "dr", count=2)
    replicate(ctx)
    run = activation(ctx).request("gd-prov", reason="flood", declare_lost=True)
    creates = cloud.creates
    with pytest.raises(AwaitingApproval, match=rf"run {run.id} .*govcloud dr approve {run.id}.*Nothing was created") as waiting:
        activation(ctx).activate(run.id)
    assert waiting.value.exit_code == 4
    assert cloud.creates == creates and dr_servers(cloud) == []
    assert all_runs(ctx)[0].state == "new"


def test_the_requester_may_not_approve_its_own_request(ctx: EngineContext, clock: Clock) -> None:
    run = activation(ctx, "admin").request("gd-prov", reason="flood", declare_lost=True)
    with pytest.raises(PermissionDenied, match=f"user 'admin' requested run {run.id} and may not approve it"):
        activation(ctx, "admin").approve(run.id)
    assert "approval" not in all_runs(ctx)[0].detail


@pytest.mark.parametrize("user", ["yunwei-xu", "caijing"])
def test_an_operator_or_requester_may_not_approve(ctx: EngineContext, user: str, clock: Clock) -> None:
    run = activation(ctx).request("gd-prov", reason="flood", declare_lost=True)
    with pytest.raises(PermissionDenied, match="'dr-approve' needs role approver or admin"):
        activation(ctx, user).approve(run.id)


def test_an_approver_approves_once_and_only_a_waiting_dr_run(ctx: EngineContext, clock: Clock) -> None:
    run = activation(ctx).request("gd-prov", reason="flood", declare_lost=True)
    approved = activation(ctx, "shenpi-chen").approve(run.id)
    assert approved.detail["approval"]["by"] == "shenpi-chen" and approved.detail["approval"]["rule"] is None
    audit = [r for r in ctx.store.audit.records() if r.action == "dr-activation.approve"]
    assert [(r.actor, r.details["requested_by"]) for r in audit] == [("shenpi-chen", "yunwei-he")]
    with pytest.raises(ActivationRefused, match=f"run {run.id} is already approved by shenpi-chen"):
        activation(ctx, "shenpi-lin").approve(run.id)
    activation(ctx).activate(run.id)  # nothing to rebuild: the run ends
    with pytest.raises(ActivationRefused, match=f"run {run.id} is finished: only a DR activation waiting for approval"):
        activation(ctx, "shenpi-lin").approve(run.id)
    with pytest.raises(ActivationRefused, match="run 999 is not a run of the journal, not a DR activation"):
        activation(ctx, "shenpi-lin").approve(999)


def with_emergency(ctx: EngineContext, after: str = "30m") -> None:
    rule = Emergency(auto_approve_after=after, approver="shenpi-chen")
    ctx.state = dataclasses.replace(ctx.state, recovery=RecoveryPlans(ctx.state.recovery.groups, {"gd-prov": rule}))


def test_the_emergency_rule_approves_after_its_delay_when_both_centres_are_down(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                               clock: Clock) -> None:
    active_ticket(ctx, tmp_path, "dr", count=1)
    replicate(ctx)
    with_emergency(ctx)
    run = activation(ctx).request("gd-prov", reason="flood", declare_lost=True)
    clock.advance(minutes=31)
    with pytest.raises(AwaitingApproval, match="needs both centres down; not recorded down: gz-main, gz-backup"):
        activation(ctx).activate(run.id)  # a declaration is not what the rule's approver agreed to
    down(ctx, "gz-main", "gz-backup")
    done = activation(ctx).activate(run.id)
    assert done.approval["by"] == "system" and "emergency rule" in done.approval["rule"] and "shenpi-chen" in done.approval["rule"]
    assert done.run.state == "finished" and len(done.run.moved) == 1
    (approve,) = [r for r in ctx.store.audit.records() if r.action == "dr-activation.approve"]
    assert approve.actor == "system" and "written by approver shenpi-chen" in approve.details["rule"]
    assert all_runs(ctx)[0].detail["approval"]["by"] == "system"


def test_the_emergency_rule_waits_its_delay(ctx: EngineContext, clock: Clock) -> None:
    with_emergency(ctx)
    down(ctx, "gz-main", "gz-backup")
    run = activation(ctx).request("gd-prov", reason="flood")
    clock.advance(minutes=29)
    with pytest.raises(AwaitingApproval, match="applies after 30m; the run has waited 1740 s"):
        activation(ctx).activate(run.id)


# -- 3. carrying out --------------------------------------------------------------------------
def approved_run(ctx: EngineContext) -> int:
    run = activation(ctx).request("gd-prov", reason="flood", declare_lost=True)
    activation(ctx, "shenpi-chen").approve(run.id)
    return run.id


def test_approved_dr_vms_are_rebuilt_in_sg_dr_from_their_newest_replica(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                         clock: Clock) -> None:
    ticket = active_ticket(ctx, tmp_path, "dr", count=2)
    active_ticket(ctx, tmp_path, "ha", count=2)
    replicate(ctx)
    clock.advance(minutes=10)
    replicate(ctx)  # the newest of two
    with ctx.store.transaction() as conn:
        before = {v.name: v for v in rows.vms_of(conn, ticket)}
        usage_before = Usage.from_lines(rows.ledger_lines(conn)).tenant_cloud
    admin = ctx.state.users.get("admin")
    assert admin is not None
    newest = {r.vm: r for r in replica_listing(ctx.store, admin) if r.state == "ready"}  # oldest first: the last one wins
    assert ledger(ctx)[("sg-dr", "dr")] == (2, 2)
    clock.advance(minutes=5)
    run_id = approved_run(ctx)
    clock.advance(minutes=1)
    onboarded: list[tuple[str, Any]] = []
    done = activation(ctx, onboard=lambda tenant, endpoint: onboarded.append((tenant, endpoint))).activate(run_id)
    assert onboarded == [("gd-mzt", SG)]  # once per tenant and endpoint, before its first rebuild

    assert done.run.state == "finished" and len(done.run.moved) == 2 and done.run.plan.held == ()
    servers = {s.name: s for s in dr_servers(cloud)}
    assert set(servers) == set(before)  # only the dr VMs, in gd-sg
    with ctx.store.transaction() as conn:
        after = {v.name: v for v in rows.vms_of(conn, ticket)}
        usage_after = Usage.from_lines(rows.ledger_lines(conn)).tenant_cloud
        moves = runs.moves_of(conn, [run_id])
    for name, row in after.items():
        server = servers[name]
        assert (row.centre, row.region, row.zone, row.server_id, row.status) == ("sg-dr", "gd-sg", "sg-dr", server.id, "ACTIVE")
        assert server.metadata["govcloud:replica"] == newest[name].id and server.zone == "sg-dr"
        assert row.server_id != before[name].server_id and row.flavor == before[name].flavor
        report = done.reports[name]
        assert report["image"] == newest[name].dr_image and report["old_server"] == before[name].server_id
        assert report["data_loss_s"] == 300.0  # the newest replica was taken 5 minutes before the declaration
        assert report["rto_s"] == 60.0
    assert ledger(ctx).get(("sg-dr", "dr")) is None and ledger(ctx)[("sg-dr", "vm")] == (2, 2)  # the reservation became the allocation
    assert ("gz-main", "vm") not in ledger(ctx) or ledger(ctx)[("gz-main", "vm")][0] == 1  # the ha ticket's VM is still there
    assert usage_after == usage_before  # the tenant's quota use does not change
    assert {m.state for m in moves} == {"moved"} and all("data loss 300 s, RTO 60 s" in m.message for m in moves)
    actions = [r.action for r in ctx.store.audit.records()]
    assert actions.count("dr.activate") == 2 and actions.count("dr.server-lost") == 2
    lost = [r for r in ctx.store.audit.records() if r.action == "dr.server-lost"]
    assert {r.details["server"] for r in lost} == {v.server_id for v in before.values()}
    assert actions[-1] == "dr-activation.end" and all_runs(ctx)[0].state == "finished"
    assert set(all_runs(ctx)[0].detail["vms"]) == set(before)
    assert len(cloud.in_region(GZ)) == 4  # the old servers are not touched (their centres are lost)

    again = activation(ctx).plan("gd-prov")[0]
    assert again.moves == () and again.held == ()  # a second activation has nothing to do


def test_a_vm_without_a_replica_is_held_with_the_reason(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path, clock: Clock) -> None:
    first = active_ticket(ctx, tmp_path, "dr", count=1)
    replicate(ctx)
    second = active_ticket(ctx, tmp_path, "dr", count=2)  # made after the replication: no replica
    done = activation(ctx).activate(approved_run(ctx))
    assert [o.move.vm.ticket for o in done.run.moved] == [first] and done.run.state == "finished"
    held = done.run.plan.held
    assert {h.vm.ticket for h in held} == {second} and len(held) == 2
    assert all(h.reason.startswith("no ready replica in gd-sg: nothing to rebuild it from") for h in held)
    with ctx.store.transaction() as conn:
        journal = {m.vm: (m.state, m.message) for m in runs.moves_of(conn, [done.run.run_id])}
        rows_ = rows.vms_of(conn, second)
    assert journal[done.run.moved[0].move.vm.name][0] == "moved"
    assert {journal[h.vm.name] for h in held} == {("held", held[0].reason)}
    assert {r.centre for r in rows_} <= {"gz-main", "gz-backup"}
    assert ledger(ctx)[("sg-dr", "dr")] == (2, 2)  # the held VMs keep their reservation


def test_vms_are_rebuilt_in_the_recovery_plans_priority_order(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path, clock: Clock) -> None:
    from govcloud.engine import provision, tickets

    welfare = active_ticket(ctx, tmp_path, "dr", count=1)  # gd-mzt/mzoa: no group, "unplanned" (priority 3); its id sorts first
    police, path = write_ticket(tmp_path, ticket_id="zz-police", tenant="gd-gat", system="hukou", requester="sunkai", roles=(), protection="dr",
                                vms=[{"name": "app", "count": 1, "flavor": "gc.small", "cloud": "gd-prov", "centre": "any"}])
    (row,) = tickets.submit(ctx, [path])
    if row.state == "submitted":
        tickets.approve(ctx, police)
    provision.apply(ctx, [police])
    replicate(ctx)
    hooks: list[str] = []

    def hook(call: HookCall) -> HookResult:
        hooks.append(call.step.name)
        return HookResult(True, "ok")

    seen: list[str] = []
    done = activation(ctx, hook=hook, settings=ONE_AT_A_TIME).activate(approved_run(ctx), on_outcome=lambda o: seen.append(o.move.vm.ticket))
    assert [s.name for s in done.run.plan.steps] == ["public-security", "unplanned"]
    assert [m.vm.ticket for m in done.run.plan.moves] == [police, welfare]
    assert seen == [police, welfare]  # public-security (priority 1) first, although submitted later and its id sorts last
    assert hooks == ["public-security"]  # its hook ran on its rebuilt VM (smoke), as in a failover
    with ctx.store.transaction() as conn:
        steps = runs.steps_of(conn, done.run.run_id)
    assert [(s.group_name, s.seq, s.state) for s in steps] == [("public-security", 0, "done"), ("unplanned", 1, "done")]


def test_a_rebuild_whose_answer_was_lost_boots_no_second_server(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path, clock: Clock) -> None:
    from govcloud.errors import TemporaryError

    active_ticket(ctx, tmp_path, "dr", count=1)
    replicate(ctx)
    cloud.faults["create_server:done"] = [TemporaryError("connection reset after nova took the request", delay=0)]
    done = activation(ctx).activate(approved_run(ctx))
    assert len(done.run.moved) == 1 and len(dr_servers(cloud)) == 1


def test_a_failed_rebuild_is_journalled_and_keeps_the_vm_and_its_reservation(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                              clock: Clock) -> None:
    from govcloud.errors import PermanentError

    ticket = active_ticket(ctx, tmp_path, "dr", count=1)
    replicate(ctx)
    cloud.faults["create_server"] = [PermanentError("No valid host was found")]
    done = activation(ctx).activate(approved_run(ctx))
    assert done.run.state == "failed" and "No valid host" in done.run.failed[0].detail
    assert len(done.run.failed) == 1
    with ctx.store.transaction() as conn:
        (row,) = rows.vms_of(conn, ticket)
    assert row.centre != "sg-dr" and ledger(ctx)[("sg-dr", "dr")] == (1, 1)
    assert "dr.activate.failed" in [r.action for r in ctx.store.audit.records()]


def test_the_daemon_does_not_take_over_a_waiting_activation(ctx: EngineContext, clock: Clock) -> None:
    """A request's process exits at once: its run looks abandoned, but it waits for approval, not for a leader."""
    activation(ctx, owner="gone-host:1:abc").request("gd-prov", reason="flood", declare_lost=True)
    actor = ctx.state.users.get("yunwei-he")
    assert actor is not None
    recovery = Recovery(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, now=ctx.now, actor=actor,
                        clock=lambda: T0.timestamp() + 3600)
    assert recovery.journal.stale_runs() == []


def test_retiring_a_ticket_after_activation_deletes_its_servers_in_sg_dr(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                         clock: Clock) -> None:
    """The VM rows name servers in another region than the ticket's plan: retirement must look there too."""
    from govcloud.engine import provision

    ticket = active_ticket(ctx, tmp_path, "dr", count=2)
    replicate(ctx)
    activation(ctx).activate(approved_run(ctx))
    assert len(dr_servers(cloud)) == 2
    provision.retire(ctx, ticket)
    assert dr_servers(cloud) == []
    assert [s for s in cloud.in_region(GZ) if ticket in s.name] == []  # the lost originals too, once reachable
    assert ledger(ctx) == {}


class Killed(BaseException):
    """The process carrying the run dies (kill -9) right after nova accepted a create."""


def test_a_run_killed_mid_way_is_taken_over_and_boots_no_vm_twice(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                  clock: Clock) -> None:
    ticket = active_ticket(ctx, tmp_path, "dr", count=2)
    replicate(ctx)
    run_id = approved_run(ctx)
    creates = cloud.creates
    cloud.faults["create_server:done"] = [Killed()]
    with pytest.raises(Killed):
        activation(ctx, settings=ONE_AT_A_TIME).activate(run_id)
    with ctx.store.transaction() as conn:
        recorded = {v.server_id for v in rows.vms_of(conn, ticket) if v.centre == "sg-dr"}
    unrecorded = [s for s in dr_servers(cloud) if s.id not in recorded]
    assert len(unrecorded) == 1 and all_runs(ctx)[0].state == "running"  # booted, never recorded: the process died
    with pytest.raises(runs.RunInProgress, match="is carried out by"):
        activation(ctx, clock=lambda: clock.now.timestamp()).activate(run_id)  # its heartbeat is fresh: nobody may take it yet
    later = activation(ctx, clock=lambda: clock.now.timestamp() + 3600)
    done = later.activate(run_id)
    assert done.run.resumed and done.run.state == "finished" and len(done.run.moved) == 1  # the one the dead run had not recorded
    assert len(dr_servers(cloud)) == 2 and cloud.creates == creates + 2  # the dead run's server found by its metadata, not booted again
    assert unrecorded[0].id in {r["server"] for r in done.reports.values()}
    with ctx.store.transaction() as conn:
        assert {v.centre for v in rows.vms_of(conn, ticket)} == {"sg-dr"}
    assert ledger(ctx)[("sg-dr", "vm")] == (2, 2) and ("sg-dr", "dr") not in ledger(ctx)
    assert "dr-activation.resume" in [r.action for r in ctx.store.audit.records()]


def test_a_tenant_that_cannot_be_onboarded_in_the_dr_region_fails_its_vms_only(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                                clock: Clock) -> None:
    from govcloud.errors import NotFound

    active_ticket(ctx, tmp_path, "dr", count=2)
    replicate(ctx)

    def onboard(tenant: str, endpoint: Any) -> None:
        raise NotFound(f"tenant {tenant} has no quota reaching {endpoint.region}")

    done = activation(ctx, onboard=onboard).activate(approved_run(ctx))
    assert done.run.state == "failed" and len(done.run.failed) == 2 and dr_servers(cloud) == []
    assert all("has no quota reaching gd-sg" in o.detail for o in done.run.failed)
