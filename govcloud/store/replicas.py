"""Replicas of ``dr`` VMs: one row per snapshot, from the moment it is asked for until its images are gone.

``failover/replicate.py`` writes them step by step (``taking`` → ``copying`` → ``ready``, or ``failed``;
``pruning`` while the images of a replica beyond the kept ones are being deleted), so that a run that
dies half-way leaves rows naming every image it made, and the next run deletes them. ``dr replicas`` and
the exporter read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from govcloud.store.tables import replicas

STATES = ("taking", "copying", "ready", "failed", "pruning")


@dataclass(frozen=True)
class ReplicaRow:
    """One replica: a snapshot of a VM's server in its region and the copy in the DR region."""

    id: str
    ticket: str
    idx: int
    vm: str
    tenant: str
    system: str
    cloud: str
    server_id: str
    source_region: str
    dr_region: str
    taken_at: str
    state: str
    source_image: str | None = None
    dr_image: str | None = None
    finished_at: str | None = None
    size: int | None = None
    checksum: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def insert(conn: sa.Connection, row: ReplicaRow) -> None:
    conn.execute(replicas.insert().values(**row.__dict__))


def update(conn: sa.Connection, replica_id: str, **fields: Any) -> None:
    conn.execute(replicas.update().where(replicas.c.id == replica_id).values(**fields))


def delete(conn: sa.Connection, replica_id: str) -> None:
    conn.execute(replicas.delete().where(replicas.c.id == replica_id))


def listing(conn: sa.Connection, *, tenants: Sequence[str] | None = None, systems: Sequence[str] | None = None,
            states: Sequence[str] | None = None) -> list[ReplicaRow]:
    """Replicas, oldest first per VM; narrowed to ``tenants``, ``systems`` and ``states`` when given."""
    query = sa.select(replicas).order_by(replicas.c.vm, replicas.c.taken_at, replicas.c.id)
    if tenants is not None:
        query = query.where(replicas.c.tenant.in_(list(tenants)))
    if systems is not None:
        query = query.where(replicas.c.system.in_(list(systems)))
    if states is not None:
        query = query.where(replicas.c.state.in_(list(states)))
    return [ReplicaRow(**dict(r._mapping)) for r in conn.execute(query)]


def of_vm(conn: sa.Connection, ticket: str, idx: int) -> list[ReplicaRow]:
    """One VM's replicas, oldest first."""
    query = sa.select(replicas).where(replicas.c.ticket == ticket, replicas.c.idx == idx).order_by(replicas.c.taken_at, replicas.c.id)
    return [ReplicaRow(**dict(r._mapping)) for r in conn.execute(query)]
