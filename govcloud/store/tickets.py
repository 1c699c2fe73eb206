"""Ticket rows, the quota ledger and the VM records, in store terms (the state machine itself is
``model/states.py``; ``move`` refuses a move it does not allow).

State changes are compare-and-set (``UPDATE … WHERE state = :expected``) so two processes racing on
one ticket cannot both move it; approvals take the ``quota`` lock row first so that reading the
ledger, checking and reserving happen as one serialised step (50 racing approvals never
over-allocate, on SQLite or PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from govcloud.errors import GovcloudError, NotFound
from govcloud.model.history import GroupKey
from govcloud.model.ledger import LedgerLine
from govcloud.model.resources import Resources
from govcloud.model.states import OPEN, allowed
from govcloud.store import latency, usage_history
from govcloud.store.tables import config_results, ledger, locks, quota_overrides, tickets, vms


class StaleState(GovcloudError):
    """The ticket moved under us (another process acted first); re-read and decide again."""


@dataclass(frozen=True)
class TicketRow:
    """A stored ticket."""

    id: str
    tenant: str
    system: str
    kind: str
    state: str
    content_hash: str
    source: str
    source_name: str
    submitted_by: str
    submitted_at: str
    updated_at: str
    approved_by: str | None = None
    approved_at: str | None = None
    approval_rule: str | None = None
    active_at: str | None = None
    reason: str | None = None
    plan: dict[str, Any] | None = None
    attempts: int = 0
    expires: str | None = None
    provision_started_at: str | None = None
    provisioned_at: str | None = None
    lease_warned_at: str | None = None
    mode: str = "managed"

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data.pop("source")
        return data


def _row(row: Any) -> TicketRow:
    data = dict(row._mapping)
    data["plan"] = json.loads(data["plan"]) if data.get("plan") else None
    return TicketRow(**data)


def get(conn: sa.Connection, ticket_id: str) -> TicketRow | None:
    row = conn.execute(sa.select(tickets).where(tickets.c.id == ticket_id)).one_or_none()
    return _row(row) if row else None


def require(conn: sa.Connection, ticket_id: str) -> TicketRow:
    """The ticket, or NotFound naming it (the message the CLI shows)."""
    row = get(conn, ticket_id)
    if row is None:
        raise NotFound(f"no ticket '{ticket_id}' (see `govcloud ticket list`)")
    return row


def listing(conn: sa.Connection, *, tenants: Sequence[str] | None = None, states: Sequence[str] | None = None) -> list[TicketRow]:
    query = sa.select(tickets).order_by(tickets.c.submitted_at, tickets.c.id)
    if tenants is not None:
        query = query.where(tickets.c.tenant.in_(list(tenants)))
    if states:
        query = query.where(tickets.c.state.in_(list(states)))
    return [_row(r) for r in conn.execute(query)]


def states(conn: sa.Connection) -> dict[str, str]:
    """Every stored ticket's state, by id (what reconcile needs to tell an orphan from a live VM)."""
    return {r.id: r.state for r in conn.execute(sa.select(tickets.c.id, tickets.c.state))}


def modes(conn: sa.Connection) -> dict[str, str]:
    """Tickets that are not ``managed`` (adopted, observe-only), by id."""
    return {r.id: r.mode for r in conn.execute(sa.select(tickets.c.id, tickets.c.mode).where(tickets.c.mode != "managed"))}


def set_fields(conn: sa.Connection, ticket_id: str, **fields: Any) -> None:
    """Set bookkeeping columns that are not part of the state machine (lease end, warnings)."""
    conn.execute(tickets.update().where(tickets.c.id == ticket_id).values(**fields))


def open_with_hash(conn: sa.Connection, content_hash: str) -> TicketRow | None:
    row = conn.execute(sa.select(tickets).where(tickets.c.content_hash == content_hash, tickets.c.state.in_(OPEN))).first()
    return _row(row) if row else None


def insert(conn: sa.Connection, row: TicketRow) -> None:
    values = dict(row.__dict__)
    values["plan"] = json.dumps(row.plan, ensure_ascii=False) if row.plan else None
    conn.execute(tickets.insert().values(**values))


def move(conn: sa.Connection, ticket_id: str, expected: str, new: str, *, now: str, **fields: Any) -> None:
    """Compare-and-set a ticket's state; raises StaleState when it is no longer ``expected``. A move that
    ends a latency (approval, activation, provisioning, configuration) counts it in the same transaction."""
    if not allowed(expected, new):
        raise GovcloudError(f"ticket {ticket_id}: no transition {expected} → {new}")
    if "plan" in fields and fields["plan"] is not None:
        fields["plan"] = json.dumps(fields["plan"], ensure_ascii=False)
    before = None
    if latency.needs_observation(expected, new, fields):  # the timestamps as they were, locked until commit
        columns = [tickets.c.kind, *(tickets.c[name] for name in latency.MOVE_COLUMNS)]
        before = conn.execute(sa.select(*columns).where(tickets.c.id == ticket_id).with_for_update()).one_or_none()
    result = conn.execute(tickets.update().where(tickets.c.id == ticket_id, tickets.c.state == expected)
                          .values(state=new, updated_at=now, **fields))
    if result.rowcount != 1:
        raise StaleState(f"ticket {ticket_id} is no longer {expected}")
    if before is not None:
        latency.observe_move(conn, before.kind, dict(before._mapping), expected, new, now, fields)


def set_plan(conn: sa.Connection, ticket_id: str, plan: dict[str, Any], *, now: str) -> None:
    """Replace a ticket's plan (a resize changed its VMs' sizes)."""
    conn.execute(tickets.update().where(tickets.c.id == ticket_id).values(plan=json.dumps(plan, ensure_ascii=False), updated_at=now))


def lock_quota(conn: sa.Connection) -> None:
    """Serialise every ledger change (a row lock on PostgreSQL; SQLite's BEGIN IMMEDIATE already did)."""
    conn.execute(sa.select(locks.c.name).where(locks.c.name == "quota").with_for_update()).one()


def _amount(row: Any) -> Resources:
    """The four amounts of a ledger or quota-override row (both tables name them alike)."""
    return Resources(row.instances, row.vcpus, row.ram_mb, row.disk_gb)


def ledger_lines(conn: sa.Connection, *, ticket: str | None = None) -> list[LedgerLine]:
    query = sa.select(ledger)
    if ticket is not None:
        query = query.where(ledger.c.ticket == ticket)
    return [LedgerLine(r.ticket, r.tenant, r.system, r.cloud, r.centre, _amount(r),
                       r.state, r.kind) for r in conn.execute(query)]


def reserve(conn: sa.Connection, lines: Iterable[LedgerLine]) -> None:
    rows = [{"ticket": line.ticket, "tenant": line.tenant, "system": line.system, "cloud": line.cloud, "centre": line.centre,
             "kind": line.kind, "state": "reserved", **line.resources.as_dict()} for line in lines]
    if rows:
        conn.execute(ledger.insert(), rows)


def commit(conn: sa.Connection, ticket_id: str, *, now: str) -> None:
    """Reserved → committed: the VMs exist. The usage history gets its change point at ``now``."""
    conn.execute(ledger.update().where(ledger.c.ticket == ticket_id).values(state="committed"))
    usage_history.refresh(conn, usage_history.ledger_keys(conn, ticket_id), at=now)


def release(conn: sa.Connection, ticket_id: str, *, now: str) -> int:
    """Give a ticket's quota back (rejection, failure, retirement); what was committed ends at ``now`` in
    the usage history."""
    keys = usage_history.ledger_keys(conn, ticket_id)
    released = int(conn.execute(ledger.delete().where(ledger.c.ticket == ticket_id)).rowcount)
    usage_history.refresh(conn, keys, at=now)
    return released


def move_allocation(conn: sa.Connection, ticket_id: str, cloud: str, source: str, target: str, size: Resources, *, now: str) -> None:
    """A VM of the ticket now runs in ``target``, not ``source``: move its share of the ticket's VM
    lines (the tenant's quota is per cloud and does not change; the centres' allocation does).

    Call under ``lock_quota``. The source line shrinks (and goes when empty); the target gets a line
    of the same state, or its existing one grows.
    """
    where = (ledger.c.ticket == ticket_id, ledger.c.cloud == cloud, ledger.c.kind == "vm")
    line = conn.execute(sa.select(ledger).where(*where, ledger.c.centre == source).order_by(ledger.c.id)).first()
    if line is None:
        return  # nothing recorded there (an adopted VM, or already moved): nothing to move
    left = _amount(line) - size
    if all(v <= 0 for v in left.as_dict().values()):
        conn.execute(ledger.delete().where(ledger.c.id == line.id))
    else:
        conn.execute(ledger.update().where(ledger.c.id == line.id).values(**left.clamped().as_dict()))
    there = conn.execute(sa.select(ledger).where(*where, ledger.c.centre == target, ledger.c.state == line.state)).first()
    if there is None:
        conn.execute(ledger.insert().values(ticket=ticket_id, tenant=line.tenant, system=line.system, cloud=cloud, centre=target,
                                            kind="vm", state=line.state, **size.as_dict()))
    else:
        grown = _amount(there) + size
        conn.execute(ledger.update().where(ledger.c.id == there.id).values(**grown.as_dict()))
    usage_history.refresh(conn, {GroupKey(line.tenant, line.system, cloud, centre, "vm") for centre in (source, target)}, at=now)


def claim_reservation(conn: sa.Connection, ticket_id: str, cloud: str, centre: str, size: Resources, *, now: str) -> bool:
    """A VM of the ticket was rebuilt in its cloud's DR centre (DR activation): its share of the ticket's
    ``dr`` line there is used up — the line shrinks by ``size`` (and goes when empty). Call under
    ``lock_quota``, beside ``move_allocation`` into the same centre: the centre's total stays what the
    reservation made it, the VM line now holds what the reservation held. False when the ticket has no
    ``dr`` line there (nothing was reserved: the VM line alone records the VM)."""
    where = (ledger.c.ticket == ticket_id, ledger.c.cloud == cloud, ledger.c.centre == centre, ledger.c.kind == "dr")
    line = conn.execute(sa.select(ledger).where(*where).order_by(ledger.c.id)).first()
    if line is None:
        return False
    left = _amount(line) - size
    if all(v <= 0 for v in left.as_dict().values()):
        conn.execute(ledger.delete().where(ledger.c.id == line.id))
    else:
        conn.execute(ledger.update().where(ledger.c.id == line.id).values(**left.clamped().as_dict()))
    usage_history.refresh(conn, {GroupKey(line.tenant, line.system, cloud, centre, "dr")}, at=now)
    return True


def restore_reservation(conn: sa.Connection, ticket_id: str, cloud: str, centre: str, size: Resources, *, now: str) -> bool:
    """A VM of the ticket went back from its cloud's DR centre to its home (``dr return``): what
    ``claim_reservation`` used up of the ticket's ``dr`` line there is held again — the line grows by
    ``size`` (or is made, with the state of the ticket's other lines). Call under ``lock_quota``, after
    ``move_allocation`` out of that centre. False when the ticket has no ledger line left to name its
    tenant and system (retired meanwhile)."""
    where = (ledger.c.ticket == ticket_id, ledger.c.cloud == cloud)
    known = conn.execute(sa.select(ledger).where(*where).order_by(ledger.c.id)).first()
    if known is None:
        return False
    line = conn.execute(sa.select(ledger).where(*where, ledger.c.centre == centre, ledger.c.kind == "dr").order_by(ledger.c.id)).first()
    if line is None:
        conn.execute(ledger.insert().values(ticket=ticket_id, tenant=known.tenant, system=known.system, cloud=cloud, centre=centre,
                                            kind="dr", state=known.state, **size.as_dict()))
    else:
        conn.execute(ledger.update().where(ledger.c.id == line.id).values(**(_amount(line) + size).as_dict()))
    usage_history.refresh(conn, {GroupKey(known.tenant, known.system, cloud, centre, "dr")}, at=now)
    return True


@dataclass(frozen=True)
class VmRow:
    """What govcloud knows of one VM of a ticket."""

    ticket: str
    idx: int
    name: str
    tenant: str
    system: str
    cloud: str
    region: str
    centre: str
    zone: str
    flavor: str | None
    vcpus: int
    ram_mb: int
    disk_gb: int
    status: str
    updated_at: str
    server_id: str | None = None
    address: str | None = None
    fault: str | None = None


def upsert_vm(conn: sa.Connection, vm: VmRow) -> None:
    values = dict(vm.__dict__)
    updated = conn.execute(vms.update().where(vms.c.ticket == vm.ticket, vms.c.idx == vm.idx).values(**values))
    if updated.rowcount == 0:
        conn.execute(vms.insert().values(**values))


def vms_of(conn: sa.Connection, ticket_id: str | None = None) -> list[VmRow]:
    query = sa.select(vms).order_by(vms.c.ticket, vms.c.idx)
    if ticket_id is not None:
        query = query.where(vms.c.ticket == ticket_id)
    return [VmRow(**dict(r._mapping)) for r in conn.execute(query)]


def delete_vm(conn: sa.Connection, ticket_id: str, idx: int) -> None:
    conn.execute(vms.delete().where(vms.c.ticket == ticket_id, vms.c.idx == idx))


def overrides(conn: sa.Connection) -> dict[tuple[str, str], tuple[Resources, str]]:
    """Approved quota changes: (tenant, cloud) → (limit, ticket)."""
    return {(r.tenant, r.cloud): (_amount(r), r.ticket)
            for r in conn.execute(sa.select(quota_overrides))}


def set_override(conn: sa.Connection, tenant: str, cloud: str, limit: Resources, *, ticket: str, now: str) -> None:
    conn.execute(quota_overrides.delete().where(quota_overrides.c.tenant == tenant, quota_overrides.c.cloud == cloud))
    conn.execute(quota_overrides.insert().values(tenant=tenant, cloud=cloud, ticket=ticket, updated_at=now, **limit.as_dict()))
    usage_history.record_quota(conn, tenant, cloud, limit, at=now)


@dataclass(frozen=True)
class ConfigResult:
    """The newest configuration outcome of one VM."""

    ticket: str
    vm: str
    run: str
    status: str
    changed: int
    failures: tuple[str, ...]
    at: str


def record_config(conn: sa.Connection, result: ConfigResult) -> None:
    conn.execute(config_results.delete().where(config_results.c.ticket == result.ticket, config_results.c.vm == result.vm))
    conn.execute(config_results.insert().values(ticket=result.ticket, vm=result.vm, run=result.run, status=result.status,
                                                changed=result.changed, failures=json.dumps(list(result.failures), ensure_ascii=False),
                                                at=result.at))


def config_of(conn: sa.Connection, ticket_id: str) -> list[ConfigResult]:
    query = sa.select(config_results).where(config_results.c.ticket == ticket_id).order_by(config_results.c.vm)
    return [ConfigResult(r.ticket, r.vm, r.run, r.status, r.changed, tuple(json.loads(r.failures)), r.at) for r in conn.execute(query)]
