"""Ticket lifecycle up to approval: submit, auto-approve, approve (reserving quota), reject, explain.

Approval is one transaction: take the quota lock, read the ledger, place the ticket (pure planner),
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

from govcloud.engine.access import SYSTEM, acting_user, require, visible_tenants
from govcloud.engine.context import EngineContext
from govcloud.errors import ConfigError, InvalidState, NotFound, QuotaDenied
from govcloud.model.ledger import LedgerLine
from govcloud.model.resources import Resources
from govcloud.model.state import DesiredState, load_state, parse_ticket
from govcloud.model.tickets import Ticket, vm_size
from govcloud.model.users import AutoApprovalRule, User
from govcloud.planner.placement import Plan, place, protection_of
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
    state = load_state(ctx.settings.data, paths)
    expired = [t.where.problem("expires", found=str(t.expires), expected=f"a date after today ({ctx.today()})",
                               message="lease already expired") for t in state.tickets if t.expires is not None and t.expires < ctx.today()]
    if expired:
        raise ConfigError(expired)
    return [(ticket, path.read_text(encoding="utf-8"), path) for ticket, path in zip(state.tickets, paths, strict=True)]


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
                        updated_at=now)
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
    with contextlib.suppress(QuotaDenied):  # stays submitted: a human approver sees why with `quota explain`
        _approve(ctx, row.id, SYSTEM, rule=rule.name)


def ticket_of(row: TicketRow) -> Ticket:
    return parse_ticket(row.source, f"ticket:{row.id}")


def _get(ctx: EngineContext, ticket_id: str) -> TicketRow:
    with ctx.store.transaction() as conn:
        row = rows.get(conn, ticket_id)
    if row is None:
        raise NotFound(f"no ticket '{ticket_id}' (see `govcloud ticket list`)")
    return row


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


def plan_for(ctx: EngineContext, row: TicketRow, current: Usage | None = None) -> Plan:
    """The placement and quota picture a ticket would get now (nothing is reserved)."""
    if row.kind != "create":
        raise InvalidState(f"ticket {row.id} is a {row.kind} ticket: only create tickets are planned and provisioned so far")
    return place(ticket_of(row), ctx.state, current if current is not None else usage(ctx))


def approve(ctx: EngineContext, ticket_id: str) -> TicketRow:
    user = acting_user(ctx.state.users, ctx.settings.user)
    require(user, "approve")
    return _approve(ctx, ticket_id, user)


def _approve(ctx: EngineContext, ticket_id: str, user: User, *, rule: str | None = None) -> TicketRow:
    now = ctx.now()
    with ctx.store.transaction() as conn:
        rows.lock_quota(conn)
        row = rows.get(conn, ticket_id)
        if row is None:
            raise NotFound(f"no ticket '{ticket_id}'")
        if row.state != "submitted":
            raise InvalidState(f"ticket {ticket_id} is {row.state}; only submitted tickets can be approved")
        plan = plan_for(ctx, row, Usage.from_lines(rows.ledger_lines(conn)))
        if not plan.ok:
            raise QuotaDenied(f"ticket {ticket_id} would exceed {len(plan.denials)} quota limit(s); nothing was reserved",
                              [d.explain() for d in plan.denials] + list(plan.suggestions))
        rows.reserve(conn, ledger_lines(plan, row))
        rows.move(conn, ticket_id, "submitted", "approved", now=now, approved_by=user.id, approved_at=now,
                  approval_rule=rule, plan=plan_json(plan))
        ctx.store.audit.append(user.id, "ticket.approve", f"ticket:{ticket_id}",
                               {"rule": rule, "vms": len(plan.vms), "reserved": _reserved_summary(plan)}, connection=conn)
    return _get(ctx, ticket_id)


def reject(ctx: EngineContext, ticket_id: str, reason: str) -> TicketRow:
    user = acting_user(ctx.state.users, ctx.settings.user)
    require(user, "reject")
    with ctx.store.transaction() as conn:
        row = rows.get(conn, ticket_id)
        if row is None:
            raise NotFound(f"no ticket '{ticket_id}'")
        if row.state != "submitted":
            raise InvalidState(f"ticket {ticket_id} is {row.state}; only submitted tickets can be rejected")
        rows.move(conn, ticket_id, "submitted", "rejected", now=ctx.now(), reason=reason)
        ctx.store.audit.append(user.id, "ticket.reject", f"ticket:{ticket_id}", {"reason": reason}, connection=conn)
    return _get(ctx, ticket_id)


def ledger_lines(plan: Plan, row: TicketRow) -> list[LedgerLine]:
    """One line per centre the plan uses, plus the DR reservations."""
    _, per_centre = plan.demand()
    dr = {(r.cloud, r.centre): r.resources for r in plan.reservations}
    lines = []
    for (cloud, centre), resources in sorted(per_centre.items()):
        vm_part = resources - dr.get((cloud, centre), Resources())
        if any(vm_part.as_dict().values()):
            lines.append(LedgerLine(row.id, row.tenant, row.system, cloud, centre, vm_part, "reserved", "vm"))
        if (cloud, centre) in dr:
            lines.append(LedgerLine(row.id, row.tenant, row.system, cloud, centre, dr[(cloud, centre)], "reserved", "dr"))
    return lines


def _reserved_summary(plan: Plan) -> dict[str, Any]:
    per_cloud, _ = plan.demand()
    return {cloud: r.as_dict() for cloud, r in per_cloud.items()} | {
        f"dr:{r.cloud}/{r.centre}": r.resources.as_dict() for r in plan.reservations}


def plan_json(plan: Plan) -> dict[str, Any]:
    data = dataclasses.asdict(plan)
    data["checks"] = [{"level": c.level, "scope": c.scope, "ok": c.ok, "explain": c.explain()} for c in plan.checks]
    return data

