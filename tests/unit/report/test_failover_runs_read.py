"""The service report's recovery runs come from the failover journal (issue 13's ``recovery_runs``): the
runs that started in the period, with their kind and the VMs each moved and failed, the RTO from start to
end (issue 15, item 4)."""

from __future__ import annotations

from pathlib import Path

from govcloud.planner.service import _failover_row
from govcloud.store import Store, runs
from govcloud.store.report_reads import failover_runs

T0 = "2026-11-10T08:00:00.000000+00:00"


def _move(run_id: int, vm: str, state: str) -> runs.MoveRow:
    return runs.MoveRow(run_id=run_id, vm=vm, ticket="t-1", group_name="g", seq=0, protection="ha", source_centre="gz-main", state=state)


def test_the_period_s_runs_with_moved_and_failed_vms_and_their_rto(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    with store.transaction() as conn:
        october = runs.create_run(conn, kind="failover", cloud="gd-prov", centre="gz-main", user="op", owner="o", now="2026-10-31T23:00:00+00:00",
                                  plan={})
        runs.end_run(conn, october.id, state="finished", now="2026-10-31T23:10:00+00:00", detail={})
        run = runs.create_run(conn, kind="failover", cloud="gd-prov", centre="gz-main", user="op", owner="o", now=T0, plan={})
        for vm, state in (("a", "moved"), ("b", "moved"), ("c", "failed"), ("d", "held")):
            runs.record_move(conn, _move(run.id, vm, state))
        runs.end_run(conn, run.id, state="failed", now="2026-11-10T08:02:30.000000+00:00", detail={})
        back = runs.create_run(conn, kind="failback", cloud="gd-prov", centre="gz-main", user="op", owner="o",
                               now="2026-11-12T09:00:00.000000+00:00", plan={})
    with store.transaction() as conn:
        found = failover_runs(conn, since="2026-11-01T00:00:00.000000+00:00", until="2026-12-01T00:00:00.000000+00:00")
    assert [(r.kind, r.started_at, r.moved, r.failed) for r in found] == [("failover", T0, 2, 1), ("failback", back.started_at, 0, 0)]
    first, second = (_failover_row(r) for r in found)
    assert (first["kind"], first["rto_seconds"], second["kind"], second["rto_seconds"]) == ("故障切换", 150.0, "回切", None)


def test_a_drill_comes_with_its_state_and_the_rto_it_measured(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    with store.transaction() as conn:
        drill = runs.create_run(conn, kind="drill", cloud="gd-prov", centre="sg-dr", user="op", owner="o", now=T0, plan={"group": "g"},
                                detail={"group": "g"}, key=runs.drill_key("gd-prov", "g"))
        runs.record_move(conn, _move(drill.id, "a", "moved"))
        runs.end_run(conn, drill.id, state="succeeded", now="2026-11-10T08:05:00.000000+00:00",
                     detail={"group": "g", "rto": {"total_s": 42.5, "groups": {"g": 40.0}}})
    with store.transaction() as conn:
        (found,) = failover_runs(conn, since="2026-11-01T00:00:00.000000+00:00", until="2026-12-01T00:00:00.000000+00:00")
    assert (found.kind, found.state, found.moved, found.rto_seconds) == ("drill", "succeeded", 1, 42.5)
    row = _failover_row(found)
    assert (row["kind"], row["rto_seconds"], row["result"]) == ("演练", 42.5, "通过")  # the drill's RTO, not its 300 s with clean-up
