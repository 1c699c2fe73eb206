"""Fencing wired into the recovery (issue 13 item 4): ``failover run`` and the daemon fence a centre whose
method is not ``none`` before planning; the hosts counted down are those nova reports down or the fence
confirmed off — in a partial fence only the confirmed ones, and nothing is forced down."""

from __future__ import annotations

from pathlib import Path

import pytest

from govcloud.engine.context import EngineContext
from govcloud.failover.fence import Fencer, FenceReport, recovery_fence
from govcloud.failover.recover import FailoverRefused
from govcloud.model.fencing import CentreFence, Fencing
from tests.support.fakecloud import FakeCloud
from tests.unit.failover.test_fence import SETTINGS, Agent, Clock
from tests.unit.failover.test_recover import active_ticket, recovery

MAIN = ("gd-prov", "gz-main")


def fencer(ctx: EngineContext, cloud: FakeCloud, *, broken: frozenset[str] = frozenset(), method: str = "devcloud") -> Fencer:
    """A Fencer of gz-main over the fake cloud, its agent scripted (test_fence.Agent), time faked."""
    operator = ctx.state.users.get("yunwei-he")
    assert operator is not None
    clock, agent = Clock(), Agent(cloud, [], broken=set(broken))
    fencing = Fencing({MAIN: CentreFence(method=method)}) if method != "none" else Fencing()  # type: ignore[arg-type]
    return Fencer(topology=ctx.state.topology, endpoints=ctx.endpoints, fencing=fencing, driver=ctx.driver, settings=SETTINGS,
                  actor=operator, agent=lambda fence, _s: agent if fence.method != "none" else None, sleep=clock.sleep,
                  monotonic=clock.monotonic)


def test_a_centre_nova_still_reports_up_is_fenced_then_evacuated(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    active_ticket(ctx, tmp_path, "ha")  # two VMs in gz-main; nova reports its hosts up (cut off, say)
    reports: list[FenceReport] = []
    rec = recovery(ctx, fence=fencer(ctx, cloud).for_recovery(reports.append))
    plan = rec.fence_and_plan("gd-prov", "gz-main")
    assert len(plan.moves) == 2 and {m.target for m in plan.moves} == {"gz-backup"}
    assert cloud.force_calls == [("gz-main-1", True), ("gz-main-2", True)] and cloud.powered_off == {"gz-main-1", "gz-main-2"}
    (report,) = reports
    assert report.ready and report.fenced_hosts == ("gz-main-1", "gz-main-2")
    assert rec.run(plan).failed == []


def test_a_partial_fence_counts_only_the_hosts_confirmed_off_and_forces_nothing_down(ctx: EngineContext, cloud: FakeCloud,
                                                                                       tmp_path: Path) -> None:
    active_ticket(ctx, tmp_path, "ha")
    reports: list[FenceReport] = []
    rec = recovery(ctx, fence=fencer(ctx, cloud, broken=frozenset({"gz-main-2"})).for_recovery(reports.append))
    with pytest.raises(FailoverRefused, match=r"nova reports gz-main-2 up in gz-main") as refused:
        rec.fence_and_plan("gd-prov", "gz-main")  # gz-main-1 is off and counted; gz-main-2 is neither down nor fenced
    assert "gz-main-1" not in str(refused.value)
    (report,) = reports
    assert not report.ready and report.fenced_hosts == ("gz-main-1",)
    assert cloud.force_calls == []


def test_method_none_fences_nothing_and_waits_for_nova(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    active_ticket(ctx, tmp_path, "ha")
    rec = recovery(ctx, fence=fencer(ctx, cloud, method="none").for_recovery())
    with pytest.raises(FailoverRefused, match="nova reports gz-main-1, gz-main-2 up in gz-main"):
        rec.fence_and_plan("gd-prov", "gz-main")
    assert cloud.force_calls == [] and cloud.powered_off == set()


def test_no_fence_is_built_where_no_centre_has_a_method(ctx: EngineContext, tmp_path: Path) -> None:
    operator = ctx.state.users.get("yunwei-he")
    assert operator is not None
    built = {"settings": ctx.settings, "topology": ctx.state.topology, "endpoints": ctx.endpoints, "driver": ctx.driver,
             "audit": ctx.store.audit, "actor": operator}
    assert recovery_fence(**built) is None  # type: ignore[arg-type]  # no fencing file (tests.support.tickets.no_fencing)
    fencing = ctx.settings.data.resolve(ctx.settings.data.fencing)
    fencing.write_text("version: 1\nclouds:\n  gd-prov:\n    gz-main: {method: devcloud}\n")
    assert recovery_fence(**built) is not None  # type: ignore[arg-type]


def test_a_centre_still_fenced_is_not_fenced_again_on_the_next_pass(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    """The daemon passes over a down centre again and again: one fence, one ``centre.fence`` record, until
    somebody unfences it (then the next pass fences anew)."""
    active_ticket(ctx, tmp_path, "ha")
    reports: list[FenceReport] = []
    the_fencer = fencer(ctx, cloud)
    fence = the_fencer.for_recovery(reports.append)
    rec = recovery(ctx, fence=fence)
    rec.fence_and_plan("gd-prov", "gz-main")
    rec.fence_and_plan("gd-prov", "gz-main")
    assert len(reports) == 1 and cloud.force_calls == [("gz-main-1", True), ("gz-main-2", True)]
    the_fencer.unfence("gd-prov", "gz-main")
    calls = len(cloud.force_calls)
    rec.fence_and_plan("gd-prov", "gz-main")
    assert len(reports) == 2 and len(cloud.force_calls) == calls + 2
