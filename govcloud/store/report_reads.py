"""What the assessment reports read from the store besides the usage history (store/usage_history.py):
ticket timestamps, centre health changes and failover runs, as model/assessment.py's plain records.

Health changes and failover runs come from the audit trail — the health watch audits every change of a
centre's recorded state (``centre.health``), a failover run its start and end (``failover.start``,
``failover.end``) — and from the run journal (``recovery_runs``: failovers, migrations, failbacks, DR
activations and drills, with their steps and RTO), which ``failover_runs`` reads.
"""

from __future__ import annotations

import json
from collections.abc import Collection

import sqlalchemy as sa

from govcloud.model.assessment import FailoverRun, HealthChange, TicketTimes
from govcloud.store.runs import counts as run_counts
from govcloud.store.tables import audit_log, recovery_runs, tickets


def ticket_times(conn: sa.Connection, *, since: str, until: str, tenants: Collection[str] | None = None) -> list[TicketTimes]:
    """Tickets submitted before ``until`` that changed at or after ``since`` (every ticket that went active,
    failed or was quarantined in the period is among them: ``updated_at`` is never before those moments)."""
    c = tickets.c
    query = (sa.select(c.id, c.tenant, c.system, c.kind, c.state, c.submitted_at, c.updated_at, c.approved_at, c.active_at, c.reason)
             .where(c.submitted_at < until, c.updated_at >= since).order_by(c.submitted_at, c.id))
    if tenants is not None:
        query = query.where(c.tenant.in_(sorted(tenants)))
    return [TicketTimes(**dict(r._mapping)) for r in conn.execute(query)]


def _audit(conn: sa.Connection, actions: Collection[str], until: str, since: str | None = None) -> list[tuple[str, str, str, str]]:
    query = (sa.select(audit_log.c.ts, audit_log.c.action, audit_log.c.subject, audit_log.c.details)
             .where(audit_log.c.action.in_(sorted(actions)), audit_log.c.ts < until).order_by(audit_log.c.seq))
    if since is not None:
        query = query.where(audit_log.c.ts >= since)
    return [(r.ts, r.action, r.subject, r.details) for r in conn.execute(query)]


def _centre(subject: str) -> tuple[str, str]:
    cloud, _, centre = subject.removeprefix("centre:").partition("/")
    return cloud, centre


def health_changes(conn: sa.Connection, *, until: str) -> list[HealthChange]:
    """Every recorded change of a centre's state before ``until``, oldest first (the state at a period's
    start is the last change before it)."""
    found = []
    for ts, _, subject, details in _audit(conn, ("centre.health",), until):
        data = json.loads(details)
        cloud, centre = _centre(subject)
        found.append(HealthChange(ts, cloud, centre, data.get("from"), str(data.get("to"))))
    return found


def failover_runs(conn: sa.Connection, *, since: str, until: str) -> list[FailoverRun]:
    """Recovery runs of the journal (``recovery_runs``) that started in ``[since, until)``, oldest first,
    with the VMs each moved and failed, how each ended; a run still going has ``ended_at`` None. ``kind``
    is the journal's (failover, migration, failback, dr-activation, drill); a drill brings the RTO it
    measured (``detail.rto.total_s``: copies up and hook run, the clean-up after it not counted)."""
    query = (sa.select(recovery_runs.c.id, recovery_runs.c.kind, recovery_runs.c.cloud, recovery_runs.c.centre, recovery_runs.c.state,
                       recovery_runs.c.started_at, recovery_runs.c.finished_at, recovery_runs.c.detail)
             .where(recovery_runs.c.started_at >= since, recovery_runs.c.started_at < until)
             .order_by(recovery_runs.c.started_at, recovery_runs.c.id))
    found = list(conn.execute(query))
    moved = run_counts(conn, [int(r.id) for r in found])
    return [FailoverRun(r.cloud, r.centre, r.started_at, r.finished_at, moved[int(r.id)].get("moved", 0), moved[int(r.id)].get("failed", 0),
                        kind=r.kind, state=r.state, rto_seconds=_measured_rto(r.kind, r.detail)) for r in found]


def _measured_rto(kind: str, detail: str) -> float | None:
    if kind != "drill":
        return None
    try:
        value = json.loads(detail).get("rto", {}).get("total_s")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None
