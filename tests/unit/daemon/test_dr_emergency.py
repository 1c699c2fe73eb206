"""The leader daemon and the recovery plan's emergency rule (issue 14, item 2): when the health watch records
both Guangzhou centres down the leader requests the DR activation itself; the rule approves it once its
delay has passed with the centres still down and the leader carries it out; without a rule the run only
waits (the alert); a run an approver decided, or one that ended, is left alone; a leader killed mid-way is
resumed by the next. On the in-memory cloud, time injected (the engine's clock and the health watch's)."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from govcloud.daemon import Daemon
from govcloud.engine.context import EngineContext
from govcloud.failover.activate import KIND
from govcloud.store import runs
from govcloud.store import tickets as rows
from tests.support.fakecloud import GZ, FakeCloud, services
from tests.unit.daemon.test_daemon import as_user, daemon
from tests.unit.failover.test_activate import ONE_AT_A_TIME, Killed, activation, all_runs, dr_servers, ledger, replicate, with_emergency
from tests.unit.failover.test_recover import active_ticket, cloud, ctx
from tests.unit.failover.test_replicate import Clock

__all__ = ["cloud", "ctx"]

DEAD = f"{socket.gethostname()}:{2**22 + 9}:dead00"
"""The owner of a process of this host that no longer exists (a leader killed with kill -9)."""


@pytest.fixture
def clock(ctx: EngineContext) -> Clock:
    moving = Clock()
    ctx.clock = moving
    return moving


def leader(ctx: EngineContext, clock: Clock) -> Daemon:
    """A leader daemon acting as its service identity, its health watch on the test's clock."""
    runner = daemon(as_user(ctx, "govcloud-daemon"), health_confirmations=1)
    runner.watch.clock = lambda: clock.now.timestamp()
    runner.tick(force=True)
    assert runner.leader
    return runner


def lose_guangzhou(runner: Daemon, cloud: FakeCloud, *, lost: bool = True) -> None:
    state = "down" if lost else "up"
    cloud.services[GZ] = services("gz-main", state, state) + services("gz-backup", state, state)
    runner.watch.check()
    runner.watch.check()


def dr_ticket(ctx: EngineContext, tmp_path: Path, count: int = 2) -> str:
    ticket = active_ticket(ctx, tmp_path, "dr", count=count)
    replicate(ctx)
    return ticket


def activations(ctx: EngineContext) -> list[runs.RunRow]:
    return [r for r in all_runs(ctx) if r.kind == KIND]


def test_with_a_rule_the_leader_requests_waits_the_delay_then_activates(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                         clock: Clock) -> None:
    ticket = dr_ticket(ctx, tmp_path)
    with_emergency(ctx, "30m")
    runner = leader(ctx, clock)
    runner.failover_pass()
    assert activations(ctx) == [] and dr_servers(cloud) == []  # the centres are up: nothing asked
    clock.advance(minutes=1)
    lose_guangzhou(runner, cloud)
    runner.failover_pass()
    (run,) = activations(ctx)
    assert (run.state, run.started_by, run.plan["declared_lost"]) == ("new", "govcloud-daemon", False)
    (request,) = [r for r in ctx.store.audit.records() if r.action == "dr-activation.request"]
    assert request.actor == "govcloud-daemon" and "emergency rule" in request.details["reason"]
    assert "written by approver shenpi-chen" in run.detail["rule"]
    assert dr_servers(cloud) == []
    clock.advance(minutes=29)
    runner.failover_pass()
    assert activations(ctx)[0].state == "new" and dr_servers(cloud) == []  # the rule's delay has not passed
    clock.advance(minutes=2)
    runner.failover_pass()
    (done,) = activations(ctx)
    assert done.state == "finished" and done.detail["approval"]["by"] == "system" and "shenpi-chen" in done.detail["approval"]["rule"]
    assert len(dr_servers(cloud)) == 2
    with ctx.store.transaction() as conn:
        assert {v.centre for v in rows.vms_of(conn, ticket)} == {"sg-dr"}
    assert ledger(ctx)[("sg-dr", "vm")] == (2, 2) and ("sg-dr", "dr") not in ledger(ctx)
    actors = {r.action: r.actor for r in ctx.store.audit.records()}
    assert (actors["dr-activation.approve"], actors["dr-activation.start"], actors["dr.activate"]) == ("system", "govcloud-daemon",
                                                                                                     "govcloud-daemon")
    clock.advance(hours=1)
    runner.failover_pass()
    assert len(activations(ctx)) == 1  # one run per episode, even once it ended
    runner.lock.release()


def test_without_a_rule_the_leader_only_requests_and_never_activates(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                     clock: Clock) -> None:
    dr_ticket(ctx, tmp_path)
    runner = leader(ctx, clock)
    lose_guangzhou(runner, cloud)
    runner.failover_pass()
    clock.advance(hours=6)
    runner.failover_pass()
    (run,) = activations(ctx)
    assert run.state == "new" and not run.detail.get("approval") and "has no emergency rule" in run.detail["rule"]
    assert dr_servers(cloud) == []  # it waits for an approver: GovcloudDrActivationAwaitingApproval fires on its state
    runner.lock.release()


def test_the_rule_does_not_approve_once_the_centres_are_back(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path, clock: Clock) -> None:
    dr_ticket(ctx, tmp_path)
    with_emergency(ctx, "30m")
    runner = leader(ctx, clock)
    lose_guangzhou(runner, cloud)
    runner.failover_pass()
    clock.advance(minutes=5)
    lose_guangzhou(runner, cloud, lost=False)
    clock.advance(minutes=60)
    lose_guangzhou(runner, cloud, lost=False)  # the health watch's recovery hold has passed: recorded healthy
    runner.failover_pass()
    (run,) = activations(ctx)
    assert (run.state, run.started_by) == ("new", "govcloud-daemon") and not run.detail.get("approval") and dr_servers(cloud) == []
    runner.lock.release()


def test_a_run_an_approver_approved_or_one_that_ended_is_left_alone(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                    clock: Clock) -> None:
    dr_ticket(ctx, tmp_path)
    with_emergency(ctx, "30m")
    runner = leader(ctx, clock)
    lose_guangzhou(runner, cloud)
    runner.failover_pass()
    (run,) = activations(ctx)
    assert run.started_by == "govcloud-daemon"
    activation(ctx, "shenpi-chen").approve(run.id)  # an approver decided before the rule's delay passed
    clock.advance(hours=1)
    runner.failover_pass()
    (left,) = activations(ctx)
    assert left.state == "new" and left.detail["approval"]["by"] == "shenpi-chen" and dr_servers(cloud) == []  # the operator carries it out
    with ctx.store.transaction() as conn:  # the office called it off: the run ended
        runs.end_run(conn, run.id, state="cancelled", now=ctx.now(), detail={"reason": "called off"})
    runner.failover_pass()
    assert [r.state for r in activations(ctx)] == ["cancelled"] and dr_servers(cloud) == []  # no second run for the same episode
    runner.lock.release()


def test_a_leader_killed_mid_activation_is_resumed_by_the_next_booting_no_vm_twice(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                                    clock: Clock) -> None:
    ticket = dr_ticket(ctx, tmp_path)
    with_emergency(ctx, "30m")
    first = leader(ctx, clock)
    first.dr.activation.journal.owner = DEAD  # its process is gone once Killed propagates
    first.dr.activation.settings = ONE_AT_A_TIME
    lose_guangzhou(first, cloud)
    first.failover_pass()
    clock.advance(minutes=31)
    creates = cloud.creates
    cloud.faults["create_server:done"] = [Killed()]
    with pytest.raises(Killed):
        first.failover_pass()
    first.lock.release()
    with ctx.store.transaction() as conn:
        recorded = {v.server_id for v in rows.vms_of(conn, ticket) if v.centre == "sg-dr"}
    assert activations(ctx)[0].state == "running" and len([s for s in dr_servers(cloud) if s.id not in recorded]) == 1  # booted, unrecorded
    successor = leader(ctx, clock)
    successor.failover_pass()
    (run,) = activations(ctx)
    assert (run.state, run.resumed, run.owner) == ("finished", 1, successor.id)
    assert len(dr_servers(cloud)) == 2 and cloud.creates == creates + 2  # the dead leader's server found, not booted again
    with ctx.store.transaction() as conn:
        assert {v.centre for v in rows.vms_of(conn, ticket)} == {"sg-dr"}
    resume = [r for r in ctx.store.audit.records() if r.action == "dr-activation.resume"]
    assert [r.actor for r in resume] == ["govcloud-daemon"]
    successor.lock.release()


def test_an_approver_approved_run_whose_process_died_is_not_taken_by_the_leader(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                                clock: Clock) -> None:
    dr_ticket(ctx, tmp_path)
    runner = leader(ctx, clock)
    lose_guangzhou(runner, cloud)
    runner.failover_pass()
    (run,) = activations(ctx)
    assert run.started_by == "govcloud-daemon"  # requested by the leader, no rule: an approver approves
    activation(ctx, "shenpi-chen").approve(run.id)
    with ctx.store.transaction() as conn:
        (taken,) = [r for r in runs.runs(conn) if r.id == run.id]
        assert runs.start_run(conn, taken, owner=DEAD, now=ctx.now())  # an operator's `dr activate` started it, then died
    clock.advance(hours=1)
    runner.failover_pass()
    assert activations(ctx)[0].owner == DEAD and dr_servers(cloud) == []  # `govcloud dr activate` takes it over
    runner.lock.release()


def test_the_service_identity_is_what_requests(ctx: EngineContext) -> None:
    """The daemon's activation acts as its service identity (an operator), never as the acting CLI user."""
    runner = daemon(as_user(ctx, "govcloud-daemon"))
    assert runner.dr.activation.actor.id == "govcloud-daemon" and runner.dr.activation.journal.owner == runner.id
    assert dataclasses.asdict(runner.dr.activation.actor)["role"] == "operator"


def test_the_rule_also_approves_a_run_an_operator_requested_and_the_leader_carries_it_out(ctx: EngineContext, cloud: FakeCloud,
                                                                                          tmp_path: Path, clock: Clock) -> None:
    """As the rule would at the operator's next `dr activate`: the run waited its delay, both centres are down."""
    dr_ticket(ctx, tmp_path)
    with_emergency(ctx, "30m")
    runner = leader(ctx, clock)
    lose_guangzhou(runner, cloud)
    run = activation(ctx).request("gd-prov", reason="flood")  # the operator was quicker than the leader
    runner.failover_pass()
    assert [(r.id, r.state) for r in activations(ctx)] == [(run.id, "new")]  # no second request; the rule's delay runs
    clock.advance(minutes=31)
    runner.failover_pass()
    (done,) = activations(ctx)
    assert (done.id, done.state, done.started_by, done.detail["approval"]["by"]) == (run.id, "finished", "yunwei-he", "system")
    assert len(dr_servers(cloud)) == 2
    runner.lock.release()
