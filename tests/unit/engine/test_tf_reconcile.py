"""Reconcile of a Terraform cloud with the fake Terraform driver (state the test changes behind govcloud's
back, as the cloud's own API would): drift found by a refreshed plan and recorded like the OpenStack
path's, ``report`` changes nothing, ``correct`` applies that plan only when it just puts back live
tickets' VMs (and records the new ids and the correction), a plan that destroys or replaces is left to a
human, a workspace a ticket's run holds (store state, govcloud's workspace lock or terraform's state lock)
is skipped with its findings kept while a ticket run waits for reconcile's lock (bounded), a workspace
without live tickets has what its state still holds reported and never destroyed (an empty one costs no
terraform run), and a hanging workspace never delays the other clouds. (Real terraform + moto:
tests/integration/test_terraform_reconcile.py.)"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from govcloud.drivers.terraform import PlannedChange, WorkspaceBusy
from govcloud.engine import provision, terraform_path, tickets
from govcloud.engine.context import EngineContext
from govcloud.engine.reconcile import Reconciler
from govcloud.errors import TemporaryError
from govcloud.store import facts
from govcloud.store import terraform_plans as plans_store
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
    ctx: EngineContext = engine("govcloud-daemon")
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


def _reported(fake: Any, engine: Any, tmp_path: Path) -> tuple[str, facts.CycleStatus, list[facts.Finding]]:
    """An active ticket whose first instance was terminated outside, and the report pass that recorded it."""
    ticket_id = _active(engine, tmp_path)
    del fake.state[WS]["instances"][f"gd-zsj-yunwei-{ticket_id}-1"]
    _pass(engine, "report")
    first, found = _recorded(engine)
    return ticket_id, first, found


def test_a_workspace_held_by_a_ticket_run_or_its_state_lock_is_skipped_and_keeps_its_findings(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id, first, found = _reported(fake, engine, tmp_path)
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


def _hold(fake: Any, holder: str) -> tuple[threading.Event, threading.Thread]:
    """Another run (a thread of its own, as the CLI's process would be) holds the workspace's govcloud lock until released."""
    taken, release = threading.Event(), threading.Event()

    def run() -> None:
        with fake.lock(fake.workspace("gd-zsj", "tp-ecloud"), wait=0, holder=holder):
            taken.set()
            release.wait(30)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert taken.wait(5)
    return release, thread


def _submitted(engine: Any, tmp_path: Path, name: str = "db") -> str:
    other, path = write_ticket(tmp_path, tenant="gd-zsj", system="yunwei", requester="yuantao", roles=(),
                               vms=[{"name": name, "count": 1, "flavor": "gc.medium", "cloud": "tp-ecloud"}])
    tickets.submit(engine("yuantao"), [path])
    return other


def test_reconcile_never_waits_for_the_workspace_lock_a_ticket_run_holds(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id, first, found = _reported(fake, engine, tmp_path)
    release, holder = _hold(fake, "govcloud plan T-TEST")
    calls = len(fake.calls)
    try:
        started = time.monotonic()
        result = _pass(engine, "correct")["tp-ecloud"]
        assert time.monotonic() - started < 5
    finally:
        release.set()
        holder.join(5)
    assert "skipped this pass: another govcloud run holds its workspace lock" in (result.error or "")
    assert "govcloud plan T-TEST" in (result.error or "") and fake.calls[calls:] == []  # not rendered, not planned
    cycle, kept = _recorded(engine)
    assert cycle.error == result.error and cycle.success_at == first.success_at and kept == found
    assert _pass(engine, "correct")["tp-ecloud"].corrected == (f"gd-zsj-yunwei-{ticket_id}-1",)  # released: the next pass corrects


def test_a_ticket_plan_waits_for_reconcile_and_plans_what_it_rendered(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _active(engine, tmp_path, count=1)
    other = _submitted(engine, tmp_path)
    fake.after_render = threading.Event()  # reconcile pauses between its render and its plan, holding the lock
    fake.rendered.clear()
    start = len(fake.calls)
    passes: list[Any] = []
    recon = threading.Thread(target=lambda: passes.append(_pass(engine, "report")), daemon=True)
    recon.start()
    assert fake.rendered.wait(5)
    planned: list[Any] = []
    planner = threading.Thread(target=lambda: planned.append(terraform_path.plan_ticket(engine("yunwei-he"), other)), daemon=True)
    planner.start()
    time.sleep(0.5)
    assert fake.calls[start:] == ["render"] and not planned  # the ticket's plan waits for the lock, it has not rendered
    fake.after_render.set()
    recon.join(10)
    planner.join(10)
    assert passes and passes[0]["tp-ecloud"].error is None
    assert [c for c in fake.calls[start:] if c != "show"] == ["render", "plan", "render", "plan"]  # never interleaved
    ((record, _),) = planned[0]
    saved = json.loads(Path(record.planfile).read_text())
    assert sorted(saved["desired"]) == sorted([f"gd-zsj-yunwei-{ticket_id}-1", f"gd-zsj-yunwei-{other}-1"])


def test_a_ticket_run_gives_up_on_a_held_workspace_lock_with_a_temporary_error_naming_it(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    _active(engine, tmp_path, count=1)
    other = _submitted(engine, tmp_path)
    fake.lock_wait = 0.3
    release, holder = _hold(fake, "reconcile --policy correct")
    calls = len(fake.calls)
    try:
        with pytest.raises(TemporaryError, match=rf"workspace {WS} is busy: pid \d+: reconcile --policy correct holds") as caught:
            terraform_path.plan_ticket(engine("yunwei-he"), other)
        assert isinstance(caught.value, WorkspaceBusy) and "gave up after waiting 0.3 s" in str(caught.value)
        assert fake.calls[calls:] == []
        with engine("admin").store.transaction() as conn:
            assert plans_store.of_ticket(conn, other) == []
    finally:
        release.set()
        holder.join(5)
    terraform_path.plan_ticket(engine("yunwei-he"), other)
    tickets.approve(engine("shenpi-chen"), other)
    release, holder = _hold(fake, "reconcile --policy correct")
    try:
        (outcome,) = provision.apply(engine("yunwei-he"), [other], configure=False)
    finally:
        release.set()
        holder.join(5)
    assert outcome.state == "busy" and f"workspace {WS} is busy" in outcome.detail
    with engine("admin").store.transaction() as conn:
        assert rows.require(conn, other).state == "approved"  # unchanged: the next run applies it
    (outcome,) = provision.apply(engine("yunwei-he"), [other], configure=False)
    assert outcome.state == "active", outcome.detail


def test_a_workspace_without_live_tickets_reports_what_its_state_holds_and_destroys_nothing(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _active(engine, tmp_path)
    with engine("admin").store.transaction() as conn:  # as a provisioning run whose apply failed and whose rollback stopped half-way
        conn.execute(sa.update(tickets_table).where(tickets_table.c.id == ticket_id).values(state="failed"))
    fake.state[WS]["instances"]["stray"] = {"id": "i-stray", "size": "t3.micro"}  # applied into the workspace outside govcloud
    fake.state[WS]["resources"] = {"module.ec2.aws_security_group.tenant": "sg-1"}
    before = json.dumps(fake.state, sort_keys=True)
    fake.calls.clear()
    result = _pass(engine, "correct")["tp-ecloud"]
    assert result.error is None and result.corrected == () and result.servers == 3
    assert fake.calls == ["show-state"] and json.dumps(fake.state, sort_keys=True) == before  # read, never planned nor applied
    found = {d.name: d for d in result.findings}
    mine = [f"gd-zsj-yunwei-{ticket_id}-{i}" for i in (1, 2)]
    assert {n: (d.kind, d.reason, d.ticket) for n, d in found.items()} == {
        mine[0]: ("orphan", "no-ticket", ticket_id), mine[1]: ("orphan", "no-ticket", ticket_id), "stray": ("orphan", "no-ticket", None),
        "module.ec2.aws_security_group.tenant": ("drift", "resource", None)}
    assert found[mine[0]].server_id == fake.state[WS]["instances"][mine[0]]["id"]
    assert f"`govcloud ticket retire {ticket_id}` destroys it" in found[mine[0]].describe()
    assert "no ticket owns it" in found["stray"].describe() and "destroy -target='module.ec2.aws_instance.vm[\"stray\"]'" in found["stray"].describe()
    assert "left in the state of a workspace where no ticket is live" in found["module.ec2.aws_security_group.tenant"].describe()
    cycle, recorded = _recorded(engine)
    assert (cycle.orphans, cycle.drift, cycle.error, cycle.servers) == (3, 1, None, 3) and len(recorded) == 4

    (outcome,) = [provision.retire(engine("yunwei-he"), ticket_id)]  # the remedy the finding names
    assert outcome.state == "retired", outcome.detail
    fake.calls.clear()
    result = _pass(engine, "correct")["tp-ecloud"]
    assert (result.findings, result.error, result.servers) == ((), None, 0)
    assert fake.calls == []  # an empty state costs no terraform run
    cycle, recorded = _recorded(engine)
    assert (cycle.orphans, cycle.drift, recorded) == (0, 0, [])


def test_a_retiring_ticket_holds_a_workspace_without_live_tickets(world: Any, tmp_path: Path) -> None:
    fake, engine = world
    ticket_id = _active(engine, tmp_path, count=1)
    with engine("admin").store.transaction() as conn:  # a retire died half-way: `apply` finishes it, reconcile keeps out
        conn.execute(sa.update(tickets_table).where(tickets_table.c.id == ticket_id).values(state="retiring"))
    fake.calls.clear()
    result = _pass(engine, "correct")["tp-ecloud"]
    assert f"ticket {ticket_id} is retiring" in (result.error or "") and fake.calls == []
