"""The usage history: change points of committed allocation, failover room and quota (``usage_points``),
and the full samples that keep it honest (``usage_samples``). Migration 0009 says what the tables hold.

Who writes: the quota ledger at every change of committed allocation (``tickets.commit``, ``release``,
``move_allocation`` call ``refresh`` in the same transaction, so a point carries the moment the VMs
became ACTIVE, were retired or failed over); a quota change ticket at its approval (``record_quota``);
the daemon's daily timer and ``govcloud report sample`` (``sample``), which compare every group's newest
point with the ledger and the quota files and write a point wherever they differ — allocations from
before this history existed, quota files edited by hand, anything that bypassed the ledger. Points are
written only on change, so a month of daily samples of an unchanged store adds nothing.

Who reads: ``points`` for the reports (engine/reads.py filters, planner/report.py integrates).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from govcloud.model.history import GroupKey, Point
from govcloud.model.resources import RESOURCE_NAMES, Resources
from govcloud.store.tables import ledger, usage_points, usage_samples

ZERO = Resources()


def _key(row: Any) -> GroupKey:
    return GroupKey(str(row.tenant), str(row.system), str(row.cloud), str(row.centre), str(row.kind))


def _amount(row: Any) -> Resources:
    return Resources(*(int(getattr(row, n) or 0) for n in RESOURCE_NAMES))


def committed(conn: sa.Connection, tenants: Collection[str] | None = None) -> dict[GroupKey, Resources]:
    """What the ledger holds committed now, per group (reserved lines are not allocated yet)."""
    cols = (ledger.c.tenant, ledger.c.system, ledger.c.cloud, ledger.c.centre, ledger.c.kind)
    query = (sa.select(*cols, *(sa.func.sum(ledger.c[n]).label(n) for n in RESOURCE_NAMES))
             .where(ledger.c.state == "committed").group_by(*cols))
    if tenants is not None:
        query = query.where(ledger.c.tenant.in_(sorted(tenants)))
    return {_key(r): _amount(r) for r in conn.execute(query)}


def latest(conn: sa.Connection, tenants: Collection[str] | None = None) -> dict[GroupKey, Resources]:
    """Each group's newest recorded amount (zero amounts included: the group ended)."""
    query = sa.select(usage_points).order_by(usage_points.c.at, usage_points.c.id)
    if tenants is not None:
        query = query.where(usage_points.c.tenant.in_(sorted(tenants)))
    return {_key(r): _amount(r) for r in conn.execute(query)}


def _write(conn: sa.Connection, at: str, changes: Mapping[GroupKey, Resources]) -> int:
    rows = [{"at": at, "tenant": k.tenant, "system": k.system, "cloud": k.cloud, "centre": k.centre, "kind": k.kind, **v.as_dict()}
            for k, v in sorted(changes.items())]
    for start in range(0, len(rows), 5000):
        conn.execute(usage_points.insert(), rows[start:start + 5000])
    return len(rows)


def _differences(now: Mapping[GroupKey, Resources], recorded: Mapping[GroupKey, Resources],
                 keys: Collection[GroupKey]) -> dict[GroupKey, Resources]:
    return {k: now.get(k, ZERO) for k in keys if now.get(k, ZERO) != recorded.get(k, ZERO)}


def ledger_keys(conn: sa.Connection, ticket_id: str) -> set[GroupKey]:
    """The groups a ticket's ledger lines fall in (read before a change, so a release still knows them)."""
    query = sa.select(ledger.c.tenant, ledger.c.system, ledger.c.cloud, ledger.c.centre, ledger.c.kind).where(ledger.c.ticket == ticket_id)
    return {_key(r) for r in conn.execute(query)}


def refresh(conn: sa.Connection, keys: Collection[GroupKey], *, at: str) -> int:
    """Write a point at ``at`` for each of ``keys`` whose committed amount differs from its newest point.
    Called in the transaction that changed the ledger; returns the points written."""
    if not keys:
        return 0
    tenants = {k.tenant for k in keys}
    return _write(conn, at, _differences(committed(conn, tenants), latest(conn, tenants), keys))


def record_quota(conn: sa.Connection, tenant: str, cloud: str, limit: Resources, *, at: str) -> int:
    """A quota change took effect at ``at`` (an approved quota-change ticket)."""
    key = GroupKey(tenant, "", cloud, "", "quota")
    return _write(conn, at, _differences({key: limit}, latest(conn, {tenant}), [key]))


@dataclass(frozen=True)
class SampleRun:
    """One full sample: when, how many groups held something, how many points it had to write."""

    at: str
    groups: int
    written: int
    actor: str


def sample(conn: sa.Connection, quotas: Mapping[tuple[str, str], Resources], *, at: str, actor: str) -> SampleRun:
    """Compare every group with the ledger and ``quotas`` (tenant, cloud → limit in force, overrides
    applied) and write a point where they differ; a group no longer there gets zero."""
    now = committed(conn)
    now.update({GroupKey(t, "", c, "", "quota"): limit for (t, c), limit in quotas.items()})
    recorded = latest(conn)
    written = _write(conn, at, _differences(now, recorded, set(now) | set(recorded)))
    run = SampleRun(at, sum(1 for v in now.values() if v != ZERO), written, actor)
    conn.execute(usage_samples.delete().where(usage_samples.c.at == at))
    conn.execute(usage_samples.insert().values(**run.__dict__))
    return run


def samples(conn: sa.Connection, *, since: str | None = None) -> list[SampleRun]:
    query = sa.select(usage_samples).order_by(usage_samples.c.at)
    if since is not None:
        query = query.where(usage_samples.c.at >= since)
    return [SampleRun(r.at, r.groups, r.written, r.actor) for r in conn.execute(query)]


def points(conn: sa.Connection, *, before: str, tenants: Collection[str] | None = None,
           kinds: Collection[str] | None = None) -> list[Point]:
    """Every point earlier than ``before``, oldest first (ties in the order written): a group's value at
    the start of a period is its last point before it, so the reader needs all of them."""
    c = usage_points.c
    query = (sa.select(c.at, c.tenant, c.system, c.cloud, c.centre, c.kind, c.instances, c.vcpus, c.ram_mb, c.disk_gb)
             .where(c.at < before).order_by(c.at, c.id))
    if tenants is not None:
        query = query.where(c.tenant.in_(sorted(tenants)))
    if kinds is not None:
        query = query.where(c.kind.in_(sorted(kinds)))
    keys: dict[tuple[str, ...], GroupKey] = {}  # one key object per group, however many points it has
    found = []
    for at, tenant, system, cloud, centre, kind, instances, vcpus, ram_mb, disk_gb in conn.execute(query):
        raw = (tenant, system, cloud, centre, kind)
        key = keys.get(raw)
        if key is None:
            key = keys[raw] = GroupKey(tenant, system, cloud, centre, kind)
        found.append(Point(at, key, Resources(instances, vcpus, ram_mb, disk_gb)))
    return found
