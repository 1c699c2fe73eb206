"""The store's side of plan readiness (``model/readiness.py``): the ``dr`` VMs, their newest ready replicas,
the ``dr`` ledger lines, what each centre holds, the last successful drills.

``failover/reads.py`` (``govcloud failover status``) reads them all at once (``readiness_facts``); the
exporter reads them one by one at every scrape, reusing the two that scan big tables (``dr_vms``: tickets
and VMs; ``dr_reservations``: the ledger) while those tables' versions do not change
(``exporter/metrics.py``, ``StoreReads``). The others read small tables: replicas (K per ``dr`` VM) and
the drill runs.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from govcloud.model.readiness import DrVmFact
from govcloud.model.resources import Resources
from govcloud.store import aggregates, runs
from govcloud.store.tables import ledger, replicas, tickets, vms


def dr_tickets(conn: sa.Connection, states: Sequence[str]) -> frozenset[str]:
    """The managed tickets in ``states`` whose plan chose protection ``dr``. The protection is inside the
    plan's JSON: only the plans that contain the string ``"dr"`` at all (any JSON encoding of the value
    ``dr`` does) are fetched and decoded. Depends on the tickets table alone (the exporter reuses it while
    that table's version stays the same)."""
    query = sa.select(tickets.c.id, tickets.c.plan).where(tickets.c.state.in_(list(states)), tickets.c.mode == "managed",
                                                           tickets.c.plan.like('%"dr"%'))
    return frozenset(str(ticket) for ticket, plan in conn.execute(query)
                     if plan and str(json.loads(plan).get("protection", "none")) == "dr")


def dr_vm_rows(conn: sa.Connection, chosen: Iterable[str]) -> list[DrVmFact]:
    """The VM rows of the tickets ``chosen`` (``dr_tickets``), by ticket and index: on SQLite index lookups,
    a few hundred tickets per query; on PostgreSQL one query, whose plan for thousands of tickets is one
    scan of ``vms`` (four queries of 500 were four scans: 120 ms at 100k VMs, issue 16)."""
    ids = sorted(chosen)
    found: list[DrVmFact] = []
    columns = (vms.c.ticket, vms.c.idx, vms.c.name, vms.c.tenant, vms.c.system, vms.c.cloud, vms.c.centre, vms.c.vcpus, vms.c.ram_mb,
               vms.c.disk_gb)
    step = max(len(ids), 1) if conn.dialect.name == "postgresql" else 500
    for start in range(0, len(ids), step):
        query = sa.select(*columns).where(vms.c.ticket.in_(ids[start:start + step])).order_by(vms.c.ticket, vms.c.idx)
        found += map(DrVmFact._make, aggregates.driver_rows(conn, query))  # the driver's tuples: thousands of rows per read
    return found


def dr_vms(conn: sa.Connection, states: Sequence[str]) -> list[DrVmFact]:
    """The VMs of managed tickets in ``states`` whose plan chose protection ``dr``, by ticket and index."""
    return dr_vm_rows(conn, dr_tickets(conn, states))


def dr_reservations(conn: sa.Connection) -> dict[tuple[str, str, str], Resources]:
    """(ticket, cloud, centre) → the sum of the ticket's ``dr`` ledger lines there (reserved or committed)."""
    keys = (ledger.c.ticket, ledger.c.cloud, ledger.c.centre)
    query = sa.select(*keys, sa.func.sum(ledger.c.instances), sa.func.sum(ledger.c.vcpus), sa.func.sum(ledger.c.ram_mb),
                      sa.func.sum(ledger.c.disk_gb)).where(ledger.c.kind == "dr").group_by(*keys)
    return {(str(t), str(c), str(z)): Resources(int(i), int(v), int(r), int(d)) for t, c, z, i, v, r, d in conn.execute(query)}


def held(allocation: Iterable[aggregates.CentreAllocation]) -> dict[tuple[str, str], Resources]:
    """(cloud, centre) → everything the ledger holds there, VM lines and ``dr`` reservations, any state."""
    total: dict[tuple[str, str], Resources] = {}
    for line in allocation:
        key = (line.cloud, line.centre)
        total[key] = total.get(key, Resources()) + line.resources
    return total


def newest_ready(conn: sa.Connection) -> dict[tuple[str, int], datetime.datetime]:
    """(ticket, idx) → ``taken_at`` of the VM's newest ``ready`` replica (one row per VM from the
    ``replicas_by_vm`` index; ``taken_at`` is written in one format, UTC with microseconds, so the
    greatest string is the latest moment)."""
    query = (sa.select(replicas.c.ticket, replicas.c.idx, sa.func.max(replicas.c.taken_at)).where(replicas.c.state == "ready")
             .group_by(replicas.c.ticket, replicas.c.idx))
    return {(str(ticket), int(idx)): moment_of(str(taken)) for ticket, idx, taken in conn.execute(query)}


def replicas_version(conn: sa.Connection) -> tuple[int, str | None]:
    """What ``newest_ready`` depends on, cheaply: the number of ready replicas and the latest moment one
    became ready. A replica made ready raises the second; one pruned (ready → pruning → gone) lowers the
    first unless another was made ready meanwhile, which raises the second. The exporter rereads
    ``newest_ready`` only when this changes (the replicas table keeps no version of its own)."""
    count, latest = conn.execute(sa.select(sa.func.count(), sa.func.max(replicas.c.finished_at)).where(replicas.c.state == "ready")).one()
    return int(count), None if latest is None else str(latest)


def moment_of(iso: str) -> datetime.datetime:
    """A stored timestamp as an aware datetime (a naive one is UTC, as every writer means it)."""
    moment = datetime.datetime.fromisoformat(iso)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


@dataclass(frozen=True)
class ReadinessFacts:
    """Everything ``plan_readiness`` needs from the store, from one snapshot."""

    vms: list[DrVmFact] = field(default_factory=list)
    newest: dict[tuple[str, int], datetime.datetime] = field(default_factory=dict)
    drills: dict[tuple[str, str], datetime.datetime] = field(default_factory=dict)
    reserved: dict[tuple[str, str, str], Resources] = field(default_factory=dict)
    held: dict[tuple[str, str], Resources] = field(default_factory=dict)


def readiness_facts(conn: sa.Connection, states: Sequence[str]) -> ReadinessFacts:
    return ReadinessFacts(dr_vms(conn, states), newest_ready(conn), runs.last_drills(conn), dr_reservations(conn),
                          held(aggregates.centre_allocation(conn)))
