"""What every workflow of the engine shares about a stored ticket: the outcome of a run, failing a ticket,
reading a ticket back from its row, its hashes, who may see it, and the plan it would get now.

The bottom of engine/: it imports the context and the planner, never another workflow module, so
provisioning (provision.py and its Terraform twin terraform_path.py), approval (tickets.py), changes
and configuration can all use it without importing each other in a circle (issue 12).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from govcloud.drivers.base import Endpoint
from govcloud.engine import quota_change
from govcloud.engine.context import EngineContext
from govcloud.engine.plans import placements, reservations
from govcloud.errors import GovcloudError, InvalidState, NotFound
from govcloud.model.access import acting_user, visible_tenants
from govcloud.model.state import parse_ticket
from govcloud.model.tickets import Ticket
from govcloud.planner.placement import PlacementError, Plan, VmPlacement, place
from govcloud.planner.resize import plan_resize
from govcloud.planner.usage import Usage
from govcloud.store import tickets as rows
from govcloud.store.tickets import TicketRow


@dataclass(frozen=True)
class Outcome:
    """What happened to one ticket in this run."""

    ticket: str
    state: str
    detail: str = ""


class ProvisioningPath(Protocol):
    """How a create ticket's VMs come to exist in one kind of cloud, and stop existing.

    Two paths implement it: openstack_path.OpenStackPath (find-or-create nova servers) and
    terraform_path.TerraformPath (apply the approved plan). engine/provision.py chooses the path of each
    ticket (``path_for``) and does what is common to both: the ticket's selection, configuration,
    quarantine, and the retirement's ledger release and state change. A new cloud API is a third class
    beside them (docs/architecture.md)."""

    name: str
    """Short name for messages (``openstack``, ``terraform``)."""

    def handles(self, ctx: EngineContext, row: TicketRow) -> bool:
        """Whether this path provisions the ticket (asked in ``provision.PATHS`` order)."""
        ...

    def provision(self, ctx: EngineContext, row: TicketRow, actor: str, *, configure: bool) -> Outcome:
        """An approved ticket (or one a killed run left ``provisioning``) to ``configuring`` or ``active``
        (``configure`` off: straight to ``active``), or ``failed`` with what was created removed and the
        quota released."""
        ...

    def converge(self, ctx: EngineContext, row: TicketRow, actor: str) -> Outcome:
        """An active ticket named to ``apply``: check (and where the path may, restore) its VMs."""
        ...

    def remove(self, ctx: EngineContext, row: TicketRow, actor: str) -> int:
        """Delete the ticket's VMs (retirement); returns how many of them existed. The ticket's state and
        ledger are the caller's."""
        ...


def endpoint_of(ctx: EngineContext, vm: VmPlacement) -> Endpoint:
    """The clouds.yaml entry and region that reach a VM's centre (after the profile's overlay)."""
    target = ctx.endpoints.of(vm.cloud, vm.centre)
    return Endpoint(cloud=target.entry, region=target.region)


def fail_ticket(ctx: EngineContext, row: TicketRow, actor: str, reason: str, *, cleanup: Callable[[], object], cleaned: str) -> Outcome:
    """A provisioning ticket fails: ``cleanup`` removes what was created (either driver's way), the
    quota is released, and the reason says what to do next."""
    try:
        cleanup()
        done = cleaned
    except GovcloudError as exc:
        done = f"cleanup incomplete ({exc}); `govcloud ticket retire {row.id}` retries it"
    advice = f"{reason}. The quota was released and {done}. Fix the cause, then submit the ticket again."
    now = ctx.now()
    with ctx.store.transaction() as conn:
        rows.release(conn, row.id, now=now)
        rows.move(conn, row.id, "provisioning", "failed", now=now, reason=advice)
        ctx.store.audit.append(actor, "ticket.fail", f"ticket:{row.id}", {"reason": advice}, connection=conn)
    ctx.progress("ticket", {"ticket": row.id, "state": "failed", "reason": advice})
    return Outcome(row.id, "failed", advice)


UNHASHED = ("id", "requester", "reason", "version", "where")
"""Ticket fields left out of the content hash: they do not change what is asked. The same request under a
new id, filed by another requester of the tenant or with other words of justification, is a duplicate;
the lease end, roles, vars, VMs, target and quota are the request, and any change to them makes another."""


def content_hash(ticket: Ticket) -> str:
    """Hash of what the ticket asks (not its id, requester, reason, comments or layout): a request
    identical to a live ticket's is refused as a duplicate, whatever its id."""
    return _hash(ticket, UNHASHED)


def binding_hash(ticket: Ticket) -> str:
    """Hash of every field of the ticket (id included; comments and layout not): what a Terraform plan is
    bound to. Kept apart from ``content_hash`` so that plans saved before the duplicate check changed
    stay valid."""
    return _hash(ticket, ("where",))


def _hash(ticket: Ticket, leave_out: tuple[str, ...]) -> str:
    data = {k: v for k, v in dataclasses.asdict(ticket).items() if k not in leave_out}
    for vm in data.get("vms", []):
        vm.pop("where", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def ticket_of(row: TicketRow) -> Ticket:
    return parse_ticket(row.source, f"ticket:{row.id}")


def _get(ctx: EngineContext, ticket_id: str) -> TicketRow:
    with ctx.store.transaction() as conn:
        return rows.require(conn, ticket_id)


def show(ctx: EngineContext, ticket_id: str) -> TicketRow:
    """One ticket, if the acting user may see it."""
    user = acting_user(ctx.state.users, ctx.settings.user)
    row = _get(ctx, ticket_id)
    tenants = visible_tenants(user)
    if tenants is not None and row.tenant not in tenants:
        raise NotFound(f"no ticket '{ticket_id}' visible to {user.id}")
    return row


def listing(ctx: EngineContext, states: Sequence[str] = ()) -> list[TicketRow]:
    user = acting_user(ctx.state.users, ctx.settings.user)
    with ctx.store.transaction() as conn:
        return rows.listing(conn, tenants=visible_tenants(user), states=states)


def usage(ctx: EngineContext) -> Usage:
    with ctx.store.transaction() as conn:
        return Usage.from_lines(rows.ledger_lines(conn))


def plan_for(ctx: EngineContext, row: TicketRow, current: Usage | None = None, *, conn: Any = None) -> Plan:
    """The placement and quota picture a ticket would get now (nothing is reserved). ``conn``: the
    caller's open transaction (approval), so the target is read under the same lock."""
    ticket = ticket_of(row)
    current = current if current is not None else usage(ctx)
    try:
        if row.kind == "create":
            return place(ticket, ctx.state, current)
        if row.kind in ("resize", "delete"):
            target = _target(ctx, ticket, conn)
            if row.kind == "delete":
                return Plan(ticket.id, ticket.tenant, ticket.system, "none", (),
                            notes=(f"retires ticket {target.id}: deletes its {len(placements(target))} VM(s) and releases its quota",))
            return plan_resize(ticket, placements(target), reservations(target), ctx.state, current)
    except PlacementError as exc:
        raise InvalidState(f"ticket {row.id}: {exc}") from exc
    return quota_change.plan_quota_change(ctx, ticket, current)


def _target(ctx: EngineContext, ticket: Ticket, conn: Any = None) -> TicketRow:
    """The create ticket a resize or delete ticket changes: same tenant, and active."""
    if conn is None:
        with ctx.store.transaction() as own:
            return _target(ctx, ticket, own)
    target = rows.get(conn, ticket.target or "")
    if target is None or target.kind != "create":
        raise InvalidState(f"ticket {ticket.id}: target {ticket.target} is not a stored create ticket")
    if target.tenant != ticket.tenant:
        raise InvalidState(f"ticket {ticket.id}: target {target.id} belongs to tenant {target.tenant}, not {ticket.tenant}")
    if target.state != "active":
        raise InvalidState(f"ticket {ticket.id}: target {target.id} is {target.state}; only active tickets can be changed")
    return target
