"""Ticket lifecycle up to approval: submit, auto-approve, approve (reserving quota), reject, explain.

Approval is one transaction: take the quota lock, read the ledger and the quota overrides (approved
quota changes: a cut approved by another process after this command started counts), place the ticket (pure planner),
and either reserve every ledger line and move the ticket to ``approved`` — or change nothing and
raise ``QuotaDenied`` with the level, cloud and numbers. 50 approvals racing for the last quota
therefore never over-allocate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from govcloud.engine import quota_change, terraform_path
from govcloud.engine.context import EngineContext
from govcloud.engine.ledger import ledger_lines
from govcloud.engine.ticket_base import _get, binding_hash, content_hash, listing, plan_for, show, ticket_of, usage
from govcloud.errors import ConfigError, InvalidState, Problem, QuotaDenied
from govcloud.model.access import SYSTEM, acting_user, require
from govcloud.model.loading import read_text
from govcloud.model.parsed import DesiredState
from govcloud.model.state import load_state
from govcloud.model.tickets import Ticket, vm_size
from govcloud.model.users import AutoApprovalRule, User
from govcloud.planner.placement import Plan, protection_of
from govcloud.planner.stored import encode as plan_json
from govcloud.planner.usage import Usage
from govcloud.store import tickets as rows
from govcloud.store.tickets import TicketRow


def _validated(ctx: EngineContext, paths: Sequence[Path]) -> list[tuple[Ticket, str, Path]]:
    """Parse and cross-check the ticket files against the desired state in one pass; one ConfigError
    lists every problem of every file (expired leases included)."""
    with ctx.store.transaction() as conn:
        overrides = {key: limit for key, (limit, _) in rows.overrides(conn).items()}
    state = load_state(ctx.settings.data, paths, quota_overrides=overrides, today=ctx.today())
    return [(ticket, read_text(path), path) for ticket, path in zip(state.tickets, paths, strict=True)]


def validated(ctx: EngineContext, paths: Sequence[Path]) -> None:
    """Check ticket files as ``submit`` would, storing nothing; ConfigError lists every problem (those
    that need the store too: ids in use, duplicates, resize and delete targets)."""
    checked = _validated(ctx, paths)
    with ctx.store.transaction() as conn:
        problems = _against_store(conn, [ticket for ticket, _, _ in checked])
    if problems:
        raise ConfigError(problems)


def submit(ctx: EngineContext, paths: Sequence[Path]) -> list[TicketRow]:
    """Validate every file, then store them all and try auto-approval — in one transaction, so that a
    refused file, a crash or a kill leaves nothing of the call behind (each ticket is shown stored and
    ``approved`` or ``submitted`` only once the whole call has committed)."""
    user = acting_user(ctx.state.users, ctx.settings.user)
    checked = _validated(ctx, paths)
    for ticket, _, _ in checked:
        require(user, "submit", tenant=ticket.tenant)
    with ctx.store.transaction() as conn:
        rows.lock_quota(conn)  # first, as approval does: auto-approval reserves, and the audit head is locked after it
        problems = _against_store(conn, [ticket for ticket, _, _ in checked])
        if problems:
            raise ConfigError(problems)
        stored = [_store_submission(ctx, conn, user, ticket, text, path) for ticket, text, path in checked]
        for row in stored:
            _auto_approve(ctx, conn, row)
    return [_get(ctx, row.id) for row in stored]


def _against_store(conn: Any, batch: Sequence[Ticket]) -> list[Problem]:
    """What only the store can tell, for every ticket of the call: the id is new, the request is not one a
    live ticket (or another file of the call) already makes, a resize or delete targets a create ticket
    of the same tenant that can still be changed."""
    problems: list[Problem] = []
    earlier: dict[str, Ticket] = {}
    for ticket in batch:
        existing = rows.get(conn, ticket.id)
        if existing is not None:
            problems.append(ticket.where.problem("id", found=f"'{ticket.id}' (already stored, {existing.state})",
                                                 expected="a new ticket id", message="ticket id in use"))
        digest = content_hash(ticket)
        same = rows.open_with_hash(conn, digest)
        first = f"ticket {same.id} ({same.state})" if same is not None else (
            f"ticket {earlier[digest].id} of {earlier[digest].where.file}" if digest in earlier else None)
        if first is not None:
            problems.append(ticket.where.problem(None, found=f"the same request as {first}",
                                                 expected="a request no live ticket already makes", message="duplicate ticket"))
        earlier.setdefault(digest, ticket)
        if ticket.kind in ("resize", "delete") and ticket.target is not None:
            problems.extend(_target_problems(conn, ticket))
    return problems


def _target_problems(conn: Any, ticket: Ticket) -> list[Problem]:
    """A resize or delete names a create ticket of its own tenant that is not over. Another tenant's ticket
    is reported exactly like a missing one: a requester learns nothing of other tenants' ids."""
    target = rows.get(conn, ticket.target or "")
    if target is None or target.kind != "create" or target.tenant != ticket.tenant:
        return [ticket.where.problem("target", found=f"'{ticket.target}' (no create ticket of tenant '{ticket.tenant}' has this id)",
                                     expected="the id of a create ticket of the same tenant", message="unknown target")]
    if target.state in ENDED:
        return [ticket.where.problem("target", found=f"'{ticket.target}' ({target.state})",
                                     expected="a ticket that is not rejected, retiring or retired", message="target cannot be changed")]
    return []


ENDED = ("rejected", "retiring", "retired")
"""Create tickets whose VMs will never run again: a resize or delete of one is refused at submission
(one of any other state is accepted; approval waits until the target is ``active``)."""


def _store_submission(ctx: EngineContext, conn: Any, user: User, ticket: Ticket, text: str, path: Path) -> TicketRow:
    """Insert one checked ticket and its audit record in the call's transaction."""
    digest, now = content_hash(ticket), ctx.now()
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


def _auto_approve(ctx: EngineContext, conn: Any, row: TicketRow) -> None:
    """Approve as ``system`` inside the submission's transaction (the quota lock is held), when a rule
    matches. A refusal rolls back to a savepoint: the ticket stays submitted, the rest of the call stands."""
    ticket = ticket_of(row)
    rule = matching_rule(ctx.state.users.auto_approval, ticket, ctx.state, ctx.today())
    if rule is None:
        return
    # stays submitted: a human approver sees why with `quota explain`; a Terraform plan needs a human to sign it
    with contextlib.suppress(QuotaDenied, terraform_path.PlanRequired), conn.begin_nested():
        _approve_in(ctx, conn, row.id, SYSTEM, rule=rule.name)


def approve(ctx: EngineContext, ticket_id: str) -> TicketRow:
    user = acting_user(ctx.state.users, ctx.settings.user)
    require(user, "approve")
    current = _get(ctx, ticket_id)
    if current.state == "approved" and current.kind == "create" and terraform_path.handles(ctx, current):
        terraform_path.approve_again(ctx, current, user)  # a re-made plan, or the second approval of a destructive one
        return _get(ctx, ticket_id)
    return _approve(ctx, ticket_id, user)


def _approve(ctx: EngineContext, ticket_id: str, user: User) -> TicketRow:
    with ctx.store.transaction() as conn:
        rows.lock_quota(conn)
        row = _approve_in(ctx, conn, ticket_id, user)
    if row.kind == "quota-change":
        ctx.refresh_quotas()
    return _get(ctx, ticket_id)


def _approve_in(ctx: EngineContext, conn: Any, ticket_id: str, user: User, *, rule: str | None = None) -> TicketRow:
    """Place and reserve in the caller's transaction, which holds the quota lock; raises (having written
    nothing) when the ticket is not submitted or does not fit."""
    now = ctx.now()
    ctx.refresh_quotas(conn)  # the limits as they are now, under the lock — not as this command found them
    row = rows.require(conn, ticket_id)
    if row.state != "submitted":
        raise InvalidState(f"ticket {ticket_id} is {row.state}; only submitted tickets can be approved")
    plan = plan_for(ctx, row, Usage.from_lines(rows.ledger_lines(conn)), conn=conn)
    if not plan.ok:
        raise QuotaDenied(f"ticket {ticket_id} would exceed {len(plan.denials)} quota limit(s); nothing was reserved",
                          [d.explain() for d in plan.denials] + list(plan.suggestions))
    terraform = terraform_path.bind_approval(ctx, conn, row, plan.vms, user)
    rows.reserve(conn, ledger_lines(plan, row))
    if row.kind == "quota-change":
        quota_change.record(ctx, ticket_of(row), conn, now=now)
    rows.move(conn, ticket_id, "submitted", "approved", now=now, approved_by=user.id, approved_at=now,
              approval_rule=rule, plan=plan_json(plan))
    ctx.store.audit.append(user.id, "ticket.approve", f"ticket:{ticket_id}",
                           {"rule": rule, "vms": len(plan.vms), "reserved": _reserved_summary(plan)}
                           | ({"terraform": terraform} if terraform else {}), connection=conn)
    return row


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


__all__ = ["approve", "binding_hash", "content_hash", "listing", "matching_rule", "plan_for", "reject", "show", "submit", "ticket_of",
           "usage", "validated"]
"""The ticket lifecycle's public face: the shared reads (ticket_base.py) with the workflow defined here."""
