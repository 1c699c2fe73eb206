"""Metrics of recovery plans' readiness for a DR activation (``model/readiness.py``, issue 14 item 4): per
plan ready or not, its last successful drill and how often it is due; per business system the age of
its ``dr`` VMs' replicas against its RPO. From the store, like every metric: the facts come from
``read_facts`` (the two big reads reused while their tables do not change), the verdict is recomputed at
every scrape because it depends on the time.
"""

from __future__ import annotations

import datetime

from govcloud.exporter.catalogue import SPECS
from govcloud.exporter.families import Family, Gauge
from govcloud.model.parsed import DesiredState
from govcloud.model.readiness import plan_readiness, replica_ages
from govcloud.settings import DrSettings
from govcloud.store.readiness import ReadinessFacts


def readiness_families(found: ReadinessFacts, state: DesiredState, *, now: datetime.datetime, settings: DrSettings) -> list[Family]:
    ready, drilled, every, age, rpo = (Gauge(SPECS[n]) for n in (
        "govcloud_recovery_plan_ready", "govcloud_recovery_plan_last_drill_timestamp_seconds",
        "govcloud_recovery_plan_drill_every_seconds", "govcloud_dr_replica_age_seconds", "govcloud_dr_rpo_seconds"))
    for plan in plan_readiness(plans=state.recovery, topology=state.topology, vms=found.vms, newest=found.newest, drills=found.drills,
                               reserved=found.reserved, held=found.held, now=now, drill_every=settings.drill_every, rpo=settings.rpo):
        key = (plan.cloud, plan.group)
        ready.add(key, 1.0 if plan.ready else 0.0)
        every.add(key, plan.drill_every)
        if plan.last_drill is not None:
            drilled.add(key, plan.last_drill.timestamp())
    for system in replica_ages(plans=state.recovery, topology=state.topology, vms=found.vms, newest=found.newest, now=now,
                               rpo=settings.rpo):
        labels = (system.cloud, system.tenant, system.system)
        age.add(labels, system.age)
        rpo.add(labels, system.rpo)
    return [ready, drilled, every, age, rpo]
