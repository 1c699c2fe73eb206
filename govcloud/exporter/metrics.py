"""One scrape: read the store in one snapshot (``read_facts``), then build the families (``build``).

Reading and building are apart so that the building is a pure function of what was read, the desired
state and the time (tests feed it directly), and so that the only I/O of a scrape is a dozen aggregate
queries of ``govcloud.store.aggregates`` and ``facts`` — never a cloud API.
"""

from __future__ import annotations

import datetime
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from govcloud.exporter.blocks import Blocked
from govcloud.exporter.catalogue import RESOURCES, SPECS
from govcloud.exporter.families import Family, Gauge, Histogram, Row, Series
from govcloud.exporter.readiness import ReadinessCache, readiness_families
from govcloud.exporter.recovery import away_families, maintenance_families, recovery_families
from govcloud.model.parsed import DesiredState
from govcloud.model.quotas import QuotaSet
from govcloud.model.resources import Resources
from govcloud.model.states import MOVABLE, UNSETTLED
from govcloud.model.topology import Topology
from govcloud.settings import DrSettings, ExporterSettings
from govcloud.store import aggregates, facts, latency, readiness, runs
from govcloud.store import tickets as ticket_rows
from govcloud.store.audit import head_row
from govcloud.store.db import Store

T = TypeVar("T")

HEALTH_STATES = facts.HEALTH_STATES
FINDING_KINDS = facts.FINDING_KINDS


@dataclass(frozen=True)
class Facts:
    """Everything one scrape reads from the store, all from one snapshot."""

    usage: Sequence[aggregates.UsageRow]
    overrides: dict[tuple[str, str], Resources]
    allocation: list[aggregates.CentreAllocation]
    vms: Sequence[aggregates.VmCount]
    tickets: list[tuple[str, str, int]]
    oldest: list[tuple[str, str]]
    leases: list[tuple[str, int, int]]
    histograms: list[latency.Histogram]
    cycles: list[facts.CycleStatus]
    findings: list[tuple[str, str, int]]
    health: list[facts.CentreHealth]
    daemons: list[facts.DaemonRow]
    waiting: list[tuple[str, str, str, int]]
    audit_head: int | None = None
    recovery: runs.RecoveryFacts = field(default_factory=runs.RecoveryFacts)
    """The recovery journal's aggregates (exporter/recovery.py)."""
    away: Sequence[runs.AwayVm] = ()
    """VMs away from their home centre (exporter/recovery.py)."""
    readiness: readiness.ReadinessFacts = field(default_factory=readiness.ReadinessFacts)
    """What the recovery plans' readiness is computed from (exporter/readiness.py)."""
    """The audit chain's head seq; None when the head row is missing (appends are refused then)."""


class StoreReads:
    """The big aggregates of the previous scrape, with the table versions they were read at.

    ``vms``, ``ledger`` and ``tickets`` are the three GROUP BYs that cost nearly all of a scrape's store
    time at 100k VMs; between two scrapes of a running daemon they seldom change (heartbeats and health
    rows do). Where the store keeps table versions (SQLite, migration 0009; PostgreSQL, 0014) and a table's
    version in this scrape's snapshot is the one an aggregate was read at, the aggregate is reused (``get``).
    Where the triggers also keep the groups (0013, 0014), a changed table costs only the groups its writes changed
    (``follow``): the previous rows are patched, and the unchanged ones stay the same objects, which makes
    the families' comparison with the previous scrape cheap (``blocks.py``).
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[Any, Any]] = {}

    def get(self, name: str, version: Any, read: Callable[[], T]) -> T:
        """``read()``, or what it returned before at the same ``version`` (None: always read)."""
        if version is not None:
            seen = self._seen.get(name)
            if seen is not None and seen[0] == version:
                return cast(T, seen[1])
        value = read()
        if version is None:
            self._seen.pop(name, None)
        else:
            self._seen[name] = (version, value)
        return value

    def follow(self, name: str, version: aggregates.TableVersion | None, *, read: Callable[[], Sequence[T]],
               descends: Callable[[aggregates.TableVersion], bool], changes: Callable[[int], Sequence[Any]],
               patch: Callable[[Sequence[T], Sequence[Any]], list[T]]) -> Sequence[T]:
        """``get``, except that a table whose groups the triggers keep, and whose history went through the
        version read before (``descends``), is not read again: the groups changed since (``changes``) are
        patched into the previous rows."""
        seen = self._seen.get(name)
        if version is None or not version.groups or seen is None or seen[0] == version:
            return self.get(name, version, read)
        before: aggregates.TableVersion = seen[0]
        follows = before.groups and before.seq < version.seq and descends(before)
        value = patch(seen[1], changes(before.seq)) if follows else list(read())
        self._seen[name] = (version, value)
        return value


R = TypeVar("R", bound=tuple[Any, ...])


def patched(rows: Sequence[R], changes: Sequence[Any], *, width: int, row: Callable[[Any], R | None]) -> list[R]:
    """``rows`` (sorted by their first ``width`` fields, one row per group) with each changed group's new
    state: ``row(change)`` is its row, or None when the group is gone. Unchanged rows stay the same objects."""
    out = list(rows)
    for change in changes:
        key = tuple(change[:width])
        at = bisect_left(out, key, key=lambda found: found[:width])
        new = row(change)
        found = at < len(out) and out[at][:width] == key
        if new is None:
            if found:
                del out[at]
        elif found:
            out[at] = new
        else:
            out.insert(at, new)
    return out


def _vm_row(change: aggregates.VmCount) -> aggregates.VmCount | None:
    return change if change[4] > 0 else None


def _usage_row(change: aggregates.UsageChange) -> aggregates.UsageRow | None:
    return (change[0], change[1], change[2], change[4], change[5], change[6], change[7]) if change[3] > 0 else None


def read_facts(store: Store, *, today: datetime.date, warning_days: int, reads: StoreReads | None = None) -> Facts:
    """The store's side of a scrape. Raises StoreError when the store cannot be read. ``reads``: the
    previous scrape's big aggregates, reused where their tables did not change (``StoreReads``)."""
    horizon = (today + datetime.timedelta(days=warning_days)).isoformat()
    reads = reads or StoreReads()
    with aggregates.snapshot(store) as conn:
        versions = aggregates.table_versions(conn)

        def version(table: str, *more: Any) -> Any:
            return None if versions is None else (versions[table], *more)

        def grouped(table: str) -> bool:
            return versions is not None and versions[table].groups

        def descends(table: str) -> Callable[[aggregates.TableVersion], bool]:
            return lambda seen: aggregates.descends(conn, table, seen)

        allocation = reads.get("allocation", version("ledger"), lambda: aggregates.centre_allocation(conn, grouped=grouped("ledger")))
        return Facts(
            usage=reads.follow("usage", None if versions is None else versions["ledger"],
                               read=lambda: aggregates.tenant_usage(conn, grouped=grouped("ledger")), descends=descends("ledger"),
                               changes=lambda since: aggregates.usage_changes(conn, since),
                               patch=lambda rows, changes: patched(rows, changes, width=3, row=_usage_row)),
            overrides={key: limit for key, (limit, _) in ticket_rows.overrides(conn).items()},
            allocation=allocation,
            vms=reads.follow("vms", None if versions is None else versions["vms"],
                             read=lambda: aggregates.vm_counts(conn, grouped=grouped("vms")), descends=descends("vms"),
                             changes=lambda since: aggregates.vm_count_changes(conn, since),
                             patch=lambda rows, changes: patched(rows, changes, width=4, row=_vm_row)),
            tickets=reads.get("tickets", version("tickets"), lambda: aggregates.ticket_counts(conn)),
            # open but not active: deliberately not OPEN (model/states.py)
            oldest=reads.get("oldest", version("tickets"), lambda: aggregates.oldest_change(conn, UNSETTLED)),
            leases=reads.get("leases", version("tickets", today, horizon),
                             lambda: aggregates.leases(conn, today=today.isoformat(), horizon=horizon)),
            histograms=latency.histograms(conn),
            cycles=facts.cycles(conn),
            findings=aggregates.finding_counts(conn),
            health=facts.health(conn),
            daemons=facts.daemon_rows(conn, running=True),
            waiting=aggregates.waiting_for_failover(conn, MOVABLE),
            audit_head=head[0] if (head := head_row(conn)) is not None else None,
            recovery=runs.recovery_facts(conn),
            away=reads.get("away", None if versions is None else (versions["tickets"], aggregates.places(versions), runs.moved_stamp(conn)),
                           lambda: runs.away_from_home(conn, MOVABLE)),
            readiness=readiness.ReadinessFacts(
                vms=reads.get("dr_vms", None if versions is None else (versions["tickets"], aggregates.places(versions)),
                              lambda: readiness.dr_vm_rows(conn, reads.get("dr_tickets", version("tickets"),
                                                                           lambda: readiness.dr_tickets(conn, MOVABLE)))),
                newest=reads.get("newest_replicas", readiness.replicas_version(conn), lambda: readiness.newest_ready(conn)),
                drills=runs.last_drills(conn),
                reserved=reads.get("dr_reserved", version("ledger"), lambda: readiness.dr_reservations(conn)),
                held=readiness.held(allocation)),
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


UNITS = tuple((resource, float(factor)) for resource, _, factor in RESOURCES)
"""(label value, factor to the base unit) in the order of ``Resources``' fields."""


def _amount_rows(tenant: str, cloud: str, amounts: Sequence[int]) -> tuple[Row, ...]:
    """One tenant × cloud's four series (``amounts`` in the order of ``Resources``' fields, base units out)."""
    return tuple(((tenant, cloud, resource), value * factor) for (resource, factor), value in zip(UNITS, amounts, strict=True))


def limit_families(quotas: QuotaSet, overrides: dict[tuple[str, str], Resources]) -> list[Family]:
    """Limits as ``quota show`` sees them (approved overrides win over the files). They change only when
    the YAML is reloaded or a quota change is approved, so the collector builds them once per pair of
    inputs (``ScrapeCache``)."""
    limit, warn, total = gauge("govcloud_quota_limit"), gauge("govcloud_quota_warn_ratio"), gauge("govcloud_quota_total_limit")
    amounts: dict[Resources, tuple[int, int, int, int]] = {}  # tiers repeat: a few distinct limits for 10k tenants
    for key in sorted(set(quotas.quotas) | set(overrides)):
        quota = quotas.quotas.get(key)
        found = overrides.get(key) or (quota.limit if quota else Resources())
        if found not in amounts:
            amounts[found] = (found.instances, found.vcpus, found.ram_mb, found.disk_gb)
        limit.rows.extend(_amount_rows(key[0], key[1], amounts[found]))
        warn.add(key, quota.warn_at if quota else quotas.policy.warn_at)
    for tenant, amount in sorted(quotas.totals.items()):
        _resource_rows(total, (tenant,), amount)
    return [limit, warn, total]


NOTHING: Sequence[int] = (0, 0, 0, 0)
USAGE_SPECS = (SPECS["govcloud_quota_reserved"], SPECS["govcloud_quota_used"])


def usage_rows(usage: Sequence[aggregates.UsageRow]) -> tuple[tuple[Row, ...], tuple[Row, ...]]:
    """The reserved and used series of ``usage`` (sorted by tenant, cloud and ledger state): used for
    every tenant × cloud that holds anything, reserved only where something is reserved (absent means 0:
    the recording rule ``govcloud:quota_allocated`` adds the two with that in mind)."""
    reserved: list[Row] = []
    committed: dict[tuple[str, str], Sequence[int]] = {}
    for row in usage:
        tenant, cloud, state = row[0], row[1], row[2]
        amounts: Sequence[int] = row[3:]
        if state == "reserved":
            if any(amounts):  # few pairs wait for provisioning: a zero for every other pair is 25 % of a scrape
                reserved.extend(_amount_rows(tenant, cloud, amounts))
            committed.setdefault((tenant, cloud), NOTHING)
        else:
            committed[(tenant, cloud)] = amounts
    used = [series for (tenant, cloud), amounts in committed.items() for series in _amount_rows(tenant, cloud, amounts)]
    return tuple(reserved), tuple(used)


def usage_families(usage: Sequence[aggregates.UsageRow]) -> list[Family]:
    """Reserved and used per tenant × cloud (``usage_rows``), built at once (the collector builds them
    block by block: ``ScrapeCache``)."""
    return [Gauge(spec, rows=list(rows)) for spec, rows in zip(USAGE_SPECS, usage_rows(usage), strict=True)]


def capacity_families(topology: Topology) -> list[Family]:
    """Capacity × overcommit and the ratios themselves, from the topology alone."""
    capacity, ratio = gauge("govcloud_centre_capacity"), gauge("govcloud_centre_overcommit_ratio")
    for cloud in topology.clouds:
        for centre in cloud.centres:
            can = centre.allocatable()
            for resource, attr, factor in RESOURCES[1:]:  # instances are not bounded by a centre
                capacity.add((cloud.id, centre.id, resource), float(getattr(can, attr) * factor))
            for resource, value in (("vcpus", centre.overcommit.cpu), ("memory_bytes", centre.overcommit.ram),
                                    ("disk_bytes", centre.overcommit.disk)):
                ratio.add((cloud.id, centre.id, resource), value)
    return [capacity, ratio]


def allocation_families(allocation: Iterable[aggregates.CentreAllocation]) -> list[Family]:
    """What the ledger holds in each centre, DR room (kind ``dr``) apart."""
    allocated = gauge("govcloud_centre_allocated")
    for line in allocation:
        for resource, attr, factor in RESOURCES:
            allocated.add((line.cloud, line.centre, resource, line.kind, line.state), float(getattr(line.resources, attr) * factor))
    return [allocated]


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


def failover_families(rows: Iterable[tuple[str, str, str, int]]) -> list[Family]:
    """VMs still in a centre recorded down, by protection: ha/dr ones wait for a failover."""
    waiting = gauge("govcloud_failover_waiting_vms")
    for cloud, centre, protection, count in rows:
        waiting.add((cloud, centre, protection), float(count))
    return [waiting]


def _add_time(target: Gauge, key: tuple[str, ...], iso: str | None) -> None:
    value = epoch(iso)
    if value is not None:
        target.add(key, value)


def ticket_families(found: Facts) -> list[Family]:
    tickets, oldest = gauge("govcloud_tickets"), gauge("govcloud_tickets_oldest_change_timestamp_seconds")
    for state, kind, count in sorted(found.tickets):
        tickets.add((state, kind), float(count))
    for state, iso in sorted(found.oldest):
        _add_time(oldest, (state,), iso)
    histograms = {item.name: Histogram(SPECS[item.name]) for item in latency.LATENCIES}
    for found_one in found.histograms:
        series = Series((found_one.kind,), tuple(zip(found_one.bounds, found_one.counts, strict=True)), found_one.count, found_one.total)
        histograms[found_one.name].series.append(series)
    return [tickets, oldest, *histograms.values()]


def vm_rows(counts: Sequence[aggregates.VmCount]) -> tuple[tuple[Row, ...]]:
    """The ``govcloud_vms`` series of ``counts``."""
    return (tuple(((cloud, centre, tenant, status), float(n)) for cloud, centre, tenant, status, n in counts),)


def vm_families(counts: Sequence[aggregates.VmCount]) -> list[Family]:
    """VMs by cloud, centre, tenant and status."""
    return [Gauge(SPECS["govcloud_vms"], rows=list(vm_rows(counts)[0]))]


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


def audit_families(head: int | None) -> list[Family]:
    """The audit chain's head seq, so that Prometheus keeps its history outside the database: a value
    that goes down, or stops at a number the chain no longer reaches, shows records deleted. Absent when
    the head row is missing."""
    seq = gauge("govcloud_audit_head_seq")
    if head is not None:
        seq.add((), float(head))
    return [seq]


def static_families(state: DesiredState, overrides: dict[tuple[str, str], Resources]) -> list[Family]:
    """The families that depend on the desired state and the quota overrides only (pure)."""
    return [*limit_families(state.quotas, overrides), *capacity_families(state.topology)]


def store_families(found: Facts, *, now: datetime.datetime, settings: ExporterSettings, warning_days: int) -> list[Family]:
    """The families that change with the store (pure)."""
    return [*usage_families(found.usage), *vm_families(found.vms), *fact_families(found, now=now, settings=settings, warning_days=warning_days)]


def fact_families(found: Facts, *, now: datetime.datetime, settings: ExporterSettings, warning_days: int) -> list[Family]:
    """The store's families with at most a few hundred series each (everything but quota usage and VMs)."""
    return [
        *allocation_families(found.allocation),
        *health_families(found.health),
        *failover_families(found.waiting),
        *ticket_families(found),
        *lease_families(found.leases, warning_days),
        *reconcile_families(found.cycles, found.findings),
        *daemon_families(found.daemons, now=now, timeout=settings.heartbeat_timeout),
        *audit_families(found.audit_head),
        *recovery_families(found.recovery, now=now),
        *maintenance_families(found.recovery.latest),
        *away_families(found.away),
    ]


def build(found: Facts, state: DesiredState, *, now: datetime.datetime, settings: ExporterSettings, warning_days: int,
          dr: DrSettings | None = None) -> list[Family]:
    """Every store-derived family of one scrape (pure: same inputs, same families)."""
    return [*static_families(state, found.overrides), *store_families(found, now=now, settings=settings, warning_days=warning_days),
            *readiness_families(found.readiness, state, now=now, settings=dr or DrSettings())]


class ScrapeCache:
    """What a collector keeps between scrapes: ``build`` with the big families reused block by block
    (``blocks.Blocked``) where their rows stay the same. The static families are rebuilt when the desired state is another object (a reload
    makes a new one; comparing two states field by field would cost more than building) or the
    approved overrides differ."""

    def __init__(self, *, block: int = 256) -> None:
        """``block``: rows of an aggregate built together (a change rebuilds its block)."""
        self._state: DesiredState | None = None
        self._overrides: dict[tuple[str, str], Resources] = {}
        self._static: list[Family] = []
        self.reads = StoreReads()
        """The big store aggregates, reused while their tables' versions stay the same."""
        self.usage = Blocked(USAGE_SPECS, usage_rows, width=2, size=block)  # a tenant × cloud's reserved and committed rows together
        self.vms = Blocked((SPECS["govcloud_vms"],), vm_rows, width=4, size=block)
        self.readiness = ReadinessCache()
        """Plans' readiness, recomputed only when its facts change (exporter/readiness.py)."""

    def static(self, state: DesiredState, overrides: dict[tuple[str, str], Resources]) -> list[Family]:
        if state is not self._state or overrides != self._overrides:
            self._static, self._state, self._overrides = static_families(state, overrides), state, dict(overrides)
        return self._static

    def build(self, found: Facts, state: DesiredState, *, now: datetime.datetime, settings: ExporterSettings,
              warning_days: int, dr: DrSettings | None = None) -> list[Family]:
        """The same families as ``build``."""
        return [*self.static(state, found.overrides), *self.usage.get(found.usage), *self.vms.get(found.vms),
                *fact_families(found, now=now, settings=settings, warning_days=warning_days),
                *self.readiness.families(found.readiness, state, now=now, settings=dr or DrSettings())]
