"""Replication of dr VMs on the in-memory cloud: which VMs are due (RPO), the copy into gd-sg verified
byte for byte, keep-K pruning in both regions, retries of temporary errors, failures recorded, the
permission, the listing filtered by tenant, and the daemon's pass (leader only)."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govcloud.engine.context import EngineContext, build
from govcloud.errors import PermanentError, PermissionDenied, TemporaryError
from govcloud.failover.replicate import Replicator, is_due, plan_rpo, replica_listing, to_prune
from govcloud.model.recovery import ProtectionGroup, RecoveryPlans
from govcloud.settings import DaemonSettings, DrSettings, Settings
from govcloud.store import replicas
from govcloud.store import tickets as rows
from govcloud.store.replicas import ReplicaRow
from tests.support.fakecloud import GZ, SG, FakeCloud, three_centres
from tests.support.tickets import REPO, no_fencing
from tests.unit.failover.test_recover import active_ticket

T0 = datetime.datetime(2026, 12, 5, 1, 0, tzinfo=datetime.UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += datetime.timedelta(**delta)


@pytest.fixture
def cloud() -> FakeCloud:
    return three_centres()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(tmp_path: Path, cloud: FakeCloud, clock: Clock) -> Iterator[EngineContext]:
    settings = Settings.from_env(no_fencing(tmp_path)).with_overrides(root=str(REPO), db=f"sqlite:///{tmp_path / 'state.db'}", user="admin")
    settings = dataclasses.replace(settings, state_dir=tmp_path / "state", daemon=DaemonSettings(inbox=tmp_path / "inbox", inbox_settle=0))
    context = build(settings, driver_factory=cloud.driver)
    context.clock = clock
    yield context
    context.store.close()


def replicator(ctx: EngineContext, user: str = "yunwei-he", **settings: Any) -> Replicator:
    actor = ctx.state.users.get(user)
    assert actor is not None
    return Replicator(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, clock=ctx.clock, actor=actor,
                      settings=DrSettings(**settings), tries=3, sleep=lambda _s: None)


def stored(ctx: EngineContext) -> list[ReplicaRow]:
    with ctx.store.transaction() as conn:
        return replicas.listing(conn)


# -- pure decisions --------------------------------------------------------------------------
def test_a_vm_is_due_without_a_replica_or_once_its_newest_is_as_old_as_the_rpo() -> None:
    hour = datetime.timedelta(hours=1)
    assert is_due(None, T0, hour)
    assert not is_due(T0 - datetime.timedelta(minutes=59), T0, hour)
    assert is_due(T0 - hour, T0, hour)


def row(n: int, state: str = "ready", *, minutes: int = 0, images: bool = True) -> ReplicaRow:
    return ReplicaRow(id=f"r{n}", ticket="t", idx=0, vm="vm", tenant="x", system="s", cloud="c", server_id="s-1", source_region="gd-gz",
                      dr_region="gd-sg", taken_at=(T0 + datetime.timedelta(minutes=minutes or n)).isoformat(), state=state,
                      source_image=f"src-{n}" if images else None, dr_image=f"dr-{n}" if images and state == "ready" else None)


def test_pruning_keeps_the_newest_k_ready_and_takes_failed_leftovers_and_abandoned_runs() -> None:
    rows_ = [row(1), row(2), row(3), row(4), row(5, "failed"), row(6, "failed", images=False), row(7, "taking"),
             row(8, "copying", minutes=-120), row(9, "pruning")]
    gone = to_prune(rows_, keep=2, now=T0 + datetime.timedelta(minutes=10), stale_after=datetime.timedelta(hours=1))
    assert sorted(r.id for r in gone) == ["r1", "r2", "r5", "r8", "r9"]  # r7 may still be running; r6 is history


def test_the_rpo_comes_through_the_seam_per_cloud_tenant_and_system(ctx: EngineContext, tmp_path: Path, clock: Clock) -> None:
    active_ticket(ctx, tmp_path, "dr", count=1)
    asked: list[tuple[str, str, str]] = []

    def rpo_of(cloud: str, tenant: str, system: str) -> datetime.timedelta:
        asked.append((cloud, tenant, system))
        return datetime.timedelta(minutes=15)

    actor = ctx.state.users.get("yunwei-he")
    assert actor is not None
    rep = Replicator(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, clock=ctx.clock, actor=actor,
                     settings=DrSettings(rpo=3600), rpo_of=rpo_of, sleep=lambda _s: None)
    assert [r.replica is not None for r in rep.run()] == [True]
    clock.advance(minutes=14)
    assert [r.replica is not None for r in rep.run()] == [False]
    clock.advance(minutes=1)
    assert [r.replica is not None for r in rep.run()] == [True]  # 15 min, not the default hour
    assert set(asked) == {("gd-prov", "gd-mzt", "mzoa")}


# -- the copy --------------------------------------------------------------------------------
def test_only_dr_vms_are_replicated_and_the_copy_in_gd_sg_has_the_snapshots_bytes(ctx: EngineContext, cloud: FakeCloud,
                                                                                   tmp_path: Path) -> None:
    active_ticket(ctx, tmp_path, "ha", count=1)
    dr_ticket = active_ticket(ctx, tmp_path, "dr", count=2)
    results = replicator(ctx).run()
    assert [r.vm.ticket for r in results] == [dr_ticket, dr_ticket] and all(r.ok for r in results)
    made = stored(ctx)
    assert {r.state for r in made} == {"ready"} and len(made) == 2
    for replica in made:
        source, copy = cloud.images[replica.source_image or ""], cloud.images[replica.dr_image or ""]
        assert source[0] == GZ and copy[0] == SG and copy[1] == replica.tenant
        assert copy[3] == source[3] and replica.checksum == source[2].checksum and replica.size == len(source[3])
        assert copy[2].properties["govcloud:replica"] == replica.id
    assert cloud.data_of(made[0].dr_image or "") != cloud.data_of(made[1].dr_image or "")  # two servers, two disks
    actions = [r.action for r in ctx.store.audit.records()]
    assert actions.count("dr.replica") == 2


def test_keep_k_deletes_older_replicas_in_both_regions(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path, clock: Clock) -> None:
    active_ticket(ctx, tmp_path, "dr", count=1)
    rep = replicator(ctx, keep=2)
    made = []
    for _ in range(4):
        (result,) = rep.run()
        assert result.replica is not None and result.ok
        made.append(result.replica)
        clock.advance(hours=1)
    kept = stored(ctx)
    assert [r.id for r in kept] == [made[2].id, made[3].id]
    assert {i.id for i in cloud.images_in(GZ)} == {made[2].source_image, made[3].source_image}
    assert {i.id for i in cloud.images_in(SG)} == {made[2].dr_image, made[3].dr_image}


def test_a_deletion_that_fails_leaves_the_row_pruning_and_the_next_pass_finishes_it(ctx: EngineContext, cloud: FakeCloud,
                                                                                   tmp_path: Path, clock: Clock) -> None:
    active_ticket(ctx, tmp_path, "dr", count=1)
    rep = replicator(ctx, keep=1)
    (first,) = rep.run()
    clock.advance(hours=1)
    cloud.faults["delete_image"] = [PermanentError("delete image: HTTP 403: forbidden")]
    (second,) = rep.run()
    assert second.replica is not None and second.replica.state == "ready" and not second.ok and "HTTP 403" in second.errors[0]
    pending = [r for r in stored(ctx) if r.state == "pruning"]
    assert [r.id for r in pending] == [first.replica.id if first.replica else ""]
    (third,) = rep.run()  # not due: only the prune
    assert third.replica is None and third.pruned == 1 and third.ok
    assert [r.id for r in stored(ctx)] == [second.replica.id]
    assert len(cloud.images_in(GZ)) == len(cloud.images_in(SG)) == 1


def test_temporary_errors_are_retried(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    active_ticket(ctx, tmp_path, "dr", count=1)
    cloud.faults["snapshot_server"] = [TemporaryError("HTTP 503", delay=0)]
    cloud.faults["read_image"] = [TemporaryError("download broke off", delay=0)]
    cloud.corrupt = 1  # the first copy arrives garbled: deleted, copied again
    retried: list[dict[str, object]] = []
    actor = ctx.state.users.get("yunwei-he")
    assert actor is not None
    rep = Replicator(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, clock=ctx.clock, actor=actor,
                     settings=DrSettings(), tries=4, on_retry=retried.append, sleep=lambda _s: None)
    (result,) = rep.run()
    assert result.ok and result.replica is not None and result.replica.state == "ready"
    assert [str(e["doing"]).split(" ")[0] for e in retried] == ["snapshot", "copy", "copy"]
    assert "MD5" in str(retried[-1]["error"])
    assert len(cloud.images_in(SG)) == 1 and cloud.data_of(result.replica.dr_image or "") == cloud.data_of(result.replica.source_image or "")


def test_a_permanent_failure_is_recorded_its_images_deleted_and_other_vms_go_on(ctx: EngineContext, cloud: FakeCloud,
                                                                                tmp_path: Path) -> None:
    active_ticket(ctx, tmp_path, "dr", count=2)
    cloud.faults["upload_image"] = [PermanentError("create image: HTTP 413: quota exceeded")]
    first, second = replicator(ctx).run()
    assert not first.ok and first.replica is not None and first.replica.state == "failed" and "HTTP 413" in (first.replica.error or "")
    assert first.replica.source_image is None  # the snapshot made in gd-gz was deleted again
    assert second.ok
    assert len(cloud.images_in(GZ)) == len(cloud.images_in(SG)) == 1
    failed = [r for r in ctx.store.audit.records() if r.action == "dr.replica.failed"]
    assert len(failed) == 1 and failed[0].subject == f"vm:{first.vm.name}"


def test_a_vm_that_keeps_failing_temporarily_fails_after_its_tries(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    active_ticket(ctx, tmp_path, "dr", count=1)
    cloud.faults["wait_for_image"] = [TemporaryError("timed out", delay=0)] * 3
    (result,) = replicator(ctx).run()
    assert result.replica is not None and result.replica.state == "failed" and "after 3 tries" in (result.replica.error or "")
    assert cloud.images_in(GZ) == []


def test_system_filter_and_unknown_system(ctx: EngineContext, tmp_path: Path) -> None:
    active_ticket(ctx, tmp_path, "dr", count=1)
    assert [v.system for v in replicator(ctx).candidates(system="mzoa")] == ["mzoa"]
    from govcloud.errors import InputError

    with pytest.raises(InputError, match=r"no dr VM of business system 'hukou'.*mzoa"):
        replicator(ctx).candidates(system="hukou")


# -- who may ---------------------------------------------------------------------------------
@pytest.mark.parametrize("user", ["caijing", "shenpi-chen"])
def test_only_operators_and_admins_may_replicate(ctx: EngineContext, user: str) -> None:
    with pytest.raises(PermissionDenied, match="'replicate' needs role operator or admin"):
        replicator(ctx, user)


def test_a_requester_lists_only_its_own_tenants_replicas(ctx: EngineContext, tmp_path: Path) -> None:
    active_ticket(ctx, tmp_path, "dr", count=1)
    replicator(ctx).run()
    with ctx.store.transaction() as conn:
        (mine,) = replicas.listing(conn)
        replicas.insert(conn, dataclasses.replace(mine, id="other", tenant="gd-gat", system="hukou", vm="gd-gat-hukou-x-0"))
    users = ctx.state.users
    caijing, sunkai, operator = users.get("caijing"), users.get("sunkai"), users.get("yunwei-he")
    assert caijing is not None and sunkai is not None and operator is not None
    assert [r.tenant for r in replica_listing(ctx.store, caijing)] == ["gd-mzt"]
    assert [r.tenant for r in replica_listing(ctx.store, sunkai)] == ["gd-gat"]
    assert len(replica_listing(ctx.store, operator)) == 2
    assert [r.system for r in replica_listing(ctx.store, operator, system="hukou")] == ["hukou"]


# -- the daemon ------------------------------------------------------------------------------
def test_the_daemon_replicates_due_vms_as_leader_only(ctx: EngineContext, tmp_path: Path, clock: Clock) -> None:
    from govcloud.daemon import Daemon

    active_ticket(ctx, tmp_path, "dr", count=1)
    ctx.settings = dataclasses.replace(ctx.settings, daemon=dataclasses.replace(ctx.settings.daemon, identity="govcloud-daemon"),
                                       user="govcloud-daemon")
    daemon = Daemon(ctx, settings=ctx.settings.daemon)
    daemon.replicate_pass()  # not elected: nothing
    assert stored(ctx) == []
    daemon.tick()
    assert daemon.leader
    daemon.replicate_pass()
    assert [r.state for r in stored(ctx)] == ["ready"]
    clock.advance(minutes=30)
    daemon.replicate_pass()  # not due yet (RPO 1 h)
    assert len(stored(ctx)) == 1
    clock.advance(minutes=30)
    daemon.replicate_pass()
    assert len(stored(ctx)) == 2
    daemon._shutdown()


def test_dr_vms_of_a_retired_ticket_are_not_replicated(ctx: EngineContext, tmp_path: Path) -> None:
    ticket_id = active_ticket(ctx, tmp_path, "dr", count=1)
    with ctx.store.transaction() as conn:
        rows.set_fields(conn, ticket_id, state="retired")
    assert replicator(ctx).candidates() == []


def test_replicas_of_a_vm_that_is_no_longer_dr_are_pruned_in_both_regions(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    ticket_id = active_ticket(ctx, tmp_path, "dr", count=1)
    replicator(ctx).run()
    assert len(cloud.images_in(GZ)) == len(cloud.images_in(SG)) == 1
    with ctx.store.transaction() as conn:
        rows.set_fields(conn, ticket_id, state="retired")
    (result,) = replicator(ctx).run()
    assert result.gone and result.pruned == 1 and result.ok
    assert stored(ctx) == [] and cloud.images_in(GZ) == [] and cloud.images_in(SG) == []


class Killed(BaseException):
    """The process dying between the cloud's answer and the store's record (not an error it could catch)."""


@pytest.mark.parametrize(("fault", "left_in"), [("snapshot_server:done", GZ), ("upload_image:done", SG)])
def test_images_of_a_run_killed_before_it_recorded_them_are_found_by_name_and_deleted(
        ctx: EngineContext, cloud: FakeCloud, tmp_path: Path, clock: Clock, fault: str, left_in: Any) -> None:
    active_ticket(ctx, tmp_path, "dr", count=1)
    cloud.faults[fault] = [Killed()]
    with pytest.raises(Killed):
        replicator(ctx).run()
    (dead,) = stored(ctx)
    assert dead.state in ("taking", "copying") and dead.dr_image is None
    assert len(cloud.images_in(left_in)) == 1  # made, never recorded
    (result,) = replicator(ctx).run()  # an hour has not passed: the run may still be alive, its row is left alone
    assert dead.id in {r.id for r in stored(ctx)}
    clock.advance(hours=2)
    (result,) = replicator(ctx).run()
    assert result.ok and result.pruned == 1
    ready = stored(ctx)
    assert dead.id not in {r.id for r in ready} and {r.state for r in ready} == {"ready"}
    assert {i.id for i in cloud.images_in(GZ)} == {r.source_image for r in ready}
    assert {i.id for i in cloud.images_in(SG)} == {r.dr_image for r in ready}


@pytest.mark.parametrize(("fault", "region"), [("snapshot_server:done", GZ), ("upload_image:done", SG)])
def test_a_try_whose_answer_was_lost_leaves_no_second_image(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path, fault: str,
                                                           region: Any) -> None:
    """nova (or glance) made the image and the answer never came: the next try finds it by name (snapshot)
    or deletes it before copying again (upload), so exactly one image per region is left."""
    active_ticket(ctx, tmp_path, "dr", count=1)
    cloud.faults[fault] = [TemporaryError("connection reset after the request was sent", delay=0)]
    (result,) = replicator(ctx).run()
    assert result.ok and result.replica is not None
    assert [i.id for i in cloud.images_in(GZ)] == [result.replica.source_image]
    assert [i.id for i in cloud.images_in(SG)] == [result.replica.dr_image]
    assert len(cloud.images_in(region)) == 1


def test_the_default_rpo_is_the_recovery_plan_group_s() -> None:
    """``rpo:`` of the protection group naming tenant/system in that cloud (recovery/*.yaml); else settings.dr.rpo."""
    plans = RecoveryPlans({"gd-prov": (ProtectionGroup(name="ps", systems=("gd-gat/hukou",), rpo="15m"),
                                       ProtectionGroup(name="rest", systems=("gd-zsj/sjgx",)))})
    rpo = plan_rpo(plans, 3600)
    assert rpo("gd-prov", "gd-gat", "hukou") == datetime.timedelta(minutes=15)
    assert rpo("gd-prov", "gd-zsj", "sjgx") == datetime.timedelta(hours=1)  # its group gives none
    assert rpo("city-gz", "gd-gat", "hukou") == datetime.timedelta(hours=1)  # another cloud's plan does not name it
