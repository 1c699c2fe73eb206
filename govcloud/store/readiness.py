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


def dr_vms(conn: sa.Connection, states: Sequence[str]) -> list[DrVmFact]:
    """The VMs of managed tickets in ``states`` whose plan chose protection ``dr``, by ticket and index.

    The protection is inside the plan's JSON: only plans that contain the string ``"dr"`` at all are
    fetched and decoded (any JSON encoding of the value ``dr`` contains it), not every live ticket's."""
    query = (sa.select(vms.c.ticket, vms.c.idx, vms.c.name, vms.c.tenant, vms.c.system, vms.c.cloud, vms.c.centre, vms.c.vcpus,
                       vms.c.ram_mb, vms.c.disk_gb, tickets.c.plan)
             .join(tickets, tickets.c.id == vms.c.ticket)
             .where(tickets.c.state.in_(list(states)), tickets.c.mode == "managed", tickets.c.plan.like('%"dr"%'))
             .order_by(vms.c.ticket, vms.c.idx))
    found = []
    for row in conn.execute(query):
        if str((json.loads(row.plan) if row.plan else {}).get("protection", "none")) != "dr":
            continue
        found.append(DrVmFact(row.ticket, int(row.idx), row.name, row.tenant, row.system, row.cloud, row.centre,
                              Resources(1, int(row.vcpus), int(row.ram_mb), int(row.disk_gb))))
    return found


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
    """(ticket, idx) → ``taken_at`` of the VM's newest ``ready`` replica."""
    query = sa.select(replicas.c.ticket, replicas.c.idx, replicas.c.taken_at).where(replicas.c.state == "ready")
    found: dict[tuple[str, int], datetime.datetime] = {}
    for ticket, idx, taken in conn.execute(query):
        key, moment = (str(ticket), int(idx)), moment_of(str(taken))
        if key not in found or moment > found[key]:
            found[key] = moment
    return found


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
