"""Aggregate reads for the exporter: GROUP BY queries that return plain tuples and dataclasses.

The exporter turns govcloud's own state into metrics at every scrape, so what it reads must stay cheap
at 100k VMs and 10k tenants: every function here is one aggregate query (the database sums, counts and
buckets; Python only relabels the few rows that come back). The exporter never sees SQL; this module
never sees prometheus_client.

The big ones read covering indexes (migration 0007: ``vms_by_place``, ``ledger_by_tenant``,
``ledger_by_centre``, ``tickets_by_state_kind``), so that each GROUP BY walks an index in order instead
of sorting the table. Ticket latency histograms are not aggregated here at all: they are counters kept at
each state change (``store/latency.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from govcloud.errors import StoreError
from govcloud.model.resources import Resources
from govcloud.model.states import HOLDING
from govcloud.store.db import READ_ONLY
from govcloud.store.tables import BIG, centre_health, findings, ledger, tickets, vms

if TYPE_CHECKING:
    from govcloud.store.db import Store

LIVE_LEASE_STATES = HOLDING
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


VERSIONED = ("vms", "ledger", "tickets")
_TRIGGERS = tuple(f"{table}_version_{event}" for table in VERSIONED for event in ("insert", "update", "delete"))
GROUPED = ("vms", "ledger")
"""The tables whose triggers also keep their aggregates group by group (migrations 0013, 0014)."""
LOG_LENGTH = 1024
"""Slots of ``version_log``'s ring per table (migrations 0013, 0014)."""
_APPLY = "pending_tables_apply"
"""PostgreSQL's deferred trigger that applies what the others staged, at commit (0014): without it no
version would ever move, so it must be there and enabled like the nine."""


@dataclass(frozen=True)
class TableVersion:
    """A table's state as ``table_versions`` records it: ``version`` is random at every write (0009), ``seq``
    counts the writes and ``groups`` says whether its triggers keep its groups (0013: ``vm_groups``,
    ``ledger_*_groups``, each group stamped with the ``seq`` of the write that last changed it). SQLite
    counts each row written; PostgreSQL each writing transaction, at its commit (0014), so that ``seq`` is
    committed in order there too."""

    version: int
    seq: int
    groups: bool


def table_versions(conn: sa.Connection) -> dict[str, TableVersion] | None:
    """The versions of ``vms``, ``ledger`` and ``tickets`` in ``conn``'s snapshot (migrations 0009, 0014): a
    version that did not change means the table did not. None where they are not kept (another database,
    PostgreSQL before 0014), or when any of the nine triggers is missing (or, PostgreSQL, disabled) — a later
    migration that rebuilds one of these tables drops its triggers with it, and an unchanged version must
    never stand for a changed table. A table's groups are trusted only while each of its triggers still
    writes them (a trigger recreated without them would leave them stale). PostgreSQL also versions
    ``PLACES`` (see ``places``), given only while the three ``vms`` triggers keep it."""
    triggers: dict[str, str] | None
    if conn.dialect.name == "sqlite":
        triggers = _sqlite_triggers(conn)
    elif conn.dialect.name == "postgresql":
        triggers = _postgresql_triggers(conn)
    else:
        return None
    if triggers is None or len(triggers) != len(_TRIGGERS):
        return None

    def kept_by_all(table: str, mark: str) -> bool:
        return all(mark in triggers[f"{table}_version_{event}"] for event in ("insert", "update", "delete"))

    grouped = {table for table in GROUPED if kept_by_all(table, "_groups")}
    # no seq column on SQLite before 0013 (PostgreSQL's table comes with it)
    columns = "name, version, seq" if grouped or conn.dialect.name != "sqlite" else "name, version, 0"
    versions = {str(name): TableVersion(int(version), int(seq), str(name) in grouped)
                for name, version, seq in conn.exec_driver_sql(f"SELECT {columns} FROM table_versions")}
    if not kept_by_all("vms", PLACES):
        versions.pop(PLACES, None)
    return versions if set(VERSIONED) <= set(versions) else None


PLACES = "vm_places"
"""PostgreSQL (0014): a version of what the VM rows say besides their status — which VMs exist, their names,
tenants, systems, places and sizes — that the reconciler's status, address and fault writes leave alone."""


def places(versions: dict[str, TableVersion]) -> TableVersion:
    """The version to key a read of VM rows on that reads only their key, name, tenant, system, cloud, centre
    and sizes: ``PLACES`` where it is kept, else the whole table's."""
    return versions.get(PLACES, versions["vms"])


def _sqlite_triggers(conn: sa.Connection) -> dict[str, str]:
    """Each of the nine triggers found → its SQL."""
    names = ", ".join(f"'{name}'" for name in _TRIGGERS)
    return {str(name): str(sql) for name, sql in
            conn.exec_driver_sql(f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN ({names})")}


def _postgresql_triggers(conn: sa.Connection) -> dict[str, str] | None:
    """Each of the nine triggers found enabled on its table → its function's source; None without the
    enabled trigger that applies what they stage at commit (0014)."""
    names = ", ".join(f"'{name}'" for name in (*_TRIGGERS, _APPLY))
    found = conn.exec_driver_sql(
        "SELECT c.relname, t.tgname, p.prosrc FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal AND t.tgenabled IN ('O', 'A')"
        f" AND pg_table_is_visible(c.oid) AND t.tgname IN ({names})").all()
    if not any(table == "pending_tables" and name == _APPLY for table, name, _ in found):
        return None
    return {str(name): str(source) for table, name, source in found if str(name).startswith(f"{table}_version_")}


def descends(conn: sa.Connection, table: str, seen: TableVersion) -> bool:
    """Whether ``conn``'s database went through the state of ``table`` that was read at ``seen``: its
    write ``seen.seq`` is in ``version_log`` with the same random version. Only then are the groups
    stamped after ``seen.seq`` all that changed since (a store restored from a backup, or another
    database, may count more writes along another history)."""
    found = conn.exec_driver_sql(_marks(conn, "SELECT 1 FROM version_log WHERE name = ? AND slot = ? AND seq = ? AND version = ?"),
                                 (table, seen.seq % LOG_LENGTH, seen.seq, seen.version)).first()
    return found is not None


def _marks(conn: sa.Connection, sql: str) -> str:
    """``sql`` written with sqlite3's ``?`` parameters, in the driver's own style (psycopg2: ``%s``)."""
    return sql if conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s")


def driver_rows(conn: sa.Connection, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``query`` as the database driver returns them (plain tuples), in ``conn``'s transaction.

    For the two results of tens of thousands of rows: SQLAlchemy's ``Row`` objects cost a third of the
    query's time, and ``Row.__eq__`` is Python (the exporter compares each result with the previous
    scrape's). Both sqlite3 and psycopg2 return tuples from ``fetchall``."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})  # an IN list: one parameter each
    params: Any = compiled.params
    if compiled.positiontup:  # sqlite3's qmark style: parameters in order; psycopg2 takes the dict
        params = tuple(compiled.params[name] for name in compiled.positiontup)
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        cursor.execute(str(compiled), params)
        return list(cursor.fetchall())
    except Exception as exc:  # the driver's own errors: the callers expect SQLAlchemy's (snapshot() wraps them)
        raise sa.exc.DBAPIError.instance(str(compiled), params, exc, Exception) from exc
    finally:
        cursor.close()


def _sums() -> list[Any]:
    """The four ledger sums as integers on both databases (PostgreSQL's SUM of a BIGINT is NUMERIC)."""
    return [sa.cast(sa.func.coalesce(sa.func.sum(column), 0), BIG)
            for column in (ledger.c.instances, ledger.c.vcpus, ledger.c.ram_mb, ledger.c.disk_gb)]


def _resources(row: Sequence[Any]) -> Resources:
    return Resources(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


UsageRow = tuple[str, str, str, int, int, int, int]
"""tenant, cloud, ledger state, instances, vcpus, ram_mb, disk_gb, as a plain tuple: at 10k tenants a
``Resources`` object per row costs more than the SQL that sums them."""


def tenant_usage(conn: sa.Connection, *, grouped: bool = False) -> Sequence[UsageRow]:
    """Sums of the ledger's ``vm`` lines per tenant × cloud × state, as ``quota show`` counts them (DR room
    is the centre's, not the tenant's), sorted. Read from the ``ledger_by_tenant`` covering index, or
    where the triggers keep them (``grouped``, migration 0013) from ``ledger_tenant_groups``."""
    if grouped:
        return cast("Sequence[UsageRow]", _raw(conn, f"SELECT tenant, cloud, state, {_SUMS} FROM ledger_tenant_groups"
                                                     " WHERE lines > 0 ORDER BY tenant, cloud, state"))
    keys = (ledger.c.tenant, ledger.c.cloud, ledger.c.state)
    query = sa.select(*keys, *_sums()).where(ledger.c.kind == "vm").group_by(*keys).order_by(*keys)
    return cast("Sequence[UsageRow]", driver_rows(conn, query))


@dataclass(frozen=True)
class CentreAllocation:
    """Resources held in one centre by ledger lines of one kind (``vm`` | ``dr``) and state."""

    cloud: str
    centre: str
    kind: str
    state: str
    resources: Resources


def centre_allocation(conn: sa.Connection, *, grouped: bool = False) -> list[CentreAllocation]:
    """Ledger sums per centre, DR reservations apart from the VMs' own lines (``grouped``: from
    ``ledger_centre_groups``, a few hundred rows, migration 0013)."""
    if grouped:
        rows = _raw(conn, f"SELECT cloud, centre, kind, state, {_SUMS} FROM ledger_centre_groups"
                          " WHERE lines > 0 ORDER BY cloud, centre, kind, state")
    else:
        keys = (ledger.c.cloud, ledger.c.centre, ledger.c.kind, ledger.c.state)
        rows = [tuple(r) for r in conn.execute(sa.select(*keys, *_sums()).group_by(*keys).order_by(*keys)).all()]
    return [CentreAllocation(r[0], r[1], r[2], r[3], _resources(r[4:])) for r in rows]


VmCount = tuple[str, str, str, str, int]
"""cloud, centre, tenant, status, number of VMs."""


def vm_counts(conn: sa.Connection, *, grouped: bool = False) -> Sequence[VmCount]:
    """VMs per cloud × centre × tenant × status, in that order (the ``vms_by_place`` covering index, or
    ``vm_groups`` where the triggers keep it: ``grouped``, migration 0013)."""
    if grouped:
        return cast("Sequence[VmCount]", _raw(conn, "SELECT cloud, centre, tenant, status, n FROM vm_groups WHERE n > 0"
                                                    " ORDER BY cloud, centre, tenant, status"))
    keys = (vms.c.cloud, vms.c.centre, vms.c.tenant, vms.c.status)
    query = sa.select(*keys, sa.func.count()).group_by(*keys).order_by(*keys)
    return cast("Sequence[VmCount]", driver_rows(conn, query))


UsageChange = tuple[str, str, str, int, int, int, int, int]
"""tenant, cloud, ledger state, lines, then the four sums: a group with no lines left is gone."""


def vm_count_changes(conn: sa.Connection, since: int) -> list[VmCount]:
    """The groups of ``vm_groups`` changed by the writes after ``since``, in key order; a count of 0 is a
    group that is gone. Reads the ``seq`` index: as many rows as groups changed."""
    return cast("list[VmCount]", _raw(conn, "SELECT cloud, centre, tenant, status, n FROM vm_groups WHERE seq > ?"
                                            " ORDER BY cloud, centre, tenant, status", (since,)))


def usage_changes(conn: sa.Connection, since: int) -> list[UsageChange]:
    """The groups of ``ledger_tenant_groups`` changed by the writes after ``since``, in key order."""
    return cast("list[UsageChange]", _raw(conn, f"SELECT tenant, cloud, state, lines, {_SUMS} FROM ledger_tenant_groups"
                                                f" WHERE seq > ? ORDER BY tenant, cloud, state", (since,)))


_SUMS = "instances, vcpus, ram_mb, disk_gb"


def _raw(conn: sa.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query on the group tables (written for both databases, ``?`` parameters) as the driver's
    tuples (see ``driver_rows``). PostgreSQL's group keys are in the C collation (0014): sorted as Python
    sorts them."""
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    sql = _marks(conn, sql)
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    except Exception as exc:  # the callers expect SQLAlchemy's errors (snapshot() wraps them)
        raise sa.exc.DBAPIError.instance(sql, params, exc, Exception) from exc
    finally:
        cursor.close()


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


def waiting_for_failover(conn: sa.Connection, states: Sequence[str]) -> list[tuple[str, str, str, int]]:
    """(cloud, centre, protection, count) of managed tickets' VMs (tickets in ``states``) in centres
    recorded down: protected ones are what a failover would move. Costs one tiny query while every
    centre is up; the plans (JSON, for the protection) are read only for tickets in a down centre."""
    down = [(r[0], r[1]) for r in conn.execute(sa.select(centre_health.c.cloud, centre_health.c.centre)
                                                .where(centre_health.c.state == "down")).all()]
    if not down:
        return []
    in_down = sa.tuple_(vms.c.cloud, vms.c.centre).in_(down)
    query = (sa.select(vms.c.cloud, vms.c.centre, tickets.c.plan, sa.func.count())
             .join(tickets, tickets.c.id == vms.c.ticket)
             .where(in_down, tickets.c.state.in_(states), tickets.c.mode == "managed")
             .group_by(vms.c.cloud, vms.c.centre, tickets.c.id, tickets.c.plan))
    counts: dict[tuple[str, str, str], int] = {}
    for cloud, centre, plan, count in conn.execute(query).all():
        protection = str((json.loads(plan) if plan else {}).get("protection", "none"))
        counts[(cloud, centre, protection)] = counts.get((cloud, centre, protection), 0) + int(count)
    return sorted((*key, n) for key, n in counts.items())


def finding_counts(conn: sa.Connection) -> list[tuple[str, str, int]]:
    """(cloud, kind, count) of the current reconcile findings."""
    query = sa.select(findings.c.cloud, findings.c.kind, sa.func.count()).group_by(findings.c.cloud, findings.c.kind)
    return [(r[0], r[1], int(r[2])) for r in conn.execute(query).all()]
