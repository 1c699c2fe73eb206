"""What the daemon observes, in store terms: centre health, reconcile cycles and their findings,
and the daemon instances themselves (which one leads).

The daemon writes these; the exporter and ``govcloud status`` read them. Keeping observations in the
store (not in a process's memory) is what lets a scrape answer without calling any cloud API, and
lets a standby daemon that takes over know what its predecessor saw.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from govcloud.store.tables import centre_health, daemons, findings, reconcile_status

HEALTH_STATES = ("healthy", "degraded", "down")
FINDING_KINDS = ("drift", "orphan", "unmanaged")


@dataclass(frozen=True)
class CentreHealth:
    """The recorded health of one centre."""

    cloud: str
    centre: str
    state: str
    since: str
    checked_at: str
    services_up: int
    services_total: int
    api_ok: bool
    detail: dict[str, Any] = field(default_factory=dict)


def health(conn: sa.Connection) -> list[CentreHealth]:
    query = sa.select(centre_health).order_by(centre_health.c.cloud, centre_health.c.centre)
    return [CentreHealth(r.cloud, r.centre, r.state, r.since, r.checked_at, r.services_up, r.services_total, bool(r.api_ok),
                         json.loads(r.detail)) for r in conn.execute(query)]


def record_health(conn: sa.Connection, item: CentreHealth) -> None:
    """Replace one centre's row (the caller decided the state; ``since`` says when it last changed)."""
    conn.execute(centre_health.delete().where(centre_health.c.cloud == item.cloud, centre_health.c.centre == item.centre))
    conn.execute(centre_health.insert().values(
        cloud=item.cloud, centre=item.centre, state=item.state, since=item.since, checked_at=item.checked_at,
        services_up=item.services_up, services_total=item.services_total, api_ok=item.api_ok,
        detail=json.dumps(item.detail, ensure_ascii=False, sort_keys=True)))


@dataclass(frozen=True)
class Finding:
    """Something a reconcile cycle saw that does not match the desired state."""

    cloud: str
    kind: str
    key: str
    name: str
    detail: str
    server_id: str | None = None
    ticket: str | None = None
    tenant: str | None = None
    first_seen: str = ""
    last_seen: str = ""


@dataclass(frozen=True)
class CycleStatus:
    """The newest reconcile cycle of one cloud."""

    cloud: str
    started_at: str
    finished_at: str | None = None
    success_at: str | None = None
    duration_s: float | None = None
    servers: int = 0
    drift: int = 0
    orphans: int = 0
    unmanaged: int = 0
    corrected: int = 0
    error: str | None = None


def cycles(conn: sa.Connection) -> list[CycleStatus]:
    query = sa.select(reconcile_status).order_by(reconcile_status.c.cloud)
    return [CycleStatus(**dict(r._mapping)) for r in conn.execute(query)]


def record_cycle(conn: sa.Connection, status: CycleStatus) -> None:
    """Replace a cloud's cycle row; a failed cycle keeps the previous ``success_at``."""
    previous = conn.execute(sa.select(reconcile_status.c.success_at).where(reconcile_status.c.cloud == status.cloud)).scalar()
    values = dict(status.__dict__)
    if values["success_at"] is None:
        values["success_at"] = previous
    conn.execute(reconcile_status.delete().where(reconcile_status.c.cloud == status.cloud))
    conn.execute(reconcile_status.insert().values(**values))


def replace_findings(conn: sa.Connection, cloud: str, current: Iterable[Finding], *, now: str,
                     keep_tenants: Collection[str] = ()) -> list[Finding]:
    """Make ``current`` the cloud's findings, keeping ``first_seen`` of those seen before. The findings of
    ``keep_tenants`` stay as they are (a Terraform workspace — one tenant's — that could not be looked at
    this cycle keeps the findings of its last good look). Returns the findings that are new in this cycle
    (what the audit records)."""
    before = {(r.kind, r.key): r.first_seen
              for r in conn.execute(sa.select(findings.c.kind, findings.c.key, findings.c.first_seen).where(findings.c.cloud == cloud))}
    stale = findings.c.cloud == cloud
    if keep_tenants:
        stale = sa.and_(stale, sa.or_(findings.c.tenant.is_(None), findings.c.tenant.not_in(list(keep_tenants))))
    conn.execute(findings.delete().where(stale))
    new, rows = [], []
    for item in current:
        first = before.get((item.kind, item.key))
        if first is None:
            new.append(item)
        rows.append({"cloud": cloud, "kind": item.kind, "key": item.key, "name": item.name, "server_id": item.server_id,
                     "ticket": item.ticket, "tenant": item.tenant, "detail": item.detail, "first_seen": first or now, "last_seen": now})
    if rows:
        conn.execute(findings.insert(), rows)
    return new


def findings_of(conn: sa.Connection, *, cloud: str | None = None, kinds: Sequence[str] = ()) -> list[Finding]:
    query = sa.select(findings).order_by(findings.c.cloud, findings.c.kind, findings.c.name)
    if cloud is not None:
        query = query.where(findings.c.cloud == cloud)
    if kinds:
        query = query.where(findings.c.kind.in_(list(kinds)))
    return [Finding(**dict(r._mapping)) for r in conn.execute(query)]


@dataclass(frozen=True)
class DaemonRow:
    """One daemon process, as it last reported itself."""

    id: str
    hostname: str
    pid: int
    started_at: str
    heartbeat_at: str
    leader: bool
    stopped_at: str | None = None


def heartbeat(conn: sa.Connection, daemon: DaemonRow) -> None:
    """Insert or refresh a daemon's row; only its own leader flag and heartbeat change."""
    updated = conn.execute(daemons.update().where(daemons.c.id == daemon.id)
                           .values(heartbeat_at=daemon.heartbeat_at, leader=daemon.leader, stopped_at=daemon.stopped_at))
    if updated.rowcount == 0:
        conn.execute(daemons.insert().values(**daemon.__dict__))


def claim_leadership(conn: sa.Connection, daemon_id: str) -> int:
    """The new leader holds the lock, so no other row can be leader: clear the flag a killed leader
    left behind. Returns how many rows were cleared."""
    return int(conn.execute(daemons.update().where(daemons.c.id != daemon_id, daemons.c.leader.is_(True)).values(leader=False)).rowcount)


def daemon_rows(conn: sa.Connection, *, running: bool = True) -> list[DaemonRow]:
    query = sa.select(daemons).order_by(daemons.c.started_at, daemons.c.id)
    if running:
        query = query.where(daemons.c.stopped_at.is_(None))
    return [DaemonRow(r.id, r.hostname, r.pid, r.started_at, r.heartbeat_at, bool(r.leader), r.stopped_at) for r in conn.execute(query)]
