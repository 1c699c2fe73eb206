"""Metrics of the recovery journal (``store/runs.py``): run states and durations per kind, the VMs of
each centre's latest run by result, how long each VM took to recover, and the heartbeat of a run in
progress (a run whose process died stops beating: the stall alert); which centres are in maintenance
and which VMs are away from their home centre (a failback due). From the store, like every metric.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from govcloud.exporter.catalogue import SPECS
from govcloud.exporter.families import Family, Gauge, Histogram, Series
from govcloud.store.runs import ACTIVE_STATES, DRILL_END_STATES, KINDS, MOVE_STATES, RUN_STATES, AwayVm, RecoveryFacts, RunRow

VM_SECONDS_BOUNDS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
"""Upper bounds of the per-VM recovery histogram: an evacuation takes nova seconds to a few minutes."""


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    moment = datetime.datetime.fromisoformat(iso)
    return (moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)).timestamp()


def _histogram(kind_seconds: Sequence[tuple[str, float]]) -> Histogram:
    family = Histogram(SPECS["govcloud_recovery_vm_seconds"])
    for kind in KINDS:
        values = [s for k, s in kind_seconds if k == kind]
        if not values:
            continue
        buckets = tuple((bound, sum(1 for v in values if v <= bound)) for bound in VM_SECONDS_BOUNDS)
        family.series.append(Series((kind,), buckets, len(values), sum(values)))
    return family


def recovery_families(found: RecoveryFacts, *, now: datetime.datetime) -> list[Family]:
    runs_, state, duration, vms, beat, running = (Gauge(SPECS[n]) for n in (
        "govcloud_recovery_runs", "govcloud_recovery_last_run_state", "govcloud_recovery_last_run_duration_seconds",
        "govcloud_recovery_last_run_vms", "govcloud_recovery_run_heartbeat_timestamp_seconds", "govcloud_recovery_run_running"))
    for kind, run_state, count in sorted(found.by_state):
        runs_.add((kind, run_state), float(count))
    for run in found.latest:
        key = (run.kind, run.cloud, run.centre)
        for name in (*RUN_STATES, *DRILL_END_STATES[:1]) if run.kind == "drill" else RUN_STATES:  # a drill ends succeeded, not finished
            state.add((*key, name), 1.0 if run.state == name else 0.0)
        start, end = _epoch(run.started_at), _epoch(run.finished_at)
        if start is not None:
            duration.add(key, (end if end is not None else now.timestamp()) - start)
        counts = found.latest_vms.get(run.id, {})
        for result in MOVE_STATES:
            vms.add((*key, result), float(counts.get(result, 0)))
        if run.state in ACTIVE_STATES:
            running.add(key, 1.0)
            heartbeat = _epoch(run.heartbeat_at)
            if heartbeat is not None and run.state == "running":  # a new run (a DR activation waiting for approval) has no carrier yet
                beat.add(key, heartbeat)
    seconds = [(kind, e - s) for kind, start, end in found.vm_seconds
               if (s := _epoch(start)) is not None and (e := _epoch(end)) is not None]
    return [runs_, state, duration, vms, running, beat, _histogram(seconds)]


def maintenance_families(latest: Sequence[RunRow]) -> list[Family]:
    """A centre is in maintenance when its newest planned run is a ``migration``: ``failover migrate`` disables
    its computes before the run starts, and only ``failover failback`` enables them again (before its own run).
    Computed from ``RecoveryFacts.latest`` (the newest run of each kind per centre): no read of its own."""
    flag, since = Gauge(SPECS["govcloud_centre_maintenance"]), Gauge(SPECS["govcloud_centre_maintenance_since_timestamp_seconds"])
    newest: dict[tuple[str, str], RunRow] = {}
    for run in latest:
        key = (run.cloud, run.centre)
        if run.kind in ("migration", "failback") and (key not in newest or run.id > newest[key].id):
            newest[key] = run
    for key, run in sorted(newest.items()):
        on = run.kind == "migration"
        flag.add(key, 1.0 if on else 0.0)
        start = _epoch(run.started_at or run.created_at)
        if on and start is not None:
            since.add(key, start)
    return [flag, since]


def away_families(away: Sequence[AwayVm]) -> list[Family]:
    """VMs away from home per (cloud, home centre, centre), and the oldest absence per home centre."""
    count, since = Gauge(SPECS["govcloud_vms_away_from_home"]), Gauge(SPECS["govcloud_vms_away_since_timestamp_seconds"])
    counts: dict[tuple[str, str, str], int] = {}
    oldest: dict[tuple[str, str], float] = {}
    for vm in away:
        counts[(vm.cloud, vm.home, vm.centre)] = counts.get((vm.cloud, vm.home, vm.centre), 0) + 1
        moment = _epoch(vm.since)
        if moment is not None and moment < oldest.get((vm.cloud, vm.home), float("inf")):
            oldest[(vm.cloud, vm.home)] = moment
    for labels, n in sorted(counts.items()):
        count.add(labels, float(n))
    for key, moment in sorted(oldest.items()):
        since.add(key, moment)
    return [count, since]
