"""The daemon's failover policy, now in failover/policy.py (issue 12's leftover, issue 13's 288-VM findings):
one ``failover.needed`` record per centre-down episode however often the plan changes or the leader
changes, and a run whose process died resumed by the leader."""

from __future__ import annotations

import socket

import pytest

from govcloud.engine import tickets
from govcloud.engine.context import EngineContext
from govcloud.failover.recover import Recovery
from govcloud.planner.failover import Step
from govcloud.store import facts, runs
from tests.support.fakecloud import FakeCloud
from tests.unit.daemon.test_daemon import as_user, centres_of, cloud, ctx, daemon, drop_ha, lose_gz_main

__all__ = ["cloud", "ctx"]


def active_ha(ctx: EngineContext) -> str:
    ticket_id = drop_ha(ctx)
    assert daemon(ctx).run(once=True) == 0
    tickets.approve(as_user(ctx, "shenpi-chen"), ticket_id)
    assert daemon(ctx).run(once=True) == 0
    return ticket_id


def needed(ctx: EngineContext) -> list[dict[str, object]]:
    return [r.details for r in ctx.store.audit.records() if r.action == "failover.needed"]


def test_one_needed_record_per_episode_whatever_moves_and_whoever_leads(ctx: EngineContext, cloud: FakeCloud) -> None:
    ticket_id = active_ha(ctx)
    runner = daemon(ctx, failover_policy="report")
    runner.tick(force=True)
    lose_gz_main(runner, cloud)
    runner.failover_pass()
    (first,) = needed(ctx)
    assert first["moves"] == 2 and first["command"] == "govcloud failover run gz-main --cloud gd-prov"
    operator = ctx.state.users.get("yunwei-he")
    assert operator is not None
    recovery = Recovery(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, now=ctx.now, actor=operator)
    plan = recovery.plan("gd-prov", "gz-main")
    recovery.run(type(plan)(plan.cloud, plan.centre, plan.moves[:1], plan.held, plan.steps))  # an operator moved one: the plan changed
    runner.failover_pass()
    runner.lock.release()
    successor = daemon(ctx, failover_policy="report")  # a new leader, same episode
    successor.tick(force=True)
    successor.failover_pass()
    assert len(needed(ctx)) == 1
    with ctx.store.transaction() as conn:  # the centre came back and went down again: a new episode
        (row,) = [h for h in facts.health(conn) if h.centre == "gz-main"]
        facts.record_health(conn, facts.CentreHealth(**{**row.__dict__, "since": "2030-01-01T00:00:00+00:00"}))
    successor.failover_pass()
    assert [n["episode"] for n in needed(ctx)][1:] == ["2030-01-01T00:00:00+00:00"] and needed(ctx)[1]["moves"] == 1
    assert centres_of(ctx, ticket_id).count("gz-main") == 1
    successor.lock.release()


def test_the_leader_resumes_a_run_whose_process_died(ctx: EngineContext, cloud: FakeCloud) -> None:
    ticket_id = active_ha(ctx)
    runner = daemon(ctx, failover_policy="report")  # resuming is not evacuating on its own: an operator started the run
    runner.tick(force=True)
    lose_gz_main(runner, cloud)
    with ctx.store.transaction() as conn:
        run = runs.create_run(conn, kind="failover", cloud="gd-prov", centre="gz-main", user="yunwei-he",
                              owner=f"{socket.gethostname()}:{2**22 + 9}:dead00", now=ctx.now(), plan={})
    runner.failover_pass()
    with ctx.store.transaction() as conn:
        ended = runs.get_run(conn, run.id)
    assert ended is not None and (ended.state, ended.resumed, ended.owner) == ("finished", 1, runner.id)
    assert centres_of(ctx, ticket_id) == ["gz-backup"] * 4
    runner.lock.release()


def test_the_leader_resumes_a_planned_migration_as_a_migration_never_fencing(ctx: EngineContext, cloud: FakeCloud) -> None:
    """A ``failover migrate`` killed mid-way: the leader finishes it by live migration; the healthy centre is not
    fenced and nothing is evacuated (a failover's resume would have fenced it, a fence method being configured)."""
    from tests.unit.failover.test_fence_wiring import fencer

    ticket_id = active_ha(ctx)
    runner = daemon(ctx, failover_policy="report")
    runner.recovery.fence = fencer(ctx, cloud).for_recovery()
    runner.tick(force=True)
    with ctx.store.transaction() as conn:
        run = runs.create_run(conn, kind="migration", cloud="gd-prov", centre="gz-main", user="yunwei-he",
                              owner=f"{socket.gethostname()}:{2**22 + 9}:dead00", now=ctx.now(), plan={})
    runner.failover_pass()
    with ctx.store.transaction() as conn:
        ended = runs.get_run(conn, run.id)
    assert ended is not None and (ended.kind, ended.state, ended.resumed) == ("migration", "finished", 1)
    assert centres_of(ctx, ticket_id) == ["gz-backup"] * 4
    assert cloud.force_calls == [] and {kind for _, kind, _ in cloud.migrations} == {"live"}
    assert not [r for r in ctx.store.audit.records() if r.action == "centre.fence"]
    runner.lock.release()


def test_the_daemon_runs_recovery_hooks_as_the_cli_does(ctx: EngineContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """A group's hook under the daemon goes through the same Ansible hook runner as `failover run`
    (without one every hooked group was recorded 'hook-failed: no hook runner configured')."""
    from govcloud import daemon as daemon_module
    from govcloud.failover.steps import HookCall, HookResult

    calls: list[HookCall] = []
    monkeypatch.setattr(daemon_module, "ansible_hook", lambda _settings: lambda call: calls.append(call) or HookResult(True, "ok"))
    runner = daemon(ctx)
    assert runner.recovery.hook is not None
    runner.recovery.hook(HookCall(1, "gd-prov", "gz-main", Step("g", 1), ()))
    assert len(calls) == 1


@pytest.mark.parametrize(("fenced", "evacuated"), [("complete", True), ("partial", False), ("no method", False)])
def test_policy_auto_evacuates_only_a_centre_its_fence_method_fenced_completely(ctx: EngineContext, cloud: FakeCloud, fenced: str,
                                                                                evacuated: bool) -> None:
    """``auto``: a centre with a fence method is fenced, and evacuated on the daemon's own only once every host
    is confirmed off and forced down; a partial fence, or method ``none``, is reported as under ``report``."""
    from tests.unit.failover.test_fence_wiring import fencer

    ticket_id = active_ha(ctx)
    runner = daemon(ctx, failover_policy="auto")
    runner.recovery.fence = None if fenced == "no method" else fencer(
        ctx, cloud, broken=frozenset({"gz-main-2"}) if fenced == "partial" else frozenset()).for_recovery()
    runner.tick(force=True)
    lose_gz_main(runner, cloud)
    runner.failover_pass()
    actions = [r.action for r in ctx.store.audit.records() if r.action.startswith("failover.")]
    if evacuated:
        assert actions == ["failover.start", "failover.move", "failover.move", "failover.end"]
        assert centres_of(ctx, ticket_id) == ["gz-backup"] * 4 and cloud.force_calls == [("gz-main-1", True), ("gz-main-2", True)]
    else:
        assert actions == ["failover.needed"] and centres_of(ctx, ticket_id).count("gz-main") == 2
        assert cloud.force_calls == []
    runner.lock.release()


def test_an_unknown_policy_is_refused() -> None:
    from govcloud.failover.policy import POLICIES, FailoverPolicy

    assert POLICIES == ("report", "evacuate", "auto")
    with pytest.raises(ValueError, match="expected one of report, evacuate, auto"):
        FailoverPolicy(None, policy="always", actor="x", may_act=lambda: True)  # type: ignore[arg-type]


def test_the_daemon_fences_with_the_fencing_file(ctx: EngineContext) -> None:
    """The daemon's Recovery carries a fence where the fencing file names a method, none where it names none."""
    assert daemon(ctx).recovery.fence is None  # no fencing file (tests.support.tickets.no_fencing)
    ctx.settings.data.resolve(ctx.settings.data.fencing).write_text("version: 1\nclouds:\n  gd-prov:\n    gz-main: {method: devcloud}\n")
    assert daemon(ctx).recovery.fence is not None


@pytest.mark.parametrize(("silent_after", "method", "evacuated"), [(10.0, "devcloud", True), (0.0, "devcloud", False),
                                                                   (10.0, "none", False)])
def test_silent_heartbeats_let_a_fenced_centre_be_evacuated_before_nova_says_down(ctx: EngineContext, cloud: FakeCloud,
                                                                                    silent_after: float, method: str,
                                                                                    evacuated: bool) -> None:
    """gz-main's computes stopped beating 30 s ago but nova still says ``up`` (its ``service_down_time`` not over).
    With ``health_silent_after`` the watch records the centre down; ``evacuate`` fences it (forced down) and
    evacuates at once. Without the setting nothing is recorded; without a fence method the centre is recorded
    down but nothing is evacuated (nova still says up: a host neither down in nova nor fenced never moves)."""
    import dataclasses
    import datetime

    from tests.support.fakecloud import GZ
    from tests.unit.failover.test_fence_wiring import fencer

    ticket_id = active_ha(ctx)
    runner = daemon(ctx, failover_policy="evacuate", health_silent_after=silent_after)
    runner.recovery.fence = fencer(ctx, cloud, method=method).for_recovery() if method != "none" else None
    runner.tick(force=True)
    now = datetime.datetime(2026, 12, 5, 10, 0, tzinfo=datetime.UTC)
    runner.watch.clock = now.timestamp
    fresh, stale = (now - datetime.timedelta(seconds=s) for s in (2, 30))
    cloud.services[GZ] = [dataclasses.replace(s, updated_at=(stale if s.zone == "gz-main" else fresh).strftime("%Y-%m-%dT%H:%M:%S.%f"))
                          for s in cloud.services[GZ]]
    runner.watch.check()
    recorded = {(h.cloud, h.centre): h for h in runner.watch.check()}[("gd-prov", "gz-main")]
    assert recorded.state == ("down" if silent_after else "healthy"), recorded
    runner.failover_pass()
    actions = [r.action for r in ctx.store.audit.records() if r.action.startswith(("failover.", "centre.fence"))]
    if evacuated:
        assert recorded.detail["services"] == {"gz-main-1": "silent", "gz-main-2": "silent"}
        assert cloud.force_calls == [("gz-main-1", True), ("gz-main-2", True)]
        assert actions == ["failover.start", "failover.move", "failover.move", "failover.end"]
        assert centres_of(ctx, ticket_id) == ["gz-backup"] * 4
    else:
        assert cloud.force_calls == [] and "failover.start" not in actions and centres_of(ctx, ticket_id).count("gz-main") == 2
    runner.lock.release()
