"""One scrape: read the store in one snapshot (``read_facts``), then build the families (``build``).

Reading and building are apart so that the building is a pure function of what was read, the desired
state and the time (tests feed it directly), and so that the only I/O of a scrape is a dozen aggregate
queries of ``govcloud.store.aggregates`` and ``facts`` — never a cloud API.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from govcloud.exporter.catalogue import HUMAN_BUCKETS, MACHINE_BUCKETS, RESOURCES, SPECS
from govcloud.exporter.families import Family, Gauge, Histogram, Series
from govcloud.model.quotas import QuotaSet
from govcloud.model.resources import Resources
from govcloud.model.state import DesiredState
from govcloud.model.topology import Topology
from govcloud.settings import ExporterSettings
from govcloud.store import aggregates, facts
from govcloud.store import tickets as ticket_rows
from govcloud.store.db import Store

HEALTH_STATES = facts.HEALTH_STATES
FINDING_KINDS = facts.FINDING_KINDS
OPEN_STATES = ("submitted", "approved", "provisioning", "configuring", "config-failed", "retiring", "failed", "quarantined")
"""States a ticket should not stay in for long (``active`` is where tickets live; the rest are final)."""

DURATIONS = (
    (aggregates.Duration("govcloud_ticket_submit_to_approve_seconds", "submitted_at", "approved_at"), HUMAN_BUCKETS),
    (aggregates.Duration("govcloud_ticket_approve_to_active_seconds", "approved_at", "active_at"), MACHINE_BUCKETS),
    (aggregates.Duration("govcloud_ticket_submit_to_active_seconds", "submitted_at", "active_at"), HUMAN_BUCKETS),
    (aggregates.Duration("govcloud_ticket_provisioning_seconds", "provision_started_at", "provisioned_at"), MACHINE_BUCKETS),
    (aggregates.Duration("govcloud_ticket_configuration_seconds", "provisioned_at", "active_at", configured_only=True), MACHINE_BUCKETS),
)


@dataclass(frozen=True)
class Facts:
    """Everything one scrape reads from the store, all from one snapshot."""

    usage: list[aggregates.TenantUsage]
    overrides: dict[tuple[str, str], Resources]
    allocation: list[aggregates.CentreAllocation]
    vms: list[tuple[str, str, str, str, int]]
    tickets: list[tuple[str, str, int]]
    oldest: list[tuple[str, str]]
    leases: list[tuple[str, int, int]]
    histograms: list[aggregates.Histogram]
    cycles: list[facts.CycleStatus]
    findings: list[tuple[str, str, int]]
    health: list[facts.CentreHealth]
    daemons: list[facts.DaemonRow]


def read_facts(store: Store, *, today: datetime.date, warning_days: int) -> Facts:
    """The store's side of a scrape. Raises StoreError when the store cannot be read."""
    horizon = (today + datetime.timedelta(days=warning_days)).isoformat()
    with aggregates.snapshot(store) as conn:
        return Facts(
            usage=aggregates.tenant_usage(conn),
            overrides={key: limit for key, (limit, _) in ticket_rows.overrides(conn).items()},
            allocation=aggregates.centre_allocation(conn),
            vms=aggregates.vm_counts(conn),
            tickets=aggregates.ticket_counts(conn),
            oldest=aggregates.oldest_change(conn, OPEN_STATES),
            leases=aggregates.leases(conn, today=today.isoformat(), horizon=horizon),
            histograms=aggregates.duration_histograms(conn, DURATIONS),
            cycles=facts.cycles(conn),
            findings=aggregates.finding_counts(conn),
            health=facts.health(conn),
            daemons=facts.daemon_rows(conn, running=True),
        )


def gauge(name: str) -> Gauge:
    return Gauge(SPECS[name])


def epoch(iso: str | None) -> float | None:
    """Seconds since the epoch of a stored ISO timestamp (naive ones are UTC, as govcloud writes them)."""
    if not iso:
        return None
    moment = datetime.datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _resource_rows(target: Gauge, labels: tuple[str, ...], amounts: Resources) -> None:
    for resource, attr, factor in RESOURCES:
        target.add((*labels, resource), float(getattr(amounts, attr) * factor))


def quota_families(quotas: QuotaSet, overrides: dict[tuple[str, str], Resources], usage: Iterable[aggregates.TenantUsage]) -> list[Family]:
    """Limits as ``quota show`` sees them (approved overrides win over the files); used for every
    tenant × cloud that holds anything, reserved only where something is reserved (absent means 0:
    the recording rule ``govcloud:quota_allocated`` adds the two with that in mind)."""
    limit, warn, total = gauge("govcloud_quota_limit"), gauge("govcloud_quota_warn_ratio"), gauge("govcloud_quota_total_limit")
    reserved, used = gauge("govcloud_quota_reserved"), gauge("govcloud_quota_used")
    keys = sorted(set(quotas.quotas) | set(overrides))
    for key in keys:
        quota = quotas.quotas.get(key)
        amounts = overrides.get(key) or (quota.limit if quota else Resources())
        _resource_rows(limit, key, amounts)
        warn.add(key, quota.warn_at if quota else quotas.policy.warn_at)
    for tenant, amounts in sorted(quotas.totals.items()):
        _resource_rows(total, (tenant,), amounts)
    for line in usage:
        if line.reserved != Resources():  # few pairs wait for provisioning: a zero for every other pair is 25 % of a scrape
            _resource_rows(reserved, (line.tenant, line.cloud), line.reserved)
        _resource_rows(used, (line.tenant, line.cloud), line.committed)
    return [limit, reserved, used, warn, total]


def centre_families(topology: Topology, allocation: Iterable[aggregates.CentreAllocation]) -> list[Family]:
    """Capacity × overcommit from the topology next to what the ledger holds in each centre."""
    capacity, ratio, allocated = gauge("govcloud_centre_capacity"), gauge("govcloud_centre_overcommit_ratio"), gauge("govcloud_centre_allocated")
    for cloud in topology.clouds:
        for centre in cloud.centres:
            can = centre.allocatable()
            for resource, attr, factor in RESOURCES[1:]:  # instances are not bounded by a centre
                capacity.add((cloud.id, centre.id, resource), float(getattr(can, attr) * factor))
            for resource, value in (("vcpus", centre.overcommit.cpu), ("memory_bytes", centre.overcommit.ram),
                                    ("disk_bytes", centre.overcommit.disk)):
                ratio.add((cloud.id, centre.id, resource), value)
    for line in allocation:
        for resource, attr, factor in RESOURCES:
            allocated.add((line.cloud, line.centre, resource, line.kind, line.state), float(getattr(line.resources, attr) * factor))
    return [capacity, ratio, allocated]


def health_families(rows: Iterable[facts.CentreHealth]) -> list[Family]:
    state, up, services_up, services = (gauge("govcloud_centre_health"), gauge("govcloud_centre_up"),
                                        gauge("govcloud_centre_compute_services_up"), gauge("govcloud_centre_compute_services"))
    api, since, checked = (gauge("govcloud_centre_api_up"), gauge("govcloud_centre_state_since_timestamp_seconds"),
                           gauge("govcloud_centre_checked_timestamp_seconds"))
    for row in rows:
        key = (row.cloud, row.centre)
        for name in HEALTH_STATES:
            state.add((*key, name), 1.0 if row.state == name else 0.0)
        up.add(key, 0.0 if row.state == "down" else 1.0)
        services_up.add(key, float(row.services_up))
        services.add(key, float(row.services_total))
        api.add(key, 1.0 if row.api_ok else 0.0)
        _add_time(since, key, row.since)
        _add_time(checked, key, row.checked_at)
    return [state, up, services_up, services, api, since, checked]


def _add_time(target: Gauge, key: tuple[str, ...], iso: str | None) -> None:
    value = epoch(iso)
    if value is not None:
        target.add(key, value)


def ticket_families(found: Facts) -> list[Family]:
    vms, tickets, oldest = gauge("govcloud_vms"), gauge("govcloud_tickets"), gauge("govcloud_tickets_oldest_change_timestamp_seconds")
    for cloud, centre, tenant, status, count in found.vms:
        vms.add((cloud, centre, tenant, status), float(count))
    for state, kind, count in sorted(found.tickets):
        tickets.add((state, kind), float(count))
    for state, iso in sorted(found.oldest):
        _add_time(oldest, (state,), iso)
    histograms = {spec.name: Histogram(SPECS[spec.name]) for spec, _ in DURATIONS}
    for item in found.histograms:
        histograms[item.name].series.append(Series((item.kind,), tuple(zip(item.bounds, item.counts, strict=True)), item.count, item.total))
    return [vms, tickets, oldest, *histograms.values()]


def lease_families(rows: Iterable[tuple[str, int, int]], warning_days: int) -> list[Family]:
    expiring, expired = gauge("govcloud_tickets_lease_expiring"), gauge("govcloud_tickets_lease_expired")
    window = gauge("govcloud_lease_warning_window_seconds")
    window.add((), float(warning_days * 86400))
    for tenant, soon, gone in rows:
        if soon:
            expiring.add((tenant,), float(soon))
        if gone:
            expired.add((tenant,), float(gone))
    return [expiring, expired, window]


def reconcile_families(cycles: Iterable[facts.CycleStatus], findings: Iterable[tuple[str, str, int]]) -> list[Family]:
    """Per cloud, the newest cycle; findings by kind with zeros for the kinds a cloud has none of."""
    names = ("last_duration_seconds", "last_start_timestamp_seconds", "last_success_timestamp_seconds", "error", "servers", "drift",
             "orphans", "unmanaged", "corrected")
    out = {n: gauge(f"govcloud_reconcile_{n}") for n in names}
    counts = {(cloud, kind): count for cloud, kind, count in findings}
    clouds: set[str] = {cloud for cloud, _ in counts}
    for cycle in cycles:
        key = (cycle.cloud,)
        clouds.add(cycle.cloud)
        if cycle.duration_s is not None:
            out["last_duration_seconds"].add(key, cycle.duration_s)
        _add_time(out["last_start_timestamp_seconds"], key, cycle.started_at)
        _add_time(out["last_success_timestamp_seconds"], key, cycle.success_at)
        out["error"].add(key, 1.0 if cycle.error else 0.0)
        for n in ("servers", "drift", "orphans", "unmanaged", "corrected"):
            out[n].add(key, float(getattr(cycle, n)))
    found = gauge("govcloud_reconcile_findings")
    for cloud in sorted(clouds):
        for kind in FINDING_KINDS:
            found.add((cloud, kind), float(counts.get((cloud, kind), 0)))
    return [*out.values(), found]


def daemon_families(rows: Iterable[facts.DaemonRow], *, now: datetime.datetime, timeout: float) -> list[Family]:
    """Each running daemon's flag and heartbeat as recorded; ``govcloud_leaders`` counts only live ones,
    because a daemon killed with ``kill -9`` keeps ``stopped_at`` empty and its leader flag set."""
    leader, heartbeat, live, leaders = (gauge("govcloud_daemon_leader"), gauge("govcloud_daemon_heartbeat_timestamp_seconds"),
                                        gauge("govcloud_daemons_live"), gauge("govcloud_leaders"))
    alive = claiming = 0
    for row in rows:
        key = (row.id, row.hostname)
        leader.add(key, 1.0 if row.leader else 0.0)
        beat = epoch(row.heartbeat_at)
        if beat is not None:
            heartbeat.add(key, beat)
        if beat is not None and now.timestamp() - beat <= timeout:
            alive += 1
            claiming += int(row.leader)
    live.add((), float(alive))
    leaders.add((), float(claiming))
    return [leader, heartbeat, live, leaders]


def build(found: Facts, state: DesiredState, *, now: datetime.datetime, settings: ExporterSettings, warning_days: int) -> list[Family]:
    """Every store-derived family of one scrape (pure: same inputs, same families)."""
    return [
        *quota_families(state.quotas, found.overrides, found.usage),
        *centre_families(state.topology, found.allocation),
        *health_families(found.health),
        *ticket_families(found),
        *lease_families(found.leases, warning_days),
        *reconcile_families(found.cycles, found.findings),
        *daemon_families(found.daemons, now=now, timeout=settings.heartbeat_timeout),
    ]
