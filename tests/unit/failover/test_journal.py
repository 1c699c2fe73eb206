"""Every recovery is a journalled run (issue 13, items 2 and 3), on the in-memory cloud: groups in the
recovery plan's order, moves in parallel within their bounds, hooks, one run per centre, a run whose
process died taken over and resumed without moving a VM twice."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from govcloud.drivers.base import ComputeDriver, Endpoint, Server
from govcloud.engine.context import EngineContext
from govcloud.failover.recover import FailoverRefused
from govcloud.failover.steps import HookCall, HookResult
from govcloud.settings import FailoverSettings
from govcloud.store import runs
from govcloud.store.runs import RunInProgress
from tests.support.fakecloud import FakeCloud
from tests.support.tickets import write_ticket
from tests.unit.failover.test_recover import fail, recovery

SYSTEMS = [("gd-gat", "hukou", "sunkai", "dr"), ("gd-zsj", "sjgx", "yuantao", "dr"), ("gd-mzt", "shjz", "caijing", "ha")]
"""Systems of three groups of the sample plan recovery/gd-prov.yaml: public-security (1), data-exchange (2), welfare (4)."""


def province(ctx: EngineContext, tmp_path: Path, count: int = 4) -> None:
    """One ticket per system of SYSTEMS, ``count`` VMs each (half of them land in gz-main)."""
    from govcloud.engine import provision, tickets

    for tenant, system, requester, protection in SYSTEMS:
        ticket_id, path = write_ticket(tmp_path, tenant=tenant, system=system, requester=requester, roles=(), protection=protection,
                                       vms=[{"name": "app", "count": count, "flavor": "gc.small", "cloud": "gd-prov", "centre": "any"}])
        (row,) = tickets.submit(ctx, [path])
        if row.state == "submitted":
            tickets.approve(ctx, ticket_id)
        provision.apply(ctx, [ticket_id])


class Slow:
    """A driver factory whose evacuations take ``delay`` seconds and count how many run at once, per target host."""

    def __init__(self, factory: Callable[[Endpoint], ComputeDriver], delay: float) -> None:
        self.factory = factory
        self.delay = delay
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.per_host: dict[str, int] = {}
        self.peak_host = 0
        self.calls: list[str] = []

    def __call__(self, endpoint: Endpoint) -> Any:
        inner = self.factory(endpoint)
        outer = self

        class Driver:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            def evacuate_server(self, tenant: str, server_id: str, *, host: str, timeout: float) -> Server:
                with outer.lock:
                    outer.calls.append(server_id)
                    outer.now += 1
                    outer.per_host[host] = outer.per_host.get(host, 0) + 1
                    outer.peak, outer.peak_host = max(outer.peak, outer.now), max(outer.peak_host, outer.per_host[host])
                time.sleep(outer.delay)
                try:
                    return inner.evacuate_server(tenant, server_id, host=host, timeout=timeout)
                finally:
                    with outer.lock:
                        outer.now -= 1
                        outer.per_host[host] -= 1

        return Driver()


def journal(ctx: EngineContext, run_id: int) -> tuple[runs.RunRow, list[runs.MoveRow], list[runs.StepRow]]:
    with ctx.store.transaction() as conn:
        run = runs.get_run(conn, run_id)
        assert run is not None
        return run, runs.moves_of(conn, [run_id]), runs.steps_of(conn, run_id)


def test_groups_are_recovered_in_priority_order_and_journalled(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    province(ctx, tmp_path)
    fail(cloud, "gz-main")
    calls: list[HookCall] = []

    def hook(call: HookCall) -> HookResult:
        calls.append(call)
        return HookResult(call.step.name != "data-exchange", "smoke: ok" if call.step.name != "data-exchange" else "host x: port 80 closed")

    result = recovery(ctx, hook=hook).run(recovery(ctx).plan("gd-prov", "gz-main"))
    assert result.state == "finished" and len(result.moved) == 6 and result.failed == []
    run, moves, steps = journal(ctx, result.run_id)
    assert (run.kind, run.state, run.started_by, run.finished_at is not None) == ("failover", "finished", "yunwei-he", True)
    assert [s.group_name for s in steps] == ["public-security", "data-exchange", "welfare"]
    assert [(s.state, s.hook) for s in steps] == [("done", "smoke"), ("hook-failed", "smoke"), ("done", None)]
    assert steps[1].hook_result == "host x: port 80 closed"  # recorded; in a disaster the run goes on
    by_group: dict[str, list[runs.MoveRow]] = {}
    for move in moves:
        assert (move.state, move.target_centre, move.source_centre, move.source_host) == ("moved", "gz-backup", "gz-main", "gz-main-1")
        assert move.started_at and move.ended_at and move.message.startswith("ACTIVE on gz-backup-")
        by_group.setdefault(move.group_name, []).append(move)
    order = ["public-security", "data-exchange", "welfare"]
    for earlier, later in itertools.pairwise(order):  # a group starts once the one before has ended (hook included)
        assert max(m.ended_at or "" for m in by_group[earlier]) <= min(m.started_at or "" for m in by_group[later])
    assert [c.step.name for c in calls] == ["public-security", "data-exchange"]
    assert {v.centre for c in calls for v in c.vms} == {"gz-backup"} and all(len(c.vms) == 2 for c in calls)
    audit = [r for r in ctx.store.audit.records() if r.action == "failover.end"]
    assert audit[-1].details["hooks_failed"] == ["data-exchange"]


def test_moves_of_a_group_run_in_parallel_within_the_bounds(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    province(ctx, tmp_path, count=8)  # 4 VMs per group in gz-main, onto gz-backup's two hosts
    fail(cloud, "gz-main")
    slow = Slow(ctx.driver, 0.05)
    actor = ctx.state.users.get("yunwei-he")
    assert actor is not None
    from govcloud.failover.recover import Recovery

    bounded = Recovery(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=slow, now=ctx.now, actor=actor,
                       settings=FailoverSettings(parallel_per_cloud=3, parallel_per_host=1))
    result = bounded.run(bounded.plan("gd-prov", "gz-main"))
    assert len(result.moved) == 12 and (slow.peak, slow.peak_host) == (2, 1)  # 2 target hosts, 1 each: 2 at once (in parallel), not 3
    slow.peak = slow.peak_host = 0
    fail(cloud, "gz-backup")  # and back the other way, the cloud bound the tighter one
    cloud.services = {e: [s if s.zone != "gz-main" else type(s)(**{**s.__dict__, "state": "up"}) for s in ss]
                      for e, ss in cloud.services.items()}
    back = Recovery(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=slow, now=ctx.now, actor=actor,
                    settings=FailoverSettings(parallel_per_cloud=1, parallel_per_host=4))
    assert len(back.run(back.plan("gd-prov", "gz-backup")).moved) == 24 and slow.peak == 1


def test_one_run_per_centre_at_a_time(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    province(ctx, tmp_path)
    fail(cloud, "gz-main")
    first = recovery(ctx)
    with ctx.store.transaction() as conn:  # a live process (this one, another owner id) carries a run
        run = runs.create_run(conn, kind="failover", cloud="gd-prov", centre="gz-main", user="yunwei-he", owner=first.journal.owner,
                              now=ctx.now(), plan={})
    with pytest.raises(RunInProgress, match=f"run {run.id} \\(failover\\) of gd-prov/gz-main is carried out by") as refused:
        recovery(ctx).run(recovery(ctx).plan("gd-prov", "gz-main"))
    assert refused.value.exit_code == 2
    with ctx.store.transaction() as conn, pytest.raises(RunInProgress):  # the store refuses it too, whoever asks
        runs.create_run(conn, kind="failover", cloud="gd-prov", centre="gz-main", user="x", owner="y", now=ctx.now(), plan={})
    with ctx.store.transaction() as conn:
        assert runs.end_run(conn, run.id, state="cancelled", now=ctx.now(), detail={"why": "test"})
    assert recovery(ctx).run(recovery(ctx).plan("gd-prov", "gz-main")).state == "finished"  # the centre is free again


def test_a_run_whose_process_died_is_taken_over_and_no_vm_moves_twice(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    import socket

    province(ctx, tmp_path)
    fail(cloud, "gz-main")
    plan = recovery(ctx).plan("gd-prov", "gz-main")
    dead = f"{socket.gethostname()}:{2**22 + 7}:dead00"  # above pid_max's default: no such process
    with ctx.store.transaction() as conn:
        run = runs.create_run(conn, kind="failover", cloud="gd-prov", centre="gz-main", user="yunwei-he", owner=dead, now=ctx.now(), plan={})
    first = plan.moves[0]  # the dead process had sent this one: nova moved it, the record was lost
    ctx.driver(Endpoint("devcloud-admin", "gd-gz")).evacuate_server(first.vm.tenant, first.vm.server_id or "", host=first.host, timeout=1)
    counting = Slow(ctx.driver, 0)
    actor = ctx.state.users.get("yunwei-he")
    assert actor is not None
    from govcloud.failover.recover import Recovery

    resumer = Recovery(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=counting, now=ctx.now, actor=actor)
    result = resumer.run(plan)
    assert (result.run_id, result.resumed, result.state) == (run.id, True, "finished")
    assert sorted(counting.calls) == sorted(m.vm.server_id or "" for m in plan.moves[1:])  # the first is recognised, only recorded
    row, moves, _ = journal(ctx, run.id)
    assert row.resumed == 1 and row.owner == resumer.journal.owner and {m.state for m in moves} == {"moved"}
    assert "failover.resume" in [r.action for r in ctx.store.audit.records()]


def test_a_run_with_a_fresh_heartbeat_of_another_host_is_not_taken_over(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    province(ctx, tmp_path, count=2)
    fail(cloud, "gz-main")
    with ctx.store.transaction() as conn:
        runs.create_run(conn, kind="failover", cloud="gd-prov", centre="gz-main", user="x", owner="elsewhere:1:abc", now=ctx.now(), plan={})
    with pytest.raises(RunInProgress):
        recovery(ctx).run(recovery(ctx).plan("gd-prov", "gz-main"))
    later = recovery(ctx, clock=lambda: time.time() + 31)  # silent for longer than stale_after (30 s)
    assert later.run(later.plan("gd-prov", "gz-main")).resumed is True


def test_a_cancelled_run_sends_no_further_vm(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    province(ctx, tmp_path, count=8)
    fail(cloud, "gz-main")
    slow = Slow(ctx.driver, 0.3)
    actor = ctx.state.users.get("yunwei-he")
    assert actor is not None
    from govcloud.failover.recover import Recovery

    runner = Recovery(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=slow, now=ctx.now, actor=actor,
                      settings=FailoverSettings(parallel_per_cloud=1, heartbeat_interval=0.05))
    plan = runner.plan("gd-prov", "gz-main")
    results: list[Any] = []
    thread = threading.Thread(target=lambda: results.append(runner.run(plan)))
    thread.start()
    wait = time.monotonic() + 10
    while not slow.calls and time.monotonic() < wait:
        time.sleep(0.02)
    cancelled = recovery(ctx).cancel("gd-prov", "gz-main", reason="the centre is back: do not move more")
    thread.join(timeout=30)
    (result,) = results
    assert result.state == "cancelled" and result.run_id == cancelled.id
    assert 1 <= len(result.moved) < len(plan.moves)  # the move in flight finished; the rest were not sent
    assert len(slow.calls) == len(result.moved)
    row, moves, _ = journal(ctx, cancelled.id)
    assert row.state == "cancelled" and row.detail["cancelled_by"] == "yunwei-he"
    assert [m.state for m in moves] == ["moved"] * len(result.moved)  # nothing else was sent, nothing left "moving"
    assert "failover.cancel" in [r.action for r in ctx.store.audit.records()]
    with pytest.raises(FailoverRefused, match="nothing to cancel"):
        recovery(ctx).cancel("gd-prov", "gz-main", reason="again")
