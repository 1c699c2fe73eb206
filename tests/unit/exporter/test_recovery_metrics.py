"""Metrics of the recovery journal (issue 13, item 6): run states and durations per kind, the newest run's
VMs by result, per-VM recovery seconds, and the heartbeat of a run in progress — read from the store."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from govcloud.exporter.metrics import epoch
from govcloud.store import Store, runs
from govcloud.store import tickets as rows
from tests.support.exporter import iso, registry_for, sample_state, ticket, vm


def test_the_journal_becomes_run_vm_and_heartbeat_metrics(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    with store.transaction() as conn:
        done = runs.create_run(conn, kind="failover", cloud="gd-prov", centre="gz-main", user="yunwei-he", owner="a:1:x",
                               now=iso(600), plan={})
        for n, (state, took) in enumerate([("moved", 12.0), ("moved", 40.0), ("failed", 0.0)]):
            runs.record_move(conn, runs.MoveRow(done.id, f"vm-{n}", "t-1", "g", 0, "ha", "gz-main", state,
                                                started_at=iso(500), ended_at=iso(500 - took)))
        runs.record_move(conn, runs.MoveRow(done.id, "vm-held", "t-1", "g", 0, "none", "gz-main", "held", message="protection none"))
        runs.end_run(conn, done.id, state="failed", now=iso(300), detail={})
        running = runs.create_run(conn, kind="failover", cloud="gd-prov", centre="gz-backup", user="govcloud-daemon", owner="b:2:y",
                                  now=iso(100), plan={})
    registry = registry_for(store, sample_state())

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    main = {"kind": "failover", "cloud": "gd-prov", "centre": "gz-main"}
    backup = {"kind": "failover", "cloud": "gd-prov", "centre": "gz-backup"}
    assert value("govcloud_recovery_runs", kind="failover", state="failed") == 1
    assert value("govcloud_recovery_runs", kind="failover", state="running") == 1
    assert value("govcloud_recovery_last_run_state", state="failed", **main) == 1
    assert value("govcloud_recovery_last_run_state", state="finished", **main) == 0
    duration = value("govcloud_recovery_last_run_duration_seconds", **main)
    assert duration is not None and abs(duration - 300) < 1
    assert [value("govcloud_recovery_last_run_vms", result=r, **main) for r in ("moved", "failed", "held")] == [2, 1, 1]
    assert value("govcloud_recovery_run_running", **main) is None and value("govcloud_recovery_run_running", **backup) == 1
    beat = value("govcloud_recovery_run_heartbeat_timestamp_seconds", **backup)
    assert beat is not None and running.heartbeat_at and value("govcloud_recovery_last_run_state", state="running", **backup) == 1
    assert value("govcloud_recovery_vm_seconds_count", kind="failover") == 2  # moved VMs only
    assert value("govcloud_recovery_vm_seconds_sum", kind="failover") == 52
    assert value("govcloud_recovery_vm_seconds_bucket", kind="failover", le="20.0") == 1
    assert value("govcloud_recovery_vm_seconds_bucket", kind="failover", le="60.0") == 2
    store.close()


def test_a_dr_activation_waiting_for_approval_is_running_without_a_heartbeat(tmp_path: Path) -> None:
    """It has no carrier until approved: no heartbeat series, so GovcloudRecoveryRunStalled cannot fire for
    it (GovcloudDrActivationAwaitingApproval does, from its state)."""
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    with store.transaction() as conn:
        runs.create_run(conn, kind="dr-activation", cloud="gd-prov", centre="sg-dr", user="yunwei-he", owner="a:1:x", now=iso(600),
                        plan={}, state="new")
    registry = registry_for(store, sample_state())
    dr = {"kind": "dr-activation", "cloud": "gd-prov", "centre": "sg-dr"}
    assert registry.get_sample_value("govcloud_recovery_last_run_state", {**dr, "state": "new"}) == 1
    assert registry.get_sample_value("govcloud_recovery_run_running", dr) == 1
    assert registry.get_sample_value("govcloud_recovery_run_heartbeat_timestamp_seconds", dr) is None
    store.close()


def test_a_drill_that_succeeded_says_so_in_its_state(tmp_path: Path) -> None:
    """A drill ends ``succeeded`` (docs/dr.md "Drills"): its state series has that state, set to 1."""
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    with store.transaction() as conn:
        drill = runs.create_run(conn, kind="drill", cloud="gd-prov", centre="sg-dr", user="yunwei-he", owner="a:1:x", now=iso(600),
                                plan={"group": "g"}, key=runs.drill_key("gd-prov", "g"))
        runs.end_run(conn, drill.id, state="succeeded", now=iso(500), detail={"group": "g"})
    registry = registry_for(store, sample_state())
    labels = {"kind": "drill", "cloud": "gd-prov", "centre": "sg-dr"}
    assert registry.get_sample_value("govcloud_recovery_last_run_state", {**labels, "state": "succeeded"}) == 1
    assert registry.get_sample_value("govcloud_recovery_last_run_state", {**labels, "state": "failed"}) == 0
    assert registry.get_sample_value("govcloud_recovery_runs", {"kind": "drill", "state": "succeeded"}) == 1
    store.close()


def test_vms_away_from_home_follow_the_journal_and_the_newest_absence(tmp_path: Path) -> None:
    """Home is the ticket's plan; a VM that came home and left again is away since its last departure; a move
    row written after its VM's row (two transactions, as ``failover/steps.py`` does) is seen by the next
    scrape even though the ``vms`` table did not change in between."""
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    first, second = vm("t-1", 1), vm("t-1", 2)
    plan = {"protection": "ha", "vms": [{"name": first.name, "centre": "gz-main"}, {"name": second.name, "centre": "gz-main"}]}

    def move(conn: Any, run: runs.RunRow, row: rows.VmRow, source: str, target: str, ended: float) -> None:
        rows.upsert_vm(conn, dataclasses.replace(row, centre=target, zone=target))
        runs.record_move(conn, runs.MoveRow(run.id, row.name, "t-1", "g", 0, "ha", source, "moved", target_centre=target,
                                            started_at=iso(ended + 10), ended_at=iso(ended)))

    with store.transaction() as conn:
        rows.insert(conn, dataclasses.replace(ticket("t-1"), plan=plan))
        for row in (first, second):
            rows.upsert_vm(conn, row)
        for kind, source, target, at in (("failover", "gz-main", "gz-backup", 5000), ("failback", "gz-backup", "gz-main", 3000)):
            run = runs.create_run(conn, kind=kind, cloud="gd-prov", centre="gz-main", user="u", owner="a:1:x", now=iso(at + 60), plan={})
            for row in (first, second):
                move(conn, run, row, source, target, at)
            runs.end_run(conn, run.id, state="finished", now=iso(at), detail={})
        migration = runs.create_run(conn, kind="migration", cloud="gd-prov", centre="gz-main", user="u", owner="a:1:x", now=iso(1060),
                                    plan={})
    registry = registry_for(store, sample_state())
    away = {"cloud": "gd-prov", "home_centre": "gz-main", "centre": "gz-backup"}
    home = {"cloud": "gd-prov", "home_centre": "gz-main"}
    main = {"cloud": "gd-prov", "centre": "gz-main"}
    assert registry.get_sample_value("govcloud_centre_maintenance", main) == 1
    assert registry.get_sample_value("govcloud_vms_away_from_home", away) is None  # both came home with the failback
    with store.transaction() as conn:
        move(conn, migration, first, "gz-main", "gz-backup", 1000)
    assert registry.get_sample_value("govcloud_vms_away_from_home", away) == 1
    assert registry.get_sample_value("govcloud_vms_away_since_timestamp_seconds", home) == epoch(iso(1000))  # not the failover's 5000
    with store.transaction() as conn:
        rows.upsert_vm(conn, dataclasses.replace(second, centre="gz-backup", zone="gz-backup"))
    registry.get_sample_value("govcloud_vms_away_from_home", away)  # a scrape between the VM's row and its move's row
    with store.transaction() as conn:
        runs.record_move(conn, runs.MoveRow(migration.id, second.name, "t-1", "g", 0, "ha", "gz-main", "moved", target_centre="gz-backup",
                                            started_at=iso(910), ended_at=iso(900)))
    assert registry.get_sample_value("govcloud_vms_away_from_home", away) == 2
    assert registry.get_sample_value("govcloud_vms_away_since_timestamp_seconds", home) == epoch(iso(1000))
    store.close()
