"""``dr return`` on the in-memory cloud (issue 14, item 2): after a DR activation, the ``dr`` VMs back in
their Guangzhou home centres — refused (nothing changed) while there is no ended activation or a Guangzhou
centre is not healthy; snapshot of each DR server copied back byte for byte, rebuilt in its home zone,
VM rows and ledger as before the activation, DR copies and return images gone; the recovery plan's order;
a run killed anywhere taken over and finished with no VM done twice."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any

import pytest

from govcloud.engine.context import EngineContext
from govcloud.errors import PermanentError, PermissionDenied
from govcloud.failover.dr_return import META_RETURN, DrReturn, NothingToReturn, ReturnRefused
from govcloud.planner.stored import decode
from govcloud.store import facts, runs
from govcloud.store import tickets as rows
from tests.support.fakecloud import GZ, SG, FakeCloud
from tests.support.tickets import write_ticket
from tests.unit.failover.test_activate import ONE_AT_A_TIME, activation, all_runs, approved_run, clock, down, replicate
from tests.unit.failover.test_recover import active_ticket, fail
from tests.unit.failover.test_replicate import T0, Clock

__all__ = ["clock"]


def back(ctx: EngineContext, user: str = "yunwei-he", **options: Any) -> DrReturn:
    actor = ctx.state.users.get(user)
    assert actor is not None
    return DrReturn(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, now=ctx.now, actor=actor, tries=3,
                    sleep=lambda _s: None, **options)


def full_ledger(ctx: EngineContext) -> list[tuple[Any, ...]]:
    """Every ledger line, without its id: what a return must give back exactly."""
    with ctx.store.transaction() as conn:
        return sorted((line.ticket, line.tenant, line.system, line.cloud, line.centre, line.kind, line.state,
                       tuple(line.resources.as_dict().items())) for line in rows.ledger_lines(conn))


def vm_rows(ctx: EngineContext, ticket: str) -> dict[str, rows.VmRow]:
    with ctx.store.transaction() as conn:
        return {v.name: v for v in rows.vms_of(conn, ticket)}


def activated(ctx: EngineContext, tmp_path: Path, count: int = 2) -> tuple[str, list[tuple[Any, ...]], dict[str, rows.VmRow]]:
    """A dr ticket of ``count`` VMs, replicated and activated in sg-dr; the ledger and VM rows before the activation."""
    ticket = active_ticket(ctx, tmp_path, "dr", count=count)
    replicate(ctx)
    before = full_ledger(ctx), vm_rows(ctx, ticket)
    done = activation(ctx).activate(approved_run(ctx))
    assert done.run.state == "finished" and len(done.run.moved) == count
    return ticket, *before


def home_servers(cloud: FakeCloud, ticket: str) -> list[Any]:
    """The servers of the ticket a return booted in gd-gz (the originals, recorded lost, are there too on the fake)."""
    return [s for s in cloud.in_region(GZ) if ticket in s.name and META_RETURN in s.metadata]


# -- refusals ---------------------------------------------------------------------------------
def test_refused_without_an_ended_activation(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path, clock: Clock) -> None:
    active_ticket(ctx, tmp_path, "dr", count=1)
    replicate(ctx)
    with pytest.raises(ReturnRefused, match="no DR activation of gd-prov has ended: nothing was rebuilt in sg-dr") as refused:
        back(ctx).run("gd-prov")
    assert refused.value.exit_code == 2
    run = activation(ctx).request("gd-prov", reason="flood", declare_lost=True)  # waiting for approval
    with pytest.raises(ReturnRefused, match=rf"run {run.id} \(dr-activation\) of gd-prov is new.*one activation or return of a cloud"):
        back(ctx).run("gd-prov")
    with pytest.raises(ReturnRefused, match="no cloud 'gd-nowhere' with a DR centre"):
        back(ctx).plan("gd-nowhere")
    assert [r.kind for r in all_runs(ctx)] == ["dr-activation"]


def test_refused_while_a_guangzhou_centre_is_recorded_down_or_has_no_compute_up(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                                 clock: Clock) -> None:
    ticket, _, _ = activated(ctx, tmp_path)
    ledger, placed, creates = full_ledger(ctx), vm_rows(ctx, ticket), cloud.creates
    images = dict(cloud.images)
    down(ctx, "gz-backup", since=T0)
    with pytest.raises(ReturnRefused, match=r"records gz-backup \(recorded down since .*\): gd-prov's VMs return only to healthy"):
        back(ctx).run("gd-prov")
    with ctx.store.transaction() as conn:  # the watch sees gz-backup back
        (health,) = [h for h in facts.health(conn) if h.centre == "gz-backup"]
        facts.record_health(conn, dataclasses.replace(health, state="up"))
    fail(cloud, "gz-main")
    with pytest.raises(ReturnRefused, match="nova reports no compute host up and enabled in gz-main"):
        back(ctx).plan("gd-prov")
    assert full_ledger(ctx) == ledger and vm_rows(ctx, ticket) == placed and cloud.creates == creates and cloud.images == images
    assert [r.kind for r in all_runs(ctx)] == ["dr-activation"]  # no run was opened


def test_nothing_in_sg_dr_is_exit_3(ctx: EngineContext, clock: Clock) -> None:
    activation(ctx).activate(approved_run(ctx))  # nothing to rebuild: the activation ends at once
    with pytest.raises(NothingToReturn, match="no dr VM of gd-prov is recorded in sg-dr: nothing to return") as nothing:
        back(ctx).run("gd-prov")
    assert nothing.value.exit_code == 3


@pytest.mark.parametrize("user", ["caijing", "shenpi-chen"])
def test_only_operators_and_admins_return(ctx: EngineContext, user: str) -> None:
    with pytest.raises(PermissionDenied, match="'dr-return' needs role operator or admin"):
        back(ctx, user)


# -- the return -------------------------------------------------------------------------------
def test_the_vms_come_home_with_the_dr_servers_bytes_and_the_ledger_as_before_the_activation(
        ctx: EngineContext, cloud: FakeCloud, tmp_path: Path, clock: Clock) -> None:
    ticket, ledger_before, rows_before = activated(ctx, tmp_path)
    at_dr = vm_rows(ctx, ticket)
    assert {v.centre for v in at_dr.values()} == {"sg-dr"} and full_ledger(ctx) != ledger_before
    with ctx.store.transaction() as conn:
        placements = {p.name: p for p in decode(rows.require(conn, ticket).plan).vms}

    plan, activation_run = back(ctx).plan("gd-prov")  # what --dry-run shows: nothing changes
    assert [m.vm.name for m in plan.moves] == sorted(at_dr) and activation_run.kind == "dr-activation"
    assert {m.vm.name: (m.target, m.zone) for m in plan.moves} == {n: (p.centre, p.zone) for n, p in placements.items()}
    assert [r.kind for r in all_runs(ctx)] == ["dr-activation"]

    clock.advance(minutes=1)
    done = back(ctx).run("gd-prov")
    assert done.run.state == "finished" and len(done.run.moved) == 2 and done.left == {}
    assert done.activation == activation_run.id
    home = {s.name: s for s in home_servers(cloud, ticket)}
    after = vm_rows(ctx, ticket)
    for name, row in after.items():
        server, report, placement = home[name], done.reports[name], placements[name]
        assert (row.centre, row.region, row.zone) == (placement.centre, "gd-gz", placement.zone)
        assert (row.server_id, row.status, row.address) == (server.id, "ACTIVE", server.address)
        assert server.zone == placement.zone and server.metadata[META_RETURN] == str(done.run.run_id)
        assert row.flavor == rows_before[name].flavor and report["dr_server"] == at_dr[name].server_id
        # the server at home was booted from the copy, and the copy holds the DR server's snapshot byte for byte
        assert cloud.booted_from[server.id] == report["image"]
        copy, snapshot = cloud.deleted_images[report["image"]], cloud.deleted_images[report["snapshot"]]
        assert (copy[0], snapshot[0]) == (GZ, SG) and copy[3] == snapshot[3]
        assert f"server={at_dr[name].server_id} ".encode() in snapshot[3]  # the DR server's own disk
        assert report["checksum"] == snapshot[2].checksum and report["downtime_s"] >= 0
        assert report["reservation_restored"] is True
    assert full_ledger(ctx) == ledger_before  # allocation home again, the dr reservation in sg-dr as before the activation
    assert sorted(cloud.power_calls) == sorted((v.server_id, False) for v in at_dr.values())  # stopped before their snapshots
    assert [s for s in cloud.in_region(SG) if ticket in s.name] == []  # the DR copies are gone
    assert [i for i in cloud.images.values() if "-return-" in i[2].name] == []  # and the return images in both regions
    with ctx.store.transaction() as conn:
        (run,) = [r for r in runs.runs(conn) if r.kind == "dr-return"]
        moves = runs.moves_of(conn, [run.id])
    assert (run.state, run.centre, run.plan["activation"]) == ("finished", "sg-dr", activation_run.id)
    assert {m.state for m in moves} == {"moved"} and all("downtime" in m.message for m in moves)
    actions = [r.action for r in ctx.store.audit.records()]
    assert actions.count("dr.return") == 2 and actions.count("dr.return.retire") == 2
    assert actions[-1] == "dr-return.end" and "dr-return.start" in actions

    with pytest.raises(NothingToReturn):  # a second return has nothing to do
        back(ctx).plan("gd-prov")
    again = activation(ctx).plan("gd-prov")[0]  # and the VMs are dr VMs in Guangzhou again: a next activation would take them
    assert {m.vm.name for m in again.moves} == set(after)


def test_vms_return_in_the_recovery_plans_priority_order(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path, clock: Clock) -> None:
    from govcloud.engine import provision, tickets

    welfare = active_ticket(ctx, tmp_path, "dr", count=1)  # no group: "unplanned" (priority 3); its id sorts first
    police, path = write_ticket(tmp_path, ticket_id="zz-police", tenant="gd-gat", system="hukou", requester="sunkai", roles=(),
                                protection="dr", vms=[{"name": "app", "count": 1, "flavor": "gc.small", "cloud": "gd-prov", "centre": "any"}])
    (row,) = tickets.submit(ctx, [path])
    if row.state == "submitted":
        tickets.approve(ctx, police)
    provision.apply(ctx, [police])
    replicate(ctx)
    activation(ctx).activate(approved_run(ctx))
    seen: list[str] = []
    done = back(ctx, settings=ONE_AT_A_TIME).run("gd-prov", on_outcome=lambda o: seen.append(o.move.vm.ticket))
    assert [s.name for s in done.run.plan.steps] == ["public-security", "unplanned"]
    assert seen == [police, welfare] and done.run.state == "finished"


def test_a_failed_rebuild_keeps_the_vm_in_sg_dr_with_its_allocation(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                   clock: Clock) -> None:
    ticket, _, _ = activated(ctx, tmp_path, count=1)
    at_dr, ledger = vm_rows(ctx, ticket), full_ledger(ctx)
    cloud.faults["create_server"] = [PermanentError("No valid host was found")]
    done = back(ctx).run("gd-prov")
    assert done.run.state == "failed" and "No valid host" in done.run.failed[0].detail
    assert vm_rows(ctx, ticket) == at_dr and full_ledger(ctx) == ledger
    (dr_server,) = [s for s in cloud.in_region(SG) if ticket in s.name]
    assert (dr_server.id, dr_server.status) == (at_dr[dr_server.name].server_id, "ACTIVE")  # the DR copy runs again
    assert cloud.power_calls == [(dr_server.id, False), (dr_server.id, True)] and "runs again" in done.run.failed[0].detail
    assert [i for i in cloud.images.values() if "-return-" in i[2].name] == []  # what the return made is gone
    assert "dr.return.failed" in [r.action for r in ctx.store.audit.records()]
    done = back(ctx).run("gd-prov")  # the next return goes through
    assert done.run.state == "finished" and {v.centre for v in vm_rows(ctx, ticket).values()} != {"sg-dr"}


def test_a_dr_server_that_cannot_be_stopped_is_not_snapshotted(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                               clock: Clock) -> None:
    ticket, _, _ = activated(ctx, tmp_path, count=1)
    at_dr, images = vm_rows(ctx, ticket), len(cloud.images) + len(cloud.deleted_images)
    cloud.faults["set_power"] = [PermanentError("Cannot 'stop' instance while it is in vm_state error")]
    done = back(ctx).run("gd-prov")
    assert done.run.state == "failed" and "Cannot 'stop'" in done.run.failed[0].detail
    assert len(cloud.images) + len(cloud.deleted_images) == images and vm_rows(ctx, ticket) == at_dr  # no snapshot of a running disk


class Killed(BaseException):
    """The process carrying the return dies (kill -9)."""


@pytest.mark.parametrize("point", ["snapshot_server:done", "upload_image:done", "create_server:done", "delete_server"])
def test_a_return_killed_anywhere_is_taken_over_and_does_no_vm_twice(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path, clock: Clock,
                                                                      point: str) -> None:
    """Killed right after nova made the snapshot, glance stored the copy or nova took the create — each before
    the process heard — or after the VM was recorded at home, before its DR copy was deleted."""
    ticket, ledger_before, _ = activated(ctx, tmp_path)
    images, creates = len(cloud.images) + len(cloud.deleted_images), cloud.creates
    cloud.faults[point] = [Killed()]
    with pytest.raises(Killed):
        back(ctx, settings=ONE_AT_A_TIME).run("gd-prov")
    (run,) = [r for r in all_runs(ctx) if r.kind == "dr-return"]
    assert run.state == "running"
    with pytest.raises(runs.RunInProgress, match="is carried out by"):
        back(ctx, clock=lambda: clock.now.timestamp()).run("gd-prov")  # its heartbeat is fresh: nobody may take it yet
    done = back(ctx, clock=lambda: clock.now.timestamp() + 3600).run("gd-prov")
    assert done.run.resumed and done.run.state == "finished" and done.left == {}
    assert len(home_servers(cloud, ticket)) == 2 and cloud.creates == creates + 2  # none booted twice
    assert len(cloud.images) + len(cloud.deleted_images) == images + 4  # one snapshot and one copy per VM, none made twice
    assert [s for s in cloud.in_region(SG) if ticket in s.name] == []
    assert [i for i in cloud.images.values() if "-return-" in i[2].name] == []
    assert full_ledger(ctx) == ledger_before
    with ctx.store.transaction() as conn:
        assert {m.state for m in runs.moves_of(conn, [run.id])} == {"moved"}
    assert "dr-return.resume" in [r.action for r in ctx.store.audit.records()]


def test_the_reservation_is_never_restored_beyond_what_the_plan_reserved(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path,
                                                                        clock: Clock) -> None:
    ticket, ledger_before, _ = activated(ctx, tmp_path, count=1)
    with ctx.store.transaction() as conn:  # someone put the reservation back by hand meanwhile
        ticket_row = rows.require(conn, ticket)
        (reservation,) = decode(ticket_row.plan).reservations
        rows.restore_reservation(conn, ticket, "gd-prov", "sg-dr", reservation.resources, now=datetime.datetime.now(datetime.UTC).isoformat())
    done = back(ctx).run("gd-prov")
    (report,) = done.reports.values()
    assert report["reservation_restored"] is False and full_ledger(ctx) == ledger_before
