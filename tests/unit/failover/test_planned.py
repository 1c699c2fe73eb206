"""Planned migration and failback (issue 13, item 5) on the in-memory cloud: a healthy centre put in
maintenance and emptied group by group, the run stopping at the first error; failback refused until the
centre is healthy, then every VM home in group order, one ticket's members on different hosts, the
ledger back and the maintenance ended; a run whose process died resumed without moving a VM twice."""

from __future__ import annotations

import dataclasses
import itertools
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from govcloud.drivers.base import ComputeDriver, Endpoint, Server
from govcloud.engine.context import EngineContext
from govcloud.errors import PermanentError
from govcloud.exporter.metrics import epoch
from govcloud.failover.planned import MAINTENANCE, PARKED, Planned
from govcloud.failover.recover import FailoverRefused, Recovery
from govcloud.failover.steps import HookCall, HookResult
from govcloud.settings import FailoverSettings
from govcloud.store import runs
from govcloud.store import tickets as rows
from tests.support.exporter import registry_for
from tests.support.fakecloud import GZ, FakeCloud
from tests.unit.failover.test_journal import journal, province
from tests.unit.failover.test_recover import ONE_AT_A_TIME, centre_sums, fail, recovery

ORDER = ["public-security", "data-exchange", "welfare"]


def planned(ctx: EngineContext, driver: Callable[[Endpoint], ComputeDriver] | None = None, **options: Any) -> Planned:
    actor = ctx.state.users.get("yunwei-he")
    assert actor is not None
    options.setdefault("hook", lambda _call: HookResult(True, "smoke: ok"))  # the sample plan has hooks; a failed one stops the run
    return Planned(Recovery(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=driver or ctx.driver, now=ctx.now,
                            actor=actor, **options))


def where(ctx: EngineContext) -> dict[str, str]:
    with ctx.store.transaction() as conn:
        return {v.name: v.centre for v in rows.vms_of(conn)}


def status(cloud: FakeCloud, zone: str) -> set[tuple[str, bool]]:
    return {(s.status, s.disabled_reason.startswith(MAINTENANCE)) for s in cloud.services[GZ] if s.zone == zone}


class Counting:
    """A driver factory that records every live/cold migration it is asked for."""

    def __init__(self, factory: Callable[[Endpoint], ComputeDriver]) -> None:
        self.factory = factory
        self.calls: list[str] = []

    def __call__(self, endpoint: Endpoint) -> Any:
        inner, outer = self.factory(endpoint), self

        class Driver:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            def live_migrate_server(self, tenant: str, server_id: str, *, host: str, timeout: float) -> Server:
                outer.calls.append(server_id)
                return inner.live_migrate_server(tenant, server_id, host=host, timeout=timeout)

        return Driver()


def test_migrate_puts_the_centre_in_maintenance_and_empties_it_group_by_group(ctx: EngineContext, cloud: FakeCloud,
                                                                              tmp_path: Path) -> None:
    province(ctx, tmp_path)
    before = where(ctx)
    sums = centre_sums(ctx)
    plan = planned(ctx).migrate_plan("gd-prov", "gz-main")
    assert len(plan.moves) == 6 and [s.name for s in plan.steps] == ORDER
    result = planned(ctx).migrate(plan)
    assert (result.state, len(result.moved), result.failed, result.stopped) == ("finished", 6, [], None)
    assert status(cloud, "gz-main") == {("disabled", True)} and status(cloud, "gz-backup") == {("enabled", False)}
    assert {k for k, c in where(ctx).items() if before[k] == "gz-main" and c != "gz-backup"} == set()
    assert {kind for _, kind, _ in cloud.migrations} == {"live"} and len(cloud.migrations) == 6
    after = centre_sums(ctx)
    assert after.get(("gd-prov", "gz-main"), 0) == 0
    assert after[("gd-prov", "gz-backup")] == sums[("gd-prov", "gz-backup")] + sums[("gd-prov", "gz-main")]
    run, moves, steps = journal(ctx, result.run_id)
    assert (run.kind, run.state) == ("migration", "finished") and [s.group_name for s in steps] == ORDER
    assert {(m.state, m.source_centre, m.target_centre) for m in moves} == {("moved", "gz-main", "gz-backup")}
    assert all(m.message.startswith("live: ACTIVE on gz-backup-") for m in moves)
    by_group = {g: [m for m in moves if m.group_name == g] for g in ORDER}
    for earlier, later in itertools.pairwise(ORDER):
        assert max(m.ended_at or "" for m in by_group[earlier]) <= min(m.started_at or "" for m in by_group[later])
    actions = [r.action for r in ctx.store.audit.records()]
    assert actions.count("migration.move") == 6 and "centre.maintenance" in actions and "migration.end" in actions


def test_migrate_is_refused_for_a_centre_that_is_down(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    province(ctx, tmp_path, count=2)
    fail(cloud, "gz-main")
    with pytest.raises(FailoverRefused, match=r"gz-main-1, gz-main-2 down in gz-main.*failover run gz-main") as refused:
        planned(ctx).migrate_plan("gd-prov", "gz-main")
    assert refused.value.exit_code == 2 and status(cloud, "gz-main") == {("enabled", False)} and cloud.migrations == []


def test_migrate_is_refused_when_nothing_could_move(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    """Migrating gz-backup while gz-main is in maintenance would leave both centres disabled and move nothing."""
    province(ctx, tmp_path, count=2)
    planned(ctx).migrate(planned(ctx).migrate_plan("gd-prov", "gz-main"))
    with pytest.raises(FailoverRefused, match=r"nova reports no compute host up in gz-main.*gz-backup was not put in maintenance"):
        planned(ctx).migrate_plan("gd-prov", "gz-backup")
    assert status(cloud, "gz-backup") == {("enabled", False)}


def test_migrate_stops_at_the_first_error(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    province(ctx, tmp_path)
    cloud.faults["live_migrate_server"] = [PermanentError("live-migrate x: HTTP 400: Migration pre-check error: no shared storage")]
    runner = planned(ctx, settings=ONE_AT_A_TIME)
    result = runner.migrate(runner.migrate_plan("gd-prov", "gz-main"))
    assert result.state == "failed" and len(result.failed) == 1 and result.moved == []
    assert result.stopped and "no shared storage" in result.stopped
    assert cloud.migrations == []  # nothing else was sent: not the rest of the group, not the later groups
    run, moves, _ = journal(ctx, result.run_id)
    assert run.state == "failed" and run.detail["stopped"] == result.stopped
    assert sorted(m.state for m in moves) == ["failed"] + ["held"] * 5
    assert all(m.message.startswith("not started: the run stopped at the first error") for m in moves if m.state == "held")
    assert status(cloud, "gz-main") == {("disabled", True)}  # the centre stays in maintenance: failback ends it


def test_a_failed_hook_stops_a_planned_migration(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    province(ctx, tmp_path)

    def hook(call: HookCall) -> HookResult:
        return HookResult(False, "smoke: port 80 closed")

    result = planned(ctx, hook=hook).migrate(planned(ctx).migrate_plan("gd-prov", "gz-main"))
    assert result.state == "failed" and len(result.moved) == 2  # the first group moved, its hook failed, nothing after it
    _, moves, steps = journal(ctx, result.run_id)
    assert [(s.group_name, s.state) for s in steps] == [("public-security", "hook-failed")]
    assert sorted(m.state for m in moves) == ["held"] * 4 + ["moved"] * 2


def test_a_stopped_vm_leaves_its_boot_zone_started_live_migrated_and_stopped_again(ctx: EngineContext, cloud: FakeCloud,
                                                                                    tmp_path: Path) -> None:
    """nova's cold migration is held to the boot zone (the fake cloud refuses it as nova does): a SHUTOFF VM
    is started, live-migrated and stopped again, arriving SHUTOFF; failback brings it home by cold migration
    (home is its boot zone), still SHUTOFF."""
    province(ctx, tmp_path, count=2)
    plan = planned(ctx).migrate_plan("gd-prov", "gz-main")
    stopped = plan.moves[0].vm.server_id or ""
    cloud.break_server(stopped, status="SHUTOFF")
    result = planned(ctx, settings=ONE_AT_A_TIME).migrate(plan)
    assert result.state == "finished" and len(result.moved) == len(plan.moves), result.failed
    server = cloud.servers[stopped][1]
    assert (server.status, server.zone) == ("SHUTOFF", "gz-backup") and PARKED not in server.metadata
    assert cloud.power_calls == [(stopped, True), (stopped, False)]
    assert [(kind, "gz-backup" in host) for sid, kind, host in cloud.migrations if sid == stopped] == [("live", True)]
    _, moves, _ = journal(ctx, result.run_id)
    (mine,) = [m for m in moves if m.vm == plan.moves[0].vm.name]
    assert mine.message.startswith("started, live, stopped: SHUTOFF on gz-backup-"), mine.message
    with ctx.store.transaction() as conn:
        assert {v.server_id: v.status for v in rows.vms_of(conn)}[stopped] == "SHUTOFF"

    result = planned(ctx).failback(planned(ctx).failback_plan("gd-prov", "gz-main"))
    assert result.state == "finished", result.failed
    server = cloud.servers[stopped][1]
    assert (server.status, server.zone) == ("SHUTOFF", "gz-main") and cloud.power_calls == [(stopped, True), (stopped, False)]
    assert [kind for sid, kind, _ in cloud.migrations if sid == stopped] == ["live", "cold"]


def test_a_stopped_vm_started_for_its_move_is_stopped_by_the_run_that_resumes_it(ctx: EngineContext, cloud: FakeCloud,
                                                                                 tmp_path: Path) -> None:
    """A run killed after nova live-migrated a VM it had started: the server carries govcloud's mark, so the next
    try stops it (and takes the mark off) instead of recording it running; nothing moves twice."""
    province(ctx, tmp_path, count=2)
    plan = planned(ctx).migrate_plan("gd-prov", "gz-main")
    started = plan.moves[0].vm.server_id or ""
    endpoint, server = cloud.servers[started]
    cloud.servers[started] = (endpoint, dataclasses.replace(server, host="gz-backup-1", zone="gz-backup", status="ACTIVE",
                                                            metadata={**server.metadata, PARKED: "yes"}))
    result = planned(ctx, settings=ONE_AT_A_TIME).migrate(plan)
    assert result.state == "finished", result.failed
    server = cloud.servers[started][1]
    assert (server.status, server.host, PARKED in server.metadata) == ("SHUTOFF", "gz-backup-1", False)
    assert cloud.power_calls == [(started, False)] and started not in {sid for sid, _, _ in cloud.migrations}


def test_failback_is_refused_until_the_centre_is_healthy(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    province(ctx, tmp_path, count=2)
    fail(cloud, "gz-main")
    recovery(ctx).run(recovery(ctx).plan("gd-prov", "gz-main"))
    with pytest.raises(FailoverRefused, match=r"gz-main is not healthy: nova reports gz-main-1 \(down\), gz-main-2 \(down\)"):
        planned(ctx).failback_plan("gd-prov", "gz-main")
    cloud.services[GZ] = [dataclasses.replace(s, state="up", forced_down=s.host == "gz-main-2") for s in cloud.services[GZ]]
    with pytest.raises(FailoverRefused, match=r"gz-main-2 \(forced down\).*unfence"):
        planned(ctx).failback_plan("gd-prov", "gz-main")
    cloud.services[GZ] = [dataclasses.replace(s, forced_down=False) for s in cloud.services[GZ]]
    assert len(planned(ctx).failback_plan("gd-prov", "gz-main").moves) == 3
    assert cloud.migrations == []  # refusals moved nothing


def test_failback_brings_every_vm_home_in_order_on_separate_hosts(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    province(ctx, tmp_path)
    home = where(ctx)
    sums = centre_sums(ctx)
    planned(ctx).migrate(planned(ctx).migrate_plan("gd-prov", "gz-main"))
    assert status(cloud, "gz-main") == {("disabled", True)}
    plan = planned(ctx).failback_plan("gd-prov", "gz-main")
    assert [s.name for s in plan.steps] == ORDER and len(plan.moves) == 6
    result = planned(ctx).failback(plan)
    assert (result.state, len(result.moved)) == ("finished", 6)
    assert where(ctx) == home and centre_sums(ctx) == sums  # rows and ledger lines back where the tickets' plans put them
    assert status(cloud, "gz-main") == {("enabled", False)}
    hosts: dict[str, list[str]] = {}
    for server_id, kind, host in cloud.migrations[6:]:
        assert kind == "live"
        hosts.setdefault(cloud.servers[server_id][1].metadata["govcloud:ticket"], []).append(host)
    assert all(sorted(h) == ["gz-main-1", "gz-main-2"] for h in hosts.values()), hosts  # each ticket's two members apart
    run, moves, steps = journal(ctx, result.run_id)
    assert (run.kind, run.centre) == ("failback", "gz-main") and [s.group_name for s in steps] == ORDER
    assert {(m.source_centre, m.target_centre, m.state) for m in moves} == {("gz-backup", "gz-main", "moved")}
    assert planned(ctx).failback_plan("gd-prov", "gz-main").moves == ()  # nothing left away from home


def test_failback_after_a_failover_restores_anti_affinity_the_evacuation_broke(ctx: EngineContext, cloud: FakeCloud,
                                                                                tmp_path: Path) -> None:
    province(ctx, tmp_path)
    fail(cloud, "gz-main")
    recovery(ctx).run(recovery(ctx).plan("gd-prov", "gz-main"))
    cloud.services[GZ] = [dataclasses.replace(s, state="up") for s in cloud.services[GZ]]
    # one member already back on gz-main-1 (moved by hand): its ticket's other member goes to gz-main-2
    plan = planned(ctx).failback_plan("gd-prov", "gz-main")
    first = plan.moves[0]
    cloud.driver(GZ).live_migrate_server(first.vm.tenant, first.vm.server_id or "", host="gz-main-1", timeout=1)
    plan = planned(ctx).failback_plan("gd-prov", "gz-main")
    mate = next(m for m in plan.moves if m.vm.ticket == first.vm.ticket)
    assert mate.host == "gz-main-2"
    result = planned(ctx).failback(plan)
    assert result.state == "finished" and where(ctx)[first.vm.name] == "gz-main"


def test_a_migration_whose_process_died_is_resumed_and_no_vm_moves_twice(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    province(ctx, tmp_path)
    plan = planned(ctx).migrate_plan("gd-prov", "gz-main")
    dead = f"{socket.gethostname()}:{2**22 + 7}:dead00"
    with ctx.store.transaction() as conn:
        run = runs.create_run(conn, kind="migration", cloud="gd-prov", centre="gz-main", user="yunwei-he", owner=dead, now=ctx.now(),
                              plan={})
    first = plan.moves[0]  # the dead process had sent this one: nova moved it, the record was lost
    cloud.driver(GZ).live_migrate_server(first.vm.tenant, first.vm.server_id or "", host=first.host, timeout=1)
    counting = Counting(ctx.driver)
    result = planned(ctx, counting, settings=FailoverSettings()).migrate(plan)
    assert (result.run_id, result.resumed, result.state) == (run.id, True, "finished")
    assert sorted(counting.calls) == sorted(m.vm.server_id or "" for m in plan.moves[1:])  # the first is only recorded
    assert len(cloud.migrations) == 6
    assert where(ctx)[first.vm.name] == "gz-backup"


def test_only_operators_and_admins_may_migrate(ctx: EngineContext) -> None:
    from govcloud.errors import PermissionDenied

    with pytest.raises(PermissionDenied, match="'failover' needs role operator or admin"):
        Planned(recovery(ctx, "caijing"))


def test_a_run_of_another_kind_is_never_taken_over(ctx: EngineContext, cloud: FakeCloud, tmp_path: Path) -> None:
    """A dead process's migration is resumed by ``failover migrate``, not carried on with evacuations by ``failover run``."""
    from govcloud.store.runs import RunInProgress

    province(ctx, tmp_path, count=2)
    dead = f"{socket.gethostname()}:{2**22 + 7}:dead00"
    with ctx.store.transaction() as conn:
        run = runs.create_run(conn, kind="migration", cloud="gd-prov", centre="gz-main", user="yunwei-he", owner=dead, now=ctx.now(),
                              plan={})
    fail(cloud, "gz-main")
    with pytest.raises(RunInProgress, match="resumed by 'govcloud failover migrate gz-main'"):
        recovery(ctx).run(recovery(ctx).plan("gd-prov", "gz-main"))
    with ctx.store.transaction() as conn:
        assert runs.get_run(conn, run.id).owner == dead  # type: ignore[union-attr]


def test_migrate_disables_nothing_while_another_run_of_the_centre_is_in_progress(ctx: EngineContext, cloud: FakeCloud,
                                                                                 tmp_path: Path) -> None:
    from govcloud.store.runs import RunInProgress

    province(ctx, tmp_path, count=2)
    with ctx.store.transaction() as conn:
        runs.create_run(conn, kind="failback", cloud="gd-prov", centre="gz-main", user="admin", owner="elsewhere:1:abc", now=ctx.now(),
                        plan={})
    with pytest.raises(RunInProgress, match="one run per centre at a time"):
        planned(ctx).migrate(planned(ctx).migrate_plan("gd-prov", "gz-main"))
    assert status(cloud, "gz-main") == {("enabled", False)} and cloud.migrations == []


def test_the_exporter_shows_the_maintenance_and_the_vms_away_until_the_failback(ctx: EngineContext, cloud: FakeCloud,
                                                                                tmp_path: Path) -> None:
    """One registry for the whole story, as a running exporter scrapes: its reused reads follow each change."""
    province(ctx, tmp_path)
    registry = registry_for(ctx.store, ctx.state)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    main, backup = {"cloud": "gd-prov", "centre": "gz-main"}, {"cloud": "gd-prov", "centre": "gz-backup"}
    away = {"cloud": "gd-prov", "home_centre": "gz-main", "centre": "gz-backup"}
    home = {"cloud": "gd-prov", "home_centre": "gz-main"}
    assert value("govcloud_centre_maintenance", **main) is None and value("govcloud_vms_away_from_home", **away) is None
    result = planned(ctx).migrate(planned(ctx).migrate_plan("gd-prov", "gz-main"))
    run, moves, _steps = journal(ctx, result.run_id)
    assert value("govcloud_centre_maintenance", **main) == 1 and value("govcloud_centre_maintenance", **backup) is None
    assert value("govcloud_centre_maintenance_since_timestamp_seconds", **main) == epoch(run.started_at)
    assert value("govcloud_vms_away_from_home", **away) == 6
    assert value("govcloud_vms_away_since_timestamp_seconds", **home) == min(epoch(m.ended_at) for m in moves)
    result = planned(ctx).failback(planned(ctx).failback_plan("gd-prov", "gz-main"))
    assert result.state == "finished"
    assert value("govcloud_centre_maintenance", **main) == 0
    assert value("govcloud_centre_maintenance_since_timestamp_seconds", **main) is None
    assert value("govcloud_vms_away_from_home", **away) is None and value("govcloud_vms_away_since_timestamp_seconds", **home) is None


def test_a_centre_with_nothing_to_move_is_still_journalled_in_and_out_of_maintenance(ctx: EngineContext, cloud: FakeCloud,
                                                                                     tmp_path: Path) -> None:
    """The newest planned run is the record of a centre's maintenance: an empty centre needs one too."""
    registry = registry_for(ctx.store, ctx.state)
    backup = {"cloud": "gd-prov", "centre": "gz-backup"}
    plan = planned(ctx).migrate_plan("gd-prov", "gz-backup")
    assert plan.moves == ()
    result = planned(ctx).migrate(plan)
    run, moves, _steps = journal(ctx, result.run_id)
    assert (run.kind, run.state, run.started_by, moves) == ("migration", "finished", "yunwei-he", [])
    assert status(cloud, "gz-backup") == {("disabled", True)}
    assert registry.get_sample_value("govcloud_centre_maintenance", backup) == 1
    result = planned(ctx).failback(planned(ctx).failback_plan("gd-prov", "gz-backup"))
    run, moves, _steps = journal(ctx, result.run_id)
    assert (run.kind, run.state, moves) == ("failback", "finished", [])
    assert status(cloud, "gz-backup") == {("enabled", False)}
    assert registry.get_sample_value("govcloud_centre_maintenance", backup) == 0
