"""Quota-change tickets: a tenant asks for new limits in one cloud; the approver decides.

The desired quotas live in quotas/*.yaml; an approved change is recorded in the store as an override
on top of them (``govcloud quota show`` marks it) until the next data release folds it into the files.
Approval checks the new limit against what the cloud can give, the parent's limit (strict
hierarchy) and what the tenant already uses and has reserved; ``apply`` then sets the nova quota.
"""

from __future__ import annotations

from typing import Any

from govcloud.engine.context import EngineContext
from govcloud.engine.onboard import endpoints_of, ensure_tenant_for
from govcloud.errors import InvalidState
from govcloud.model.resources import Resources
from govcloud.model.tickets import Ticket
from govcloud.planner.placement import Plan
from govcloud.planner.quota import LevelCheck
from govcloud.planner.usage import Usage
from govcloud.store import tickets as rows
from govcloud.store.tickets import TicketRow


def new_limit(ctx: EngineContext, ticket: Ticket) -> tuple[Resources | None, Resources]:
    """(current limit or None, the limit asked for)."""
    assert ticket.quota is not None
    current = ctx.state.quotas.of(ticket.tenant, ticket.quota.cloud)
    base = current.limit if current else None
    wanted = ticket.quota.limits.over(base)
    if wanted is None:
        raise InvalidState(f"ticket {ticket.id}: tenant {ticket.tenant} has no quota in {ticket.quota.cloud} yet, "
                           "so the change must name instances, vcpus, ram_mb and disk_gb")
    return base, wanted


def plan_quota_change(ctx: EngineContext, ticket: Ticket, usage: Usage) -> Plan:
    """The checks an approver reads: capacity, parent, and what is already in use."""
    assert ticket.quota is not None
    cloud_id = ticket.quota.cloud
    if cloud_id not in ctx.state.tenants[ticket.tenant].clouds:
        raise InvalidState(f"ticket {ticket.id}: cloud {cloud_id} is not one of tenant {ticket.tenant}'s clouds (tenants.yaml)")
    base, wanted = new_limit(ctx, ticket)
    old = base or Resources()
    cloud = ctx.state.topology.cloud(cloud_id)
    assert cloud is not None
    checks = [LevelCheck("capacity", f"cloud {cloud_id} (capacity × overcommit)", cloud_id, cloud.allocatable(), old, wanted)]
    parent = ctx.state.tenants[ticket.tenant].parent
    parent_quota = ctx.state.quotas.of(parent, cloud_id) if parent else None
    if parent_quota is not None and ctx.state.quotas.policy.hierarchy == "strict":
        checks.append(LevelCheck("parent", f"parent {parent} in {cloud_id}", cloud_id, parent_quota.limit, old, wanted))
    in_use = usage.of_tenant(ticket.tenant, cloud_id)
    checks.append(LevelCheck("in use", f"tenant {ticket.tenant} in {cloud_id} (used + reserved must fit the new limit)", cloud_id,
                             wanted, in_use, in_use))
    note = f"limit of {ticket.tenant} in {cloud_id}: " + ", ".join(
        f"{n} {getattr(old, n)} → {getattr(wanted, n)}" for n in wanted.as_dict() if getattr(old, n) != getattr(wanted, n))
    return Plan(ticket.id, ticket.tenant, ticket.system, "none", (), checks=tuple(checks), notes=(note,))


def record(ctx: EngineContext, ticket: Ticket, conn: Any, *, now: str) -> None:
    """Approval: the override takes effect for every later approval at once."""
    assert ticket.quota is not None
    _, wanted = new_limit(ctx, ticket)
    rows.set_override(conn, ticket.tenant, ticket.quota.cloud, wanted, ticket=ticket.id, now=now)


def apply_quota_change(ctx: EngineContext, row: TicketRow, ticket: Ticket, actor: str) -> tuple[str, str]:
    """Set the tenant's nova quota in every endpoint the changed cloud reaches."""
    assert ticket.quota is not None
    ctx.refresh_quotas()
    if row.state == "approved":
        with ctx.store.transaction() as conn:
            rows.move(conn, row.id, "approved", "provisioning", now=ctx.now(), attempts=row.attempts + 1)
    cloud = ctx.state.topology.cloud(ticket.quota.cloud)
    assert cloud is not None
    reached = {ctx.endpoints.of(cloud.id, c.id) for c in cloud.centres}
    changed = []
    for endpoint in endpoints_of(ctx, ticket.tenant):
        if any((t.entry, t.region) == (endpoint.cloud, endpoint.region) for t in reached):
            result = ensure_tenant_for(ctx, ticket.tenant, endpoint)
            changed.append(f"{endpoint.region}: {', '.join(result.changed) or 'nothing to change'}")
    with ctx.store.transaction() as conn:
        rows.move(conn, row.id, "provisioning", "active", now=ctx.now(), active_at=ctx.now())
        ctx.store.audit.append(actor, "ticket.quota-change.done", f"ticket:{row.id}", {"nova": changed}, connection=conn)
    return "active", "; ".join(changed)
