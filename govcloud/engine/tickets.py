"""Ticket lifecycle up to approval: submit, auto-approve, approve (reserving quota), reject, explain.

Approval is one transaction: take the quota lock, read the ledger and the quota overrides (approved
quota changes: a cut approved by another process after this command started counts), place the ticket (pure planner),
and either reserve every ledger line and move the ticket to ``approved`` — or change nothing and
raise ``QuotaDenied`` with the level, cloud and numbers. 50 approvals racing for the last quota
therefore never over-allocate.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from govcloud.engine import quota_change
from govcloud.engine.access import SYSTEM, acting_user, require, visible_tenants
from govcloud.engine.context import EngineContext
from govcloud.engine.ledger import ledger_lines
from govcloud.engine.plans import placements, reservations
from govcloud.errors import ConfigError, InvalidState, NotFound, QuotaDenied
from govcloud.model.state import DesiredState, load_state, parse_ticket
from govcloud.model.tickets import Ticket, vm_size
from govcloud.model.users import AutoApprovalRule, User
from govcloud.planner.placement import PlacementError, Plan, place, protection_of
from govcloud.planner.resize import plan_resize
from govcloud.planner.usage import Usage
from govcloud.store import tickets as rows
from govcloud.store.tickets import TicketRow


def content_hash(ticket: Ticket) -> str:
    """Hash of what the ticket asks (not of its comments or layout): identical requests collide."""
    data = dataclasses.asdict(ticket)
    data.pop("where", None)
    for vm in data.get("vms", []):
        vm.pop("where", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def _validated(ctx: EngineContext, paths: Sequence[Path]) -> list[tuple[Ticket, str, Path]]:
    """Parse and cross-check the ticket files against the desired state in one pass; one ConfigError
    lists every problem of every file (expired leases included)."""
    with ctx.store.transaction() as conn:
        overrides = {key: limit for key, (limit, _) in rows.overrides(conn).items()}
    state = load_state(ctx.settings.data, paths, quota_overrides=overrides)
    expired = [t.where.problem("expires", found=str(t.expires), expected=f"a date after today ({ctx.today()})",
                               message="lease already expired") for t in state.tickets if t.expires is not None and t.expires < ctx.today()]
    if expired:
        raise ConfigError(expired)
    return [(ticket, path.read_text(encoding="utf-8"), path) for ticket, path in zip(state.tickets, paths, strict=True)]


def validated(ctx: EngineContext, paths: Sequence[Path]) -> None:
    """Check ticket files as ``submit`` would, storing nothing; ConfigError lists every problem."""
    _validated(ctx, paths)


def submit(ctx: EngineContext, paths: Sequence[Path]) -> list[TicketRow]:
    """Validate every file first (all or nothing), then store each as ``submitted`` and try auto-approval."""
    user = acting_user(ctx.state.users, ctx.settings.user)
    checked = _validated(ctx, paths)
    for ticket, _, _ in checked:
        require(user, "submit", tenant=ticket.tenant)
    stored = [_store_submission(ctx, user, ticket, text, path) for ticket, text, path in checked]
    for row in stored:
        _auto_approve(ctx, row)
    return [_get(ctx, row.id) for row in stored]


def _store_submission(ctx: EngineContext, user: User, ticket: Ticket, text: str, path: Path) -> TicketRow:
    digest, now = content_hash(ticket), ctx.now()
    with ctx.store.transaction() as conn:
        same = rows.open_with_hash(conn, digest)
        if same is not None:
            raise ConfigError([ticket.where.problem(None, found=f"the same request as open ticket {same.id} ({same.state})",
                                                    expected="a request that is not already open", message="duplicate ticket")])
        existing = rows.get(conn, ticket.id)
        if existing is not None:
            raise ConfigError([ticket.where.problem("id", found=f"'{ticket.id}' (already stored, {existing.state})",
                                                    expected="a new ticket id", message="ticket id in use")])
        row = TicketRow(id=ticket.id, tenant=ticket.tenant, system=ticket.system, kind=ticket.kind, state="submitted",
                        content_hash=digest, source=text, source_name=str(path), submitted_by=user.id, submitted_at=now,
                        updated_at=now, expires=ticket.expires.isoformat() if ticket.expires else None)
        rows.insert(conn, row)
        ctx.store.audit.append(user.id, "ticket.submit", f"ticket:{ticket.id}",
                               {"tenant": ticket.tenant, "system": ticket.system, "kind": ticket.kind, "file": str(path),
                                "hash": digest, "requester": ticket.requester}, connection=conn)
    return row


def matching_rule(rules: Sequence[AutoApprovalRule], ticket: Ticket, state: DesiredState, today: Any) -> AutoApprovalRule | None:
    """The first auto-approval rule the ticket satisfies (create tickets only)."""
    if ticket.kind != "create" or ticket.expires is None:
        return None
    flavors = {f.name: f.resources() for f in state.topology.flavors}
    sizes = [(vm.count, vm_size(vm, flavors)) for vm in ticket.vms]
    if any(size is None for _, size in sizes):
        return None
    count = sum(n for n, _ in sizes)
    vcpus = sum(n * s.vcpus for n, s in sizes if s)
    ram = sum(n * s.ram_mb for n, s in sizes if s)
    protection = protection_of(ticket, state)
    lease = (ticket.expires - today).days
    for rule in rules:
        if (count <= rule.max_vms and vcpus <= rule.max_vcpus and ram <= rule.max_ram_mb and lease <= rule.max_lease_days
                and protection in rule.protection and (not rule.tenants or ticket.tenant in rule.tenants)):
            return rule
    return None


def _auto_approve(ctx: EngineContext, row: TicketRow) -> None:
    ticket = ticket_of(row)
    rule = matching_rule(ctx.state.users.auto_approval, ticket, ctx.state, ctx.today())
    if rule is None:
        return
    from govcloud.engine.terraform_path import PlanRequired

    # stays submitted: a human approver sees why with `quota explain`; a Terraform plan needs a human to sign it
    with contextlib.suppress(QuotaDenied, PlanRequired):
        _approve(ctx, row.id, SYSTEM, rule=rule.name)


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


def approve(ctx: EngineContext, ticket_id: str) -> TicketRow:
    user = acting_user(ctx.state.users, ctx.settings.user)
    require(user, "approve")
    current = _get(ctx, ticket_id)
    if current.state == "approved" and current.kind == "create":
        from govcloud.engine import terraform_path

        if terraform_path.handles(ctx, current):  # a re-made plan, or the second approval of a destructive one
            terraform_path.approve_again(ctx, current, user)
            return _get(ctx, ticket_id)
    return _approve(ctx, ticket_id, user)


def _approve(ctx: EngineContext, ticket_id: str, user: User, *, rule: str | None = None) -> TicketRow:
    now = ctx.now()
    with ctx.store.transaction() as conn:
        rows.lock_quota(conn)
        quota_change.refresh(ctx, conn)  # the limits as they are now, under the lock — not as this command found them
        row = rows.require(conn, ticket_id)
        if row.state != "submitted":
            raise InvalidState(f"ticket {ticket_id} is {row.state}; only submitted tickets can be approved")
        plan = plan_for(ctx, row, Usage.from_lines(rows.ledger_lines(conn)), conn=conn)
        if not plan.ok:
            raise QuotaDenied(f"ticket {ticket_id} would exceed {len(plan.denials)} quota limit(s); nothing was reserved",
                              [d.explain() for d in plan.denials] + list(plan.suggestions))
        from govcloud.engine.terraform_path import bind_approval

        terraform = bind_approval(ctx, conn, row, plan.vms, user)
        rows.reserve(conn, ledger_lines(plan, row))
        if row.kind == "quota-change":
            quota_change.record(ctx, ticket_of(row), conn, now=now)
        rows.move(conn, ticket_id, "submitted", "approved", now=now, approved_by=user.id, approved_at=now,
                  approval_rule=rule, plan=plan_json(plan))
        ctx.store.audit.append(user.id, "ticket.approve", f"ticket:{ticket_id}",
                               {"rule": rule, "vms": len(plan.vms), "reserved": _reserved_summary(plan)}
                               | ({"terraform": terraform} if terraform else {}), connection=conn)
    if row.kind == "quota-change":
        quota_change.refresh(ctx)
    return _get(ctx, ticket_id)


def reject(ctx: EngineContext, ticket_id: str, reason: str) -> TicketRow:
    user = acting_user(ctx.state.users, ctx.settings.user)
    require(user, "reject")
    with ctx.store.transaction() as conn:
        row = rows.require(conn, ticket_id)
        if row.state != "submitted":
            raise InvalidState(f"ticket {ticket_id} is {row.state}; only submitted tickets can be rejected")
        rows.move(conn, ticket_id, "submitted", "rejected", now=ctx.now(), reason=reason)
        ctx.store.audit.append(user.id, "ticket.reject", f"ticket:{ticket_id}", {"reason": reason}, connection=conn)
    return _get(ctx, ticket_id)


def _reserved_summary(plan: Plan) -> dict[str, Any]:
    per_cloud, _ = plan.demand()
    return {cloud: r.as_dict() for cloud, r in per_cloud.items()} | {
        f"dr:{r.cloud}/{r.centre}": r.resources.as_dict() for r in plan.reservations}


def plan_json(plan: Plan) -> dict[str, Any]:
    data = dataclasses.asdict(plan)
    data["checks"] = [{"level": c.level, "scope": c.scope, "ok": c.ok, "explain": c.explain()} for c in plan.checks]
    return data

