"""The daemon end to end on an in-memory cloud: inbox → auto-approval → VMs; drift corrected; centre
health recorded; a second daemon on the same store stays standby; leases warned and retired."""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from govcloud.daemon import Daemon
from govcloud.engine import changes, leases, provision, tickets
from govcloud.engine.context import EngineContext, build
from govcloud.errors import InvalidState, PermissionDenied
from govcloud.settings import DaemonSettings, Settings
from govcloud.store import facts
from govcloud.store import tickets as rows
from govcloud.store.leader import LeaderLock
from tests.support.fakecloud import GZ, SG, FakeCloud, services, three_centres
from tests.support.tickets import REPO, no_fencing, write_ticket


@pytest.fixture
def cloud() -> FakeCloud:
    return three_centres()


def context(tmp_path: Path, cloud: FakeCloud, user: str = "govcloud-daemon", today: datetime.date | None = None) -> EngineContext:
    settings = Settings.from_env(no_fencing(tmp_path)).with_overrides(root=str(REPO), db=f"sqlite:///{tmp_path / 'state.db'}", user=user)
    settings = dataclasses.replace(settings, state_dir=tmp_path / "state", daemon=DaemonSettings(inbox=tmp_path / "inbox", inbox_settle=0))
    ctx = build(settings, driver_factory=cloud.driver)
    if today is not None:
        ctx.clock = lambda: datetime.datetime.combine(today, datetime.time(12), datetime.UTC)
    return ctx


@pytest.fixture
def ctx(tmp_path: Path, cloud: FakeCloud) -> Iterator[EngineContext]:
    context_ = context(tmp_path, cloud)
    context_.settings.inbox.mkdir(parents=True)
    yield context_
    context_.store.close()


def daemon(ctx: EngineContext, **changes: object) -> Daemon:
    return Daemon(ctx, settings=dataclasses.replace(ctx.settings.daemon, **changes))  # type: ignore[arg-type]


def mine(ctx: EngineContext, user: str = "caijing") -> Path:
    """The user's own inbox directory (0700, owned by whoever runs the tests), as an admin sets it up."""
    directory = ctx.settings.inbox / user
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def drop(ctx: EngineContext, count: int = 2, name: str = "web") -> str:
    """A small ticket the auto-approval rule takes, written into caijing's inbox as a department would."""
    ticket_id, _ = write_ticket(mine(ctx), tenant="gd-mzt", system="mzoa", requester="caijing", roles=(), expires="2027-01-31",
                                vms=[{"name": name, "count": count, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"}])
    return ticket_id


def state_of(ctx: EngineContext, ticket_id: str) -> str:
    with ctx.store.transaction() as conn:
        return rows.require(conn, ticket_id).state


def test_a_dropped_ticket_becomes_vms_and_the_file_moves_to_done(ctx: EngineContext, cloud: FakeCloud) -> None:
    ticket_id = drop(ctx)
    assert daemon(ctx).run(once=True) == 0
    assert state_of(ctx, ticket_id) == "active"
    assert sorted(s.name for s in cloud.in_region(GZ)) == [f"gd-mzt-mzoa-{ticket_id}-1", f"gd-mzt-mzoa-{ticket_id}-2"]
    inbox = ctx.settings.inbox
    assert [p.name for p in inbox.iterdir() if p.is_file()] == [] and list((inbox / "caijing").iterdir()) == []
    assert [p.name.split("-", 1)[1] for p in (inbox / "done").iterdir()] == [f"caijing-{ticket_id}.yaml"]
    with ctx.store.transaction() as conn:
        row = rows.require(conn, ticket_id)
        health = {(h.cloud, h.centre): h.state for h in facts.health(conn)}
        (me,) = facts.daemon_rows(conn, running=False)
    assert row.approved_by == "system" and row.approval_rule and row.provisioned_at and row.expires == "2027-01-31"
    assert health[("gd-prov", "gz-main")] == health[("gd-prov", "sg-dr")] == "healthy"
    assert me.stopped_at is not None and not me.leader


def test_a_broken_file_is_refused_with_its_reasons_and_nothing_changes(ctx: EngineContext) -> None:
    bad = mine(ctx) / "bad.yaml"
    bad.write_text("version: 1\nid: t-bad\ntenant: gd-nobody\nsystem: x\nrequester: caijing\nkind: create\nreason: 测试\nvms: []\n", encoding="utf-8")
    daemon(ctx).run(once=True)
    (moved, error) = sorted((ctx.settings.inbox / "failed").iterdir())
    assert moved.name.endswith("-caijing-bad.yaml") and error.name.endswith("-caijing-bad.yaml.error")
    assert "gd-nobody" in error.read_text(encoding="utf-8")
    with ctx.store.transaction() as conn:
        assert rows.get(conn, "t-bad") is None


def test_drift_is_recorded_and_corrected_and_orphans_reported(ctx: EngineContext, cloud: FakeCloud) -> None:
    ticket_id = drop(ctx)
    daemon(ctx).run(once=True)
    runner = daemon(ctx)
    lost = next(s for s in cloud.in_region(GZ) if s.name.endswith("-1"))
    cloud.vanish(lost.id)
    legacy = cloud.add_foreign(GZ, name="legacy-oa", tenant="gd-mzt", zone="gz-main")
    orphan = cloud.add_foreign(GZ, name="leftover", tenant="gd-mzt", zone="gz-main", metadata={"govcloud:ticket": "t-gone", "govcloud:index": "1"})
    runner.reconcile_pass()
    names = sorted(s.name for s in cloud.in_region(GZ))
    assert names.count(lost.name) == 1 and lost.id not in {s.id for s in cloud.in_region(GZ)}
    with ctx.store.transaction() as conn:
        found = {(f.kind, f.server_id or f.key) for f in facts.findings_of(conn)}
        cycle = {c.cloud: c for c in facts.cycles(conn)}["gd-prov"]
    assert ("drift", f"{ticket_id}/1") in found and ("unmanaged", legacy) in found and ("orphan", orphan) in found
    assert (cycle.drift, cycle.orphans, cycle.unmanaged, cycle.corrected, cycle.error) == (1, 1, 1, 1, None)
    runner.reconcile_pass()
    with ctx.store.transaction() as conn:
        assert {f.kind for f in facts.findings_of(conn)} == {"orphan", "unmanaged"}


def test_report_policy_only_records(ctx: EngineContext, cloud: FakeCloud) -> None:
    drop(ctx)
    daemon(ctx, reconcile_policy="report").run(once=True)
    cloud.vanish(cloud.in_region(GZ)[0].id)
    runner = daemon(ctx, reconcile_policy="report")
    runner.reconciler.run()
    assert len(cloud.in_region(GZ)) == 1


def test_a_broken_region_does_not_stop_the_others(ctx: EngineContext, cloud: FakeCloud) -> None:
    cloud.api_down.add(SG)
    runner = daemon(ctx)
    runner.reconcile_pass()
    with ctx.store.transaction() as conn:
        cycle = {c.cloud: c for c in facts.cycles(conn)}
    assert "gd-sg" in (cycle["gd-prov"].error or "") and cycle["gd-prov"].success_at is None
    assert cycle["city-shenzhen"].error is None and cycle["city-shenzhen"].success_at


def test_centre_down_after_confirmations_and_back_after_the_hold(ctx: EngineContext, cloud: FakeCloud) -> None:
    clock = [1000.0]
    watch = daemon(ctx, health_confirmations=2, health_recovery=30).watch
    watch.clock = lambda: clock[0]

    def state(centre: str = "gz-main") -> str:
        return {(h.cloud, h.centre): h.state for h in watch.check()}[("gd-prov", centre)]

    assert state() == "healthy"
    cloud.services[GZ] = services("gz-main", "down", "down") + services("gz-backup", "up", "up")
    clock[0] += 5
    assert state() == "healthy"
    clock[0] += 5
    assert state() == "down"
    assert state("gz-backup") == "healthy"
    cloud.services[GZ] = services("gz-main", "up", "up") + services("gz-backup", "up", "up")
    clock[0] += 5
    assert state() == "down"
    clock[0] += 31
    assert state() == "healthy"
    changes = [r for r in ctx.store.audit.records(subject="centre:gd-prov/gz-main") if r.action == "centre.health"]
    assert [(r.details["from"], r.details["to"]) for r in changes] == [(None, "healthy"), ("healthy", "down"), ("down", "healthy")]


def drop_ha(ctx: EngineContext) -> str:
    """Four small VMs with protection ha: two in each Guangzhou centre."""
    ticket_id, _ = write_ticket(mine(ctx), tenant="gd-mzt", system="mzoa", requester="caijing", roles=(), expires="2027-01-31",
                                protection="ha", vms=[{"name": "web", "count": 4, "flavor": "gc.small", "cloud": "gd-prov", "centre": "any"}])
    return ticket_id


def lose_gz_main(runner: Daemon, cloud: FakeCloud) -> None:
    cloud.services[GZ] = services("gz-main", "down", "down") + services("gz-backup", "up", "up")
    runner.watch.check()
    runner.watch.check()  # the second confirmation records it down


def centres_of(ctx: EngineContext, ticket_id: str) -> list[str]:
    with ctx.store.transaction() as conn:
        return sorted(v.centre for v in rows.vms_of(conn, ticket_id))


@pytest.mark.parametrize("policy", ["report", "evacuate"])
def test_a_centre_down_is_failed_over_by_policy(ctx: EngineContext, cloud: FakeCloud, policy: str) -> None:
    ticket_id = drop_ha(ctx)
    runner = daemon(ctx, failover_policy=policy)
    assert runner.run(once=True) == 0 and state_of(ctx, ticket_id) == "submitted"  # ha is not for auto-approval
    tickets.approve(as_user(ctx, "shenpi-chen"), ticket_id)
    assert daemon(ctx).run(once=True) == 0 and state_of(ctx, ticket_id) == "active"
    assert centres_of(ctx, ticket_id) == ["gz-backup", "gz-backup", "gz-main", "gz-main"]
    runner = daemon(ctx, failover_policy=policy)
    runner.tick(force=True)
    assert runner.leader
    lose_gz_main(runner, cloud)
    runner.failover_pass()
    runner.failover_pass()  # the same plan again: audited once, nothing moved twice
    actions = [r.action for r in ctx.store.audit.records() if r.action.startswith("failover.")]
    if policy == "report":
        assert actions == ["failover.needed"] and centres_of(ctx, ticket_id) == ["gz-backup", "gz-backup", "gz-main", "gz-main"]
        (needed,) = [r for r in ctx.store.audit.records() if r.action == "failover.needed"]
        assert needed.subject == "centre:gd-prov/gz-main" and needed.details["moves"] == 2  # a summary, not the whole plan
    else:
        assert actions == ["failover.start", "failover.move", "failover.move", "failover.end"]
        assert centres_of(ctx, ticket_id) == ["gz-backup"] * 4
    runner.lock.release()


def as_user(ctx: EngineContext, user: str) -> EngineContext:
    return dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, user=user))


@pytest.mark.parametrize("user", ["system", "nobody", "caijing", "shenpi-chen", "admin", ""])
def test_the_daemon_acts_only_as_an_operator_service_identity(ctx: EngineContext, user: str) -> None:
    """Issue 11 items 3 and 4: no hidden 'system' admin, no role-less daemon, not even an admin one."""
    before = ctx.store.audit.records()
    with pytest.raises(PermissionDenied):
        daemon(as_user(ctx, user))
    assert ctx.store.audit.records() == before


def test_the_daemon_records_its_service_identity(ctx: EngineContext) -> None:
    runner = daemon(ctx)
    runner.tick(force=True)
    assert runner.identity.id == "govcloud-daemon" and runner.identity.role == "operator"
    assert {r.actor for r in ctx.store.audit.records() if r.action != "store.migrate"} == {"govcloud-daemon"}
    runner.lock.release()


def test_one_leader_per_store(ctx: EngineContext) -> None:
    first, second = LeaderLock(ctx.store), LeaderLock(ctx.store)
    assert first.acquire() and first.held()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_a_standby_does_nothing(ctx: EngineContext, cloud: FakeCloud) -> None:
    holder = LeaderLock(ctx.store)
    assert holder.acquire()
    ticket_id = drop(ctx)
    standby = daemon(ctx)
    standby.tick(force=True)
    assert not standby.leader and cloud.creates == 0 and (mine(ctx) / f"{ticket_id}.yaml").exists()
    holder.release()
    standby.tick(force=True)
    assert standby.leader and state_of(ctx, ticket_id) == "active"
    standby.lock.release()


def test_leases_warn_then_retire(tmp_path: Path, ctx: EngineContext, cloud: FakeCloud) -> None:
    ticket_id = drop(ctx)
    daemon(ctx).run(once=True)
    near = context(tmp_path, cloud, today=datetime.date(2027, 1, 25))
    report = leases.check(near, warn_days=14)
    assert report.warned == (ticket_id,) and leases.check(near, warn_days=14).warned == ()
    after = context(tmp_path, cloud, today=datetime.date(2027, 2, 1))
    (outcome,) = leases.check(after, warn_days=14).retired
    assert outcome.state == "retired" and cloud.in_region(GZ) == []


def test_stop_request_ends_the_loop(ctx: EngineContext) -> None:
    runner = daemon(ctx)
    runner.request_stop()
    assert runner.run() == 0
    ok, body = runner.readyz()
    assert not ok and body["role"] == "standby"
    assert runner.healthz()[0]


def test_submitted_through_the_cli_too(ctx: EngineContext, tmp_path: Path, cloud: FakeCloud) -> None:
    """A ticket submitted and approved by people (not the inbox) is applied by the daemon."""
    ticket_id, path = write_ticket(tmp_path, tenant="gd-gat", system="oa", requester="sunkai", roles=(),
                                   vms=[{"name": "db", "count": 3, "flavor": "gc.large", "cloud": "gd-prov", "centre": "gz-main"}])
    tickets.submit(context(tmp_path, cloud, user="sunkai"), [path])
    tickets.approve(context(tmp_path, cloud, user="shenpi-chen"), ticket_id)
    daemon(ctx).run(once=True)
    assert state_of(ctx, ticket_id) == "active" and cloud.creates == 3
    provision.retire(context(tmp_path, cloud, user="yunwei-he"), ticket_id)
    assert os.listdir(ctx.settings.inbox) == []


def test_adopted_servers_are_observed_never_changed(tmp_path: Path, ctx: EngineContext, cloud: FakeCloud) -> None:
    from govcloud.engine.adopt import adopt
    from govcloud.errors import InvalidState

    legacy = cloud.add_foreign(GZ, name="mz-legacy-db", tenant="gd-mzt", zone="gz-main")
    runner = daemon(ctx)
    runner.reconcile_pass()
    with ctx.store.transaction() as conn:
        assert [(f.kind, f.server_id) for f in facts.findings_of(conn)] == [("unmanaged", legacy)]
    operator = context(tmp_path, cloud, user="yunwei-he")
    row = adopt(operator, cloud="gd-prov", centre="gz-main", tenant="gd-mzt", system="mzoa", server_ids=[legacy], ticket_id="adopt-mz")
    assert (row.state, row.mode) == ("active", "observe")
    with pytest.raises(InvalidState):
        adopt(operator, cloud="gd-prov", centre="gz-main", tenant="gd-mzt", system="mzoa", server_ids=[legacy], ticket_id="adopt-2")
    runner.reconcile_pass()
    with ctx.store.transaction() as conn:
        assert facts.findings_of(conn) == []
        assert [line.state for line in rows.ledger_lines(conn, ticket="adopt-mz")] == ["committed"]
    cloud.vanish(legacy)
    runner.reconcile_pass()
    with ctx.store.transaction() as conn:
        (found,) = facts.findings_of(conn)
    assert (found.kind, found.ticket) == ("drift", "adopt-mz") and "observe-only" in found.detail
    assert cloud.creates == 0  # reported, never recreated
    assert provision.retire(operator, "adopt-mz").state == "retired"
    with ctx.store.transaction() as conn:
        assert rows.ledger_lines(conn, ticket="adopt-mz") == [] and rows.vms_of(conn, "adopt-mz") == []


def test_the_daemon_logs_the_audit_head_whenever_it_moved(ctx: EngineContext, caplog: pytest.LogCaptureFixture) -> None:
    """The log leaves the host: each (seq, hash) the chain had is anchored there too."""
    caplog.set_level("INFO", logger="govcloud.daemon")
    first = daemon(ctx)
    first.tick()
    first.tick()
    heads = [r.fields for r in caplog.records if r.getMessage() == "audit head"]  # type: ignore[attr-defined]
    head = ctx.store.audit.head()
    assert head is not None
    assert heads == [{"audit_seq": head[0], "audit_hash": head[1]}]  # the second tick changed nothing: no second line
    ctx.store.audit.append("ops", "test.event", "thing:1")
    first.tick()
    heads = [r.fields for r in caplog.records if r.getMessage() == "audit head"]  # type: ignore[attr-defined]
    assert [h["audit_seq"] for h in heads] == [head[0], head[0] + 1]
    first.lock.release()


def bounds(ctx: EngineContext, *, per_endpoint: int, per_host: int) -> None:
    ctx.settings = dataclasses.replace(ctx.settings, engine=dataclasses.replace(
        ctx.settings.engine, concurrency_per_cloud=per_endpoint, concurrency_per_host=per_host))


def test_one_pass_puts_every_ready_tickets_servers_into_one_work_queue(ctx: EngineContext, cloud: FakeCloud) -> None:
    """Two 2-VM tickets dropped together (auto-approved), 4 creates per endpoint: the daemon's old loop (one
    ``apply`` per ticket) never had more than one ticket's 2 creates in flight; one queue has all 4 (issue 16)."""
    cloud.create_latency = 0.1
    bounds(ctx, per_endpoint=4, per_host=2)
    first, second = drop(ctx), drop(ctx, name="app")
    daemon(ctx).run(once=True)
    assert state_of(ctx, first) == state_of(ctx, second) == "active"
    assert cloud.creates == 4 and cloud.peak_endpoint[GZ] == 4


def test_a_ticket_that_moved_on_is_skipped_and_the_others_are_applied(tmp_path: Path, ctx: EngineContext, cloud: FakeCloud,
                                                                      caplog: pytest.LogCaptureFixture,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A resize whose target a CLI user retires between the pass's listing and its step raises an InputError
    there: it is logged as skipped, stays approved, and never fails the pass (nor the lease check after it)
    — the per-ticket isolation of the old one-``apply``-per-ticket loop, kept now that one ``apply`` takes
    them all."""
    caplog.set_level("INFO", logger="govcloud.daemon")
    target = drop(ctx)
    daemon(ctx).run(once=True)
    resize_id, resize = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", kind="resize", target=target,
                                     roles=(), vms=[{"name": "web", "count": 2, "flavor": "gc.medium", "cloud": "gd-prov", "centre": "gz-main"}])
    tickets.submit(context(tmp_path, cloud, user="caijing"), [resize])
    if state_of(ctx, resize_id) == "submitted":
        tickets.approve(context(tmp_path, cloud, user="shenpi-chen"), resize_id)

    def moved_on(*_: object) -> NoReturn:
        raise InvalidState(f"ticket {resize_id}: target {target} is retiring; only active tickets can be changed")

    monkeypatch.setattr(changes, "apply_resize", moved_on)
    later = drop(ctx, name="app")
    daemon(ctx).run(once=True)
    assert state_of(ctx, later) == "active" and state_of(ctx, resize_id) == "approved"
    skipped = [r.fields for r in caplog.records if r.getMessage() == "ticket skipped"]  # type: ignore[attr-defined]
    assert [s["ticket"] for s in skipped] == [resize_id] and "retiring" in skipped[0]["reason"]
    assert not [r for r in caplog.records if r.getMessage() == "work pass failed"]


def test_no_ticket_is_started_once_the_leader_must_stop(tmp_path: Path, ctx: EngineContext, cloud: FakeCloud) -> None:
    """``stop`` (the daemon: lost leadership, or SIGTERM) is asked before each ticket starts: the ones not
    started are left approved for the next pass, untouched."""
    ticket_id, path = write_ticket(tmp_path, tenant="gd-mzt", system="mzoa", requester="caijing", roles=(),
                                   vms=[{"name": "web", "count": 2, "flavor": "gc.small", "cloud": "gd-prov", "centre": "gz-main"}])
    tickets.submit(context(tmp_path, cloud, user="caijing"), [path])
    if state_of(ctx, ticket_id) == "submitted":
        tickets.approve(context(tmp_path, cloud, user="shenpi-chen"), ticket_id)
    assert provision.apply(ctx, stop=lambda: True) == []
    assert state_of(ctx, ticket_id) == "approved" and cloud.creates == 0
    assert [o.state for o in provision.apply(ctx)] == ["active"]
