"""Reconcile of a Terraform cloud with the fake Terraform driver (state the test changes behind govcloud's
back, as the cloud's own API would): drift found by a refreshed plan and recorded like the OpenStack
path's, ``report`` changes nothing, ``correct`` applies that plan only when it just puts back live
tickets' VMs (and records the new ids and the correction), a plan that destroys or replaces is left to a
human, a workspace a ticket's run holds (store state or terraform's state lock) is skipped with its
findings kept, and a hanging workspace never delays the other clouds. (Real terraform + moto:
tests/integration/test_terraform_reconcile.py.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from govcloud.drivers.terraform import PlannedChange
from govcloud.engine import provision, terraform_path, tickets
from govcloud.engine.context import EngineContext
from govcloud.engine.reconcile import Reconciler
from govcloud.store import facts
from govcloud.store import tickets as rows
from govcloud.store.tables import tickets as tickets_table
from tests.support.fakecloud import FakeCloud
from tests.support.tickets import write_ticket

WS = "gd-zsj--tp-ecloud"


def _active(engine: Any, tmp_path: Path, count: int = 2) -> str:
    ticket_id, path = write_ticket(tmp_path, tenant="gd-zsj", system="yunwei", requester="yuantao", roles=(),
                                   vms=[{"name": "app", "count": count, "flavor": "gc.medium", "cloud": "tp-ecloud"}])
    tickets.submit(engine("yuantao"), [path])
    terraform_path.plan_ticket(engine("yunwei-he"), ticket_id)
    tickets.approve(engine("shenpi-chen"), ticket_id)
    (outcome,) = provision.apply(engine("yunwei-he"), [ticket_id], configure=False)
    assert outcome.state == "active", outcome.detail
    return ticket_id


def _ctx(engine: Any) -> EngineContext:
    ctx: EngineContext = engine("system")
    ctx.driver_factory = FakeCloud().driver  # the OpenStack clouds: empty and answering
    return ctx


def _pass(engine: Any, policy: str, *, timeout: float = 30.0) -> dict[str, Any]:
    ctx = _ctx(engine)
    reconciler = Reconciler(ctx, policy=policy, timeout=timeout)
    try:
        results = {r.cloud: r for r in reconciler.run()}
    finally:
        reconciler.close()
    return results


def _recorded(engine: Any) -> tuple[facts.CycleStatus, list[facts.Finding]]:
    with engine("admin").store.transaction() as conn:
        return {c.cloud: c for c in facts.cycles(conn)}["tp-ecloud"], facts.findings_of(conn, cloud="tp-ecloud")


def _vm_ids(engine: Any, ticket_id: str) -> dict[str, str | None]:
    with engine("admin").store.transaction() as conn:
        return {vm.name: vm.server_id for vm in rows.vms_of(conn, ticket_id)}


def test_a_deleted_instance_is_drift_report_changes_nothing_correct_recreates_it(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _active(engine, tmp_path)
    lost = f"gd-zsj-yunwei-{ticket_id}-1"
    before = _vm_ids(engine, ticket_id)
    del fake.state[WS]["instances"][lost]  # terminated through the cloud's API
    fake.calls.clear()

    result = _pass(engine, "report")["tp-ecloud"]
    assert [(d.kind, d.reason, d.name, d.ticket) for d in result.findings] == [("drift", "missing", lost, ticket_id)]
    assert (result.servers, result.corrected, result.error) == (1, (), None)
    assert "apply" not in fake.calls and fake.lock_timeouts[-1] == 0  # never queues behind a run that holds the lock
    cycle, found = _recorded(engine)
    assert (cycle.drift, cycle.orphans, cycle.corrected, cycle.error, cycle.servers) == (1, 0, 0, None, 1)
    assert [(f.kind, f.key, f.tenant) for f in found] == [("drift", f"{ticket_id}/1", "gd-zsj")]
    assert "no server exists" in found[0].detail and _vm_ids(engine, ticket_id) == before

    result = _pass(engine, "correct")["tp-ecloud"]
    assert result.corrected == (lost,) and fake.calls.count("apply") == 1
    after = _vm_ids(engine, ticket_id)
    assert after[lost] not in (None, before[lost]) and after[lost] == fake.state[WS]["instances"][lost]["id"]
    assert after[f"gd-zsj-yunwei-{ticket_id}-2"] == before[f"gd-zsj-yunwei-{ticket_id}-2"]
    cycle, found = _recorded(engine)
    assert cycle.corrected == 1 and found[0].detail.endswith("— recreated")
    (audit,) = [r for r in engine("admin").store.audit.records(subject="cloud:tp-ecloud") if r.action == "reconcile.correct"]
    assert audit.details["workspace"] == WS and audit.details["recreated"] == [lost] and audit.details["instances"] == {lost: after[lost]}
    assert [r.action for r in engine("admin").store.audit.records(subject="cloud:tp-ecloud")].count("reconcile.drift") == 1

    result = _pass(engine, "correct")["tp-ecloud"]
    assert result.findings == () and result.corrected == ()
    cycle, found = _recorded(engine)
    assert (cycle.drift, cycle.error, found) == (0, None, [])


def test_a_plan_that_replaces_or_destroys_is_left_to_a_human(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _active(engine, tmp_path)
    lost = f"gd-zsj-yunwei-{ticket_id}-2"
    del fake.state[WS]["instances"][lost]
    fake.extra_changes = [PlannedChange("module.ec2.aws_security_group.tenant", "replace")]  # deleted by hand, say
    applies = fake.calls.count("apply")
    result = _pass(engine, "correct")["tp-ecloud"]
    assert fake.calls.count("apply") == applies and result.corrected == ()
    by_reason = {d.reason: d for d in result.findings}
    assert set(by_reason) == {"missing", "resource"} and by_reason["resource"].name == "module.ec2.aws_security_group.tenant"
    for drift in result.findings:
        assert "not applied unattended (it would replace module.ec2.aws_security_group.tenant" in drift.describe()
        assert "a human must review the plan" in drift.describe()
    cycle, found = _recorded(engine)
    assert cycle.drift == 2 and {f.key for f in found} == {f"{ticket_id}/2", f"{WS}:module.ec2.aws_security_group.tenant"}


def test_an_instance_changed_outside_is_updated_in_place_and_a_stopped_one_only_reported(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _active(engine, tmp_path)
    changed, stopped = (f"gd-zsj-yunwei-{ticket_id}-{i}" for i in (1, 2))
    ids = _vm_ids(engine, ticket_id)
    fake.state[WS]["instances"][changed]["size"] = "s6.xlarge.2"
    fake.state[WS]["instances"][stopped]["status"] = "SHUTOFF"
    result = _pass(engine, "correct")["tp-ecloud"]
    assert {(d.reason, d.name) for d in result.findings} == {("changed", changed), ("stopped", stopped)}
    assert result.corrected == (changed,) and fake.state[WS]["instances"][changed]["size"] == "s6.large.2"
    assert _vm_ids(engine, ticket_id) == ids  # updated in place: same instances
    result = _pass(engine, "correct")["tp-ecloud"]
    assert [(d.reason, d.name) for d in result.findings] == [("stopped", stopped)]  # an operator's doing, maybe: never started


def test_a_workspace_held_by_a_ticket_run_or_its_state_lock_is_skipped_and_keeps_its_findings(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _active(engine, tmp_path)
    del fake.state[WS]["instances"][f"gd-zsj-yunwei-{ticket_id}-1"]
    _pass(engine, "report")
    first, found = _recorded(engine)
    fake.locked.add(WS)  # a ticket's apply (CLI, another host) holds terraform's state lock
    result = _pass(engine, "correct")["tp-ecloud"]
    assert "another terraform run holds its state lock" in (result.error or "") and "apply" not in fake.calls[-3:]
    cycle, kept = _recorded(engine)
    assert cycle.error == result.error and cycle.success_at == first.success_at and kept == found and cycle.drift == 1
    fake.locked.clear()
    with engine("admin").store.transaction() as conn:  # a run died mid-apply: the engine resumes it, reconcile keeps out
        conn.execute(sa.update(tickets_table).where(tickets_table.c.id == ticket_id).values(state="provisioning"))
    plans = fake.calls.count("plan")
    result = _pass(engine, "correct")["tp-ecloud"]
    assert f"ticket {ticket_id} is provisioning" in (result.error or "") and fake.calls.count("plan") == plans


def test_a_waiting_saved_plan_of_another_ticket_is_not_made_stale(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _active(engine, tmp_path, count=1)
    del fake.state[WS]["instances"][f"gd-zsj-yunwei-{ticket_id}-1"]
    other, path = write_ticket(tmp_path, tenant="gd-zsj", system="yunwei", requester="yuantao", roles=(),
                               vms=[{"name": "db", "count": 1, "flavor": "gc.medium", "cloud": "tp-ecloud"}])
    tickets.submit(engine("yuantao"), [path])
    terraform_path.plan_ticket(engine("yunwei-he"), other)  # saved, not yet approved: its plan is bound to this state
    serial = fake.state[WS]["serial"]
    result = _pass(engine, "correct")["tp-ecloud"]
    assert result.corrected == () and fake.state[WS]["serial"] == serial
    (drift,) = result.findings
    assert f"the saved plan of ticket(s) {other}" in drift.describe()


def test_a_hanging_workspace_never_delays_the_other_clouds_and_is_not_asked_twice(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    _active(engine, tmp_path, count=1)
    fake.hold = threading.Event()
    plans = fake.calls.count("plan")
    ctx = _ctx(engine)
    reconciler = Reconciler(ctx, policy="correct", timeout=0.5)
    try:
        started = time.monotonic()
        results = {r.cloud: r for r in reconciler.run()}
        assert time.monotonic() - started < 5
        assert "took longer than" in (results["tp-ecloud"].error or "")
        assert results["gd-prov"].error is None  # the OpenStack clouds were recorded as usual
        results = {r.cloud: r for r in reconciler.run()}
        assert "took longer than" in (results["tp-ecloud"].error or "") and fake.calls.count("plan") == plans + 1
        fake.hold.set()
        deadline = time.monotonic() + 10
        while reconciler._workspaces.busy(("gd-zsj", "tp-ecloud")) and time.monotonic() < deadline:
            time.sleep(0.05)
        fake.hold = None
        results = {r.cloud: r for r in reconciler.run()}
        assert results["tp-ecloud"].error is None and fake.calls.count("plan") == plans + 2
    finally:
        reconciler.close()
    with ctx.store.transaction() as conn:
        cycles = {c.cloud: c for c in facts.cycles(conn)}
    assert cycles["tp-ecloud"].error is None and cycles["gd-prov"].success_at


def test_terraform_clouds_without_applied_workspaces_run_no_terraform(world: Any) -> None:
    fake, engine = world
    results = _pass(engine, "correct")
    assert fake.calls == [] and results["tp-ecloud"].servers == 0 and results["tp-ecloud"].error is None
