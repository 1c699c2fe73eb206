"""Aggregate reads for the exporter: GROUP BY queries that return plain tuples and dataclasses.

The exporter turns govcloud's own state into metrics at every scrape, so what it reads must stay cheap
at 100k VMs and 10k tenants: every function here is one aggregate query (the database sums, counts and
buckets; Python only relabels the few rows that come back). The exporter never sees SQL; this module
never sees prometheus_client.

Timestamps are stored as ISO 8601 text. Durations between two of them are computed in SQL per dialect
(``julianday`` on SQLite, ``EXTRACT(EPOCH …)`` on PostgreSQL) so that histograms are bucketed by the
database in the same single pass over ``tickets`` that counts them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from govcloud.errors import StoreError
from govcloud.model.resources import Resources
from govcloud.store.db import READ_ONLY
from govcloud.store.tables import config_results, findings, ledger, tickets, vms

if TYPE_CHECKING:
    from govcloud.store.db import Store

LIVE_LEASE_STATES = ("approved", "provisioning", "configuring", "config-failed", "active")
"""States in which a create ticket's lease still holds resources (its expiry matters)."""


@contextmanager
def snapshot(store: Store) -> Iterator[sa.Connection]:
    """One read transaction for a whole scrape, so every number comes from the same moment.

    PostgreSQL: REPEATABLE READ, READ ONLY (one snapshot, no locks taken). SQLite: a deferred
    transaction (``READ_ONLY`` option, db.py) reads one WAL snapshot without taking the write lock, so
    writers never queue behind a scrape.
    """
    options: dict[str, Any] = {READ_ONLY: True}
    if store.dialect == "postgresql":
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    try:
        with store.engine.connect().execution_options(**options) as conn, conn.begin():
            yield conn
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot read the state store {store.describe()}: {exc}") from exc


def _sums() -> list[Any]:
    return [sa.func.sum(ledger.c.instances), sa.func.sum(ledger.c.vcpus), sa.func.sum(ledger.c.ram_mb), sa.func.sum(ledger.c.disk_gb)]


def _resources(row: Sequence[Any]) -> Resources:
    return Resources(int(row[0] or 0), int(row[1] or 0), int(row[2] or 0), int(row[3] or 0))


@dataclass(frozen=True)
class TenantUsage:
    """What one tenant holds in one cloud, from the ledger's ``vm`` lines (DR room is the centre's)."""

    tenant: str
    cloud: str
    reserved: Resources
    committed: Resources


def tenant_usage(conn: sa.Connection) -> list[TenantUsage]:
    """Reserved and committed per tenant × cloud, as ``quota show`` computes them (kind ``vm`` only)."""
    query = (sa.select(ledger.c.tenant, ledger.c.cloud, ledger.c.state, *_sums()).where(ledger.c.kind == "vm")
             .group_by(ledger.c.tenant, ledger.c.cloud, ledger.c.state))
    found: dict[tuple[str, str], dict[str, Resources]] = {}
    for row in conn.execute(query).all():
        found.setdefault((row[0], row[1]), {})[row[2]] = _resources(row[3:])
    return [TenantUsage(tenant, cloud, states.get("reserved", Resources()), states.get("committed", Resources()))
            for (tenant, cloud), states in sorted(found.items())]


@dataclass(frozen=True)
class CentreAllocation:
    """Resources held in one centre by ledger lines of one kind (``vm`` | ``dr``) and state."""

    cloud: str
    centre: str
    kind: str
    state: str
    resources: Resources


def centre_allocation(conn: sa.Connection) -> list[CentreAllocation]:
    """Ledger sums per centre, DR reservations apart from the VMs' own lines."""
    keys = (ledger.c.cloud, ledger.c.centre, ledger.c.kind, ledger.c.state)
    query = sa.select(*keys, *_sums()).group_by(*keys).order_by(*keys)
    return [CentreAllocation(r[0], r[1], r[2], r[3], _resources(r[4:])) for r in conn.execute(query).all()]


def vm_counts(conn: sa.Connection) -> list[tuple[str, str, str, str, int]]:
    """(cloud, centre, tenant, status, count) over the ``vms`` table."""
    keys = (vms.c.cloud, vms.c.centre, vms.c.tenant, vms.c.status)
    query = sa.select(*keys, sa.func.count()).group_by(*keys)
    return [(r[0], r[1], r[2], r[3], int(r[4])) for r in conn.execute(query).all()]


def ticket_counts(conn: sa.Connection) -> list[tuple[str, str, int]]:
    """(state, kind, count) over all stored tickets."""
    query = sa.select(tickets.c.state, tickets.c.kind, sa.func.count()).group_by(tickets.c.state, tickets.c.kind)
    return [(r[0], r[1], int(r[2])) for r in conn.execute(query).all()]


def oldest_change(conn: sa.Connection, states: Sequence[str]) -> list[tuple[str, str]]:
    """(state, oldest ``updated_at``) per state: every state move sets ``updated_at``, so this is about
    when the longest-waiting ticket of each state entered it (a plan change of a resize also sets it)."""
    query = (sa.select(tickets.c.state, sa.func.min(tickets.c.updated_at)).where(tickets.c.state.in_(list(states)))
             .group_by(tickets.c.state))
    return [(r[0], r[1]) for r in conn.execute(query).all()]


def leases(conn: sa.Connection, *, today: str, horizon: str) -> list[tuple[str, int, int]]:
    """(tenant, expiring, expired) for create tickets still holding resources: ``expiring`` ends
    between ``today`` and ``horizon`` (YYYY-MM-DD, inclusive), ``expired`` ended before ``today``.
    Dates compare as text because the column is ISO ``YYYY-MM-DD``."""
    expires = tickets.c.expires
    expiring = sa.func.sum(sa.case((sa.and_(expires >= today, expires <= horizon), 1), else_=0))
    expired = sa.func.sum(sa.case((expires < today, 1), else_=0))
    query = (sa.select(tickets.c.tenant, expiring, expired)
             .where(tickets.c.kind == "create", tickets.c.state.in_(LIVE_LEASE_STATES), expires.is_not(None), expires <= horizon)
             .group_by(tickets.c.tenant).order_by(tickets.c.tenant))
    return [(r[0], int(r[1]), int(r[2])) for r in conn.execute(query).all()]


def finding_counts(conn: sa.Connection) -> list[tuple[str, str, int]]:
    """(cloud, kind, count) of the current reconcile findings."""
    query = sa.select(findings.c.cloud, findings.c.kind, sa.func.count()).group_by(findings.c.cloud, findings.c.kind)
    return [(r[0], r[1], int(r[2])) for r in conn.execute(query).all()]


@dataclass(frozen=True)
class Duration:
    """A ticket latency: seconds from column ``start`` to column ``end`` of the same ticket."""

    name: str
    start: str
    end: str
    configured_only: bool = False
    """Only tickets whose configuration ran (they have rows in ``config_results``)."""


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts of one duration for one ticket kind (``counts[i]``: durations ≤ ``bounds[i]``)."""

    name: str
    kind: str
    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    count: int
    total: float


def _epoch(dialect: str, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """Seconds since the epoch of an ISO timestamp column (NULL stays NULL)."""
    if dialect == "postgresql":
        return sa.cast(sa.extract("epoch", sa.cast(column, postgresql.TIMESTAMP(timezone=True))), sa.Numeric)
    return sa.func.julianday(column) * 86400.0


def duration_histograms(conn: sa.Connection, specs: Sequence[tuple[Duration, Sequence[float]]]) -> list[Histogram]:
    """Every histogram of ``specs`` per ticket kind, in one scan of ``tickets`` (GROUP BY kind).

    Each timestamp column is converted once per ticket (a MATERIALIZED CTE: as a plain subquery SQLite
    flattens it and converts again inside every bucket's CASE, 10x slower at 20k tickets). Durations
    are rounded to the millisecond: julianday's doubles are off by tens of microseconds, which would put
    a duration of exactly 1800 s above the 1800 s bucket on SQLite only. Negative durations (a clock
    stepped back between two writes) count as 0 rather than vanish."""
    dialect = conn.dialect.name
    configured = sa.select(config_results.c.ticket).distinct().subquery("configured")
    names = sorted({c for spec, _ in specs for c in (spec.start, spec.end)})
    epochs = (sa.select(tickets.c.kind, configured.c.ticket.is_not(None).label("configured"),
                        *[_epoch(dialect, tickets.c[name]).label(name) for name in names])
              .select_from(tickets.outerjoin(configured, configured.c.ticket == tickets.c.id))
              .cte("e").prefix_with("MATERIALIZED"))
    columns: list[Any] = [epochs.c.kind.label("kind")]
    for i, (spec, _) in enumerate(specs):
        seconds = sa.func.round(epochs.c[spec.end] - epochs.c[spec.start], 3)
        floor = sa.case((seconds < 0, 0.0), else_=seconds)  # not GREATEST: PostgreSQL's ignores NULL (a missing timestamp)
        columns.append((sa.case((epochs.c.configured, floor), else_=None) if spec.configured_only else floor).label(f"d{i}"))
    inner = sa.select(*columns).cte("d").prefix_with("MATERIALIZED")
    aggregates: list[Any] = [inner.c.kind]
    for i, (_, bounds) in enumerate(specs):
        d = inner.c[f"d{i}"]
        aggregates += [sa.func.count(d), sa.func.sum(d)]
        aggregates += [sa.func.sum(sa.case((d <= bound, 1), else_=0)) for bound in bounds]
    result: list[Histogram] = []
    for row in conn.execute(sa.select(*aggregates).group_by(inner.c.kind).order_by(inner.c.kind)).all():
        at = 1
        for spec, bounds in specs:
            count, total = int(row[at]), float(row[at + 1] or 0.0)
            counts = tuple(int(v or 0) for v in row[at + 2: at + 2 + len(bounds)])
            at += 2 + len(bounds)
            result.append(Histogram(spec.name, row[0], tuple(float(b) for b in bounds), counts, count, total))
    return result
