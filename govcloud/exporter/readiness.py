"""Metrics of recovery plans' readiness for a DR activation (``model/readiness.py``, issue 14 item 4): per
plan ready or not, its last successful drill and how often it is due; per business system the age of
its ``dr`` VMs' replicas against its RPO. From the store, like every metric.

The verdict depends on the time, but between two changes of its facts only through known deadlines (a
drill or a replica growing older than allowed): ``ReadinessCache`` computes the plans once per change of
the facts (the ``dr`` VMs, the replicas, the drills, the ledger, the desired state) and at each scrape
only compares ``now`` with each plan's deadline and each system's oldest replica — a scrape of a
province with thousands of ``dr`` VMs costs a few series, not a pass over every VM.
"""

from __future__ import annotations

import datetime
from typing import Any

from govcloud.exporter.catalogue import SPECS
from govcloud.exporter.families import Family, Gauge
from govcloud.model.parsed import DesiredState
from govcloud.model.readiness import Readiness, ReplicaAge, capacity_verdicts, plan_readiness, replica_ages
from govcloud.settings import DrSettings
from govcloud.store.readiness import ReadinessFacts


def compute(found: ReadinessFacts, state: DesiredState, *, now: datetime.datetime,
            settings: DrSettings) -> tuple[list[Readiness], list[ReplicaAge]]:
    plans = plan_readiness(plans=state.recovery, topology=state.topology, vms=found.vms, newest=found.newest, drills=found.drills,
                           reserved=found.reserved, held=found.held, now=now, drill_every=settings.drill_every, rpo=settings.rpo)
    ages = replica_ages(plans=state.recovery, topology=state.topology, vms=found.vms, newest=found.newest, now=now, rpo=settings.rpo)
    return plans, ages


def families(plans: list[Readiness], ages: list[ReplicaAge], *, now: datetime.datetime) -> list[Family]:
    """The gauges at ``now`` (the plans and ages computed at ``now`` or before, on the same facts)."""
    ready, drilled, every, age, rpo = (Gauge(SPECS[n]) for n in (
        "govcloud_recovery_plan_ready", "govcloud_recovery_plan_last_drill_timestamp_seconds",
        "govcloud_recovery_plan_drill_every_seconds", "govcloud_dr_replica_age_seconds", "govcloud_dr_rpo_seconds"))
    for plan in plans:
        key = (plan.cloud, plan.group)
        ready.add(key, 1.0 if plan.ready_at(now) else 0.0)
        every.add(key, plan.drill_every)
        if plan.last_drill is not None:
            drilled.add(key, plan.last_drill.timestamp())
    for system in ages:
        labels = (system.cloud, system.tenant, system.system)
        age.add(labels, system.age_at(now))
        rpo.add(labels, system.rpo)
    return [ready, drilled, every, age, rpo]


def readiness_families(found: ReadinessFacts, state: DesiredState, *, now: datetime.datetime, settings: DrSettings) -> list[Family]:
    """One scrape's readiness families, computed from scratch (pure)."""
    plans, ages = compute(found, state, now=now, settings=settings)
    return families(plans, ages, now=now)


class ReadinessCache:
    """The plans and replica ages of the last facts, reused while the facts are equal — the ``dr`` VMs (a VM
    that changed status re-reads them: tuples of plain values, compared in C), the ``dr`` ledger lines, the
    drills, each DR centre's capacity verdict (a VM line that changed elsewhere changes none of them) — or
    the same object (the newest replicas, reread only when ``replicas_version`` changes; the desired
    state), and the clock has not gone back."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._at: datetime.datetime | None = None
        self._value: tuple[list[Readiness], list[ReplicaAge]] = ([], [])
        self._keep: tuple[Any, ...] = ()

    def families(self, found: ReadinessFacts, state: DesiredState, *, now: datetime.datetime, settings: DrSettings) -> list[Family]:
        key = (found.vms, id(found.newest), found.reserved, found.drills, capacity_verdicts(state.topology, found.held), id(state),
               settings)
        if self._key is None or key != self._key or self._at is None or now < self._at:
            self._value, self._key, self._at = compute(found, state, now=now, settings=settings), key, now
            self._keep = (found.newest, state)  # the objects whose ids are in the key stay alive
        return families(*self._value, now=now)
