"""Reads filtered by the acting user: quota usage, the audit trail, the Ansible inventory, reconcile's
findings, the daemon's status.

Every read needs an acting user (``PermissionDenied``, exit 2, without one) and shows a requester
only its own tenants — one department never sees another's quotas, history, addresses or
variables. Approvers, operators and admins see everything (``access.visible_tenants``). The CLI
formats what these functions return; the filtering lives here so every caller shares it.

What a requester sees of the audit trail: records whose subject is one of its tenants' tickets
(``ticket:<id>``), one of its tenants (``tenant:<id>``), a VM of its tenants (``vm:<name>``), or a
file refused from its own inbox directory (``inbox:<user>/<file>``). Records about clouds, centres,
daemons and the store describe shared infrastructure and every tenant on it: not shown. Of
reconcile's findings a requester sees those of its tenants' projects; the daemon status (daemons,
centre health, per-cloud counts) names no tenant and is shown to every acting user.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from govcloud.engine import configure
from govcloud.engine.context import EngineContext
from govcloud.engine.ticket_base import listing, plan_for, show, usage
from govcloud.errors import NotFound
from govcloud.model.access import acting_user, require_visible, visible_tenants
from govcloud.model.quotas import ResolvedQuota
from govcloud.planner.placement import Plan
from govcloud.planner.stored import decode
from govcloud.planner.usage import Usage
from govcloud.store import facts, terraform_plans
from govcloud.store import tickets as rows
from govcloud.store.audit import AuditRecord
from govcloud.store.terraform_plans import TfPlanRow
from govcloud.store.tickets import TicketRow, VmRow

RESOURCES = ("instances", "vcpus", "ram_mb", "disk_gb")

INVENTORY_STATES = ("configuring", "config-failed", "active")
"""Tickets whose VMs Ansible configures (``configure.inventory``'s own default)."""


@dataclass(frozen=True)
class QuotaLine:
    """One tenant × cloud: its quota, what is committed and reserved, and the approved quota-change
    ticket whose limit replaced the one in quotas/ (if any)."""

    tenant: str
    cloud: str
    quota: ResolvedQuota
    used: dict[str, int]
    reserved: dict[str, int]
    override: str | None

    @property
    def warning(self) -> bool:
        """Used + reserved at or above the quota's warn threshold for any resource."""
        limit = self.quota.limit.as_dict()
        return any(limit[n] and (self.used[n] + self.reserved[n]) / limit[n] >= self.quota.warn_at for n in RESOURCES)


def quota_lines(ctx: EngineContext, tenant: str | None = None) -> list[QuotaLine]:
    """Quota lines the acting user may see; ``tenant`` narrows to one (another tenant's: refused)."""
    user = acting_user(ctx.state.users, ctx.settings.user)
    if tenant is not None:
        if tenant not in ctx.state.tenants:
            raise NotFound(f"no tenant '{tenant}' in tenants.yaml (try `govcloud tenants list`)")
        require_visible(user, tenant)
    visible = visible_tenants(user)
    with ctx.store.transaction() as conn:
        current = Usage.from_lines(rows.ledger_lines(conn))
        changed_by = {key: ticket_id for key, (_, ticket_id) in rows.overrides(conn).items()}
    names = RESOURCES
    lines = []
    for (tenant_id, cloud_id), quota in sorted(ctx.state.quotas.quotas.items()):
        if (tenant is not None and tenant_id != tenant) or (visible is not None and tenant_id not in visible):
            continue
        used, reserved = current.committed.get((tenant_id, cloud_id)), current.reserved.get((tenant_id, cloud_id))
        lines.append(QuotaLine(tenant_id, cloud_id, quota, {n: getattr(used, n) if used else 0 for n in names},
                               {n: getattr(reserved, n) if reserved else 0 for n in names}, changed_by.get((tenant_id, cloud_id))))
    return lines


def audit_records(ctx: EngineContext, *, subject: str | None = None, actor: str | None = None, limit: int | None = None) -> list[AuditRecord]:
    """The newest ``limit`` audit records the acting user may see (module docstring), oldest first."""
    user = acting_user(ctx.state.users, ctx.settings.user)
    visible = visible_tenants(user)
    if visible is None:
        return ctx.store.audit.records(subject=subject, actor=actor, limit=limit)
    return ctx.store.audit.records(subject=subject, actor=actor, limit=limit, tenants=visible, inbox_user=user.id)


def inventory(ctx: EngineContext, ticket_ids: Sequence[str] = ()) -> dict[str, Any]:
    """Ansible's dynamic inventory of the VMs the acting user may see: a requester gets its tenants'
    hosts only (``--host`` of another tenant's VM then answers ``{}``, as for an unknown host); a
    named ticket of another tenant is not found."""
    user = acting_user(ctx.state.users, ctx.settings.user)
    visible = visible_tenants(user)
    if visible is None:
        return configure.inventory(ctx, ticket_ids)
    with ctx.store.transaction() as conn:
        if ticket_ids:
            selected = [rows.get(conn, t) for t in ticket_ids]
            for ticket_id, row in zip(ticket_ids, selected, strict=True):
                if row is None or row.tenant not in visible:
                    raise NotFound(f"no ticket '{ticket_id}' visible to {user.id}")
            ids = list(ticket_ids)
        else:
            ids = [row.id for row in rows.listing(conn, tenants=visible, states=INVENTORY_STATES)]
    if not ids:  # configure.inventory reads "no ids" as "every ticket"
        return {"all": {"children": []}, "_meta": {"hostvars": {}}}
    return configure.inventory(ctx, ids)


def findings(ctx: EngineContext, *, cloud: str | None = None, kinds: Sequence[str] = ()) -> list[facts.Finding]:
    """Reconcile's newest findings the acting user may see (a requester: its tenants' only; a finding
    that belongs to no tenant — a server in no tenant's project — is infrastructure)."""
    user = acting_user(ctx.state.users, ctx.settings.user)
    visible = visible_tenants(user)
    with ctx.store.transaction() as conn:
        found = facts.findings_of(conn, cloud=cloud, kinds=kinds)
    return found if visible is None else [f for f in found if f.tenant in visible]


@dataclass(frozen=True)
class Status:
    """What the daemons last recorded (``govcloud status``)."""

    daemons: list[facts.DaemonRow]
    health: list[facts.CentreHealth]
    cycles: list[facts.CycleStatus]
    multi_centre: frozenset[str] = frozenset()
    """Clouds with more than one centre (the provincial cloud's two sites, three centres): the ones whose
    every centre an operator wants to see, healthy or not."""


def status(ctx: EngineContext) -> Status:
    """Daemons, centre health and reconcile cycles, for any acting user (none names a tenant)."""
    acting_user(ctx.state.users, ctx.settings.user)
    with ctx.store.transaction() as conn:
        found = Status(facts.daemon_rows(conn), facts.health(conn), facts.cycles(conn))
    return dataclasses.replace(found, multi_centre=frozenset(c.id for c in ctx.state.topology.clouds if len(c.centres) > 1))


def report_scope(ctx: EngineContext, tenant: str | None = None) -> tuple[str, ...] | None:
    """The tenants a report may cover for the acting user: ``tenant`` alone when named (unknown: not found;
    another's, for a requester: refused), else the requester's own, else all (None)."""
    user = acting_user(ctx.state.users, ctx.settings.user)
    if tenant is not None:
        if tenant not in ctx.state.tenants:
            raise NotFound(f"no tenant '{tenant}' in tenants.yaml (try `govcloud tenants list`)")
        require_visible(user, tenant)
        return (tenant,)
    return visible_tenants(user)


@dataclass(frozen=True)
class TicketDetail:
    """``ticket show``: the ticket, its VMs and its audit trail."""

    row: TicketRow
    vms: list[VmRow]
    audit: list[AuditRecord]


def ticket_detail(ctx: EngineContext, ticket_id: str) -> TicketDetail:
    """One ticket the acting user may see, with its VMs and audit records."""
    row = show(ctx, ticket_id)
    with ctx.store.transaction() as conn:
        vms = rows.vms_of(conn, ticket_id)
    return TicketDetail(row, vms, ctx.store.audit.records(subject=f"ticket:{ticket_id}"))


def vms(ctx: EngineContext, ticket_id: str | None = None) -> list[VmRow]:
    """The VMs of the tickets the acting user may see (of one ticket with ``ticket_id``)."""
    visible = {t.id for t in listing(ctx)}
    with ctx.store.transaction() as conn:
        return [vm for vm in rows.vms_of(conn, ticket_id) if vm.ticket in visible]


@dataclass(frozen=True)
class Approval:
    """What an approval bound: the VMs reserved, and the Terraform plans signed (none outside Terraform clouds)."""

    row: TicketRow
    reserved_vms: int
    terraform_plans: list[TfPlanRow]


def approval(ctx: EngineContext, ticket_id: str) -> Approval:
    """An approved ticket's reservation and plan signatures, as ``ticket approve`` reports them."""
    row = show(ctx, ticket_id)
    with ctx.store.transaction() as conn:
        signed = terraform_plans.of_ticket(conn, ticket_id)
    return Approval(row, len(decode(row.plan).vms) if row.plan else 0, signed)


@dataclass(frozen=True)
class QuotaChange:
    """One resource at one level whose use a plan changes (or that is over its limit)."""

    level: str
    scope: str
    resource: str
    before: int
    after: int
    limit: int

    @property
    def ok(self) -> bool:
        return self.after <= self.limit


def plans(ctx: EngineContext, ticket_ids: Sequence[str] = ()) -> list[tuple[TicketRow, Plan]]:
    """``govcloud plan``: each named ticket (or every submitted one) with the plan it would get now,
    all against the same usage; nothing is reserved."""
    selected = [show(ctx, t) for t in ticket_ids] if ticket_ids else listing(ctx, ("submitted",))
    current = usage(ctx)
    return [(row, plan_for(ctx, row, current)) for row in selected]


def quota_changes(plan: Plan) -> list[QuotaChange]:
    """The plan's checks resource by resource, where the use changes or exceeds the limit (a centre
    has no instance limit of its own)."""
    found = []
    for check in plan.checks:
        for name in RESOURCES:
            if check.level == "centre" and name == "instances":
                continue
            change = QuotaChange(check.level, check.scope, name, getattr(check.before, name), getattr(check.after, name),
                                 getattr(check.limit, name))
            if change.after != change.before or not change.ok:
                found.append(change)
    return found
