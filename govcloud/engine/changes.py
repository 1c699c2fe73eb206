"""Carrying out approved resize and delete tickets against the create ticket they target.

A resize changes each VM's flavor in place (nova resize + confirm), then, in one transaction,
rewrites the target's plan and VM records and recomputes its ledger lines from the new sizes
(the growth reserved at approval is folded in). A delete retires the target. Both are idempotent:
a resized server is recognised by its flavor, a retired target is left alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from govcloud.engine.context import EngineContext
from govcloud.engine.ledger import ledger_lines
from govcloud.engine.plans import placements, replaced, reservations
from govcloud.engine.retry import retrying
from govcloud.engine.ticket_base import Outcome, endpoint_of
from govcloud.errors import InvalidState, PermanentError
from govcloud.model.resources import Resources
from govcloud.model.tickets import Ticket
from govcloud.planner.placement import Plan, VmPlacement
from govcloud.planner.stored import decode, with_vms
from govcloud.store import tickets as rows
from govcloud.store.tickets import TicketRow


def _start(ctx: EngineContext, row: TicketRow, actor: str) -> None:
    if row.state == "approved":
        with ctx.store.transaction() as conn:
            rows.move(conn, row.id, "approved", "provisioning", now=ctx.now(), attempts=row.attempts + 1)
            ctx.store.audit.append(actor, f"ticket.{row.kind}.start", f"ticket:{row.id}", {}, connection=conn)


def _target_of(ctx: EngineContext, ticket: Ticket) -> TicketRow:
    with ctx.store.transaction() as conn:
        target = rows.get(conn, ticket.target or "")
    if target is None:
        raise InvalidState(f"ticket {ticket.id}: target {ticket.target} is gone")
    return target


def _finish(ctx: EngineContext, row: TicketRow, actor: str, details: dict[str, Any], conn: Any) -> None:
    rows.move(conn, row.id, "provisioning", "active", now=ctx.now(), active_at=ctx.now(), reason=None)
    ctx.store.audit.append(actor, f"ticket.{row.kind}.done", f"ticket:{row.id}", details, connection=conn)


def apply_delete(ctx: EngineContext, row: TicketRow, ticket: Ticket, actor: str, *,
                 retire: Callable[..., Outcome]) -> tuple[str, str]:
    """Retire the target (unless already retired), then mark the delete ticket done. ``retire``: the
    provisioning path's retirement (provision.retire_row), passed in because provisioning runs this."""
    _start(ctx, row, actor)
    target = _target_of(ctx, ticket)
    detail = f"ticket {target.id} was already {target.state}"
    if target.state != "retired":
        detail = retire(ctx, target, actor, reason=f"delete ticket {row.id}").detail
    with ctx.store.transaction() as conn:
        _finish(ctx, row, actor, {"target": target.id, "result": detail}, conn)
    return "active", f"target {target.id}: {detail}"


def apply_resize(ctx: EngineContext, row: TicketRow, ticket: Ticket, actor: str) -> tuple[str, str]:
    """Resize every changed VM, then rewrite the target's plan, VM rows and ledger in one transaction."""
    _start(ctx, row, actor)
    target = _target_of(ctx, ticket)
    new_vms = {vm.index: vm for vm in placements(row)}
    with ctx.store.transaction() as conn:
        known = {vm.idx: vm for vm in rows.vms_of(conn, target.id)}
    for vm in new_vms.values():
        record = known.get(vm.index)
        if record is None or record.server_id is None:
            raise PermanentError(f"{vm.name}: govcloud has no server for it; run `govcloud apply {target.id}` first")
        driver = ctx.driver(endpoint_of(ctx, vm))
        retrying(ctx, f"resize {vm.name}", driver.resize_server, target.tenant, record.server_id, flavor=vm.flavor, size=vm.size,
                 timeout=ctx.settings.engine.boot_timeout)
        ctx.progress("vm", {"ticket": row.id, "name": vm.name, "status": "ACTIVE", "centre": vm.centre,
                            "region": record.region, "zone": record.zone, "address": record.address})
    _commit_resize(ctx, row, target, new_vms, actor)
    return "active", f"{len(new_vms)} VM(s) of {target.id} resized"


def _resized_plan(target: TicketRow, row: TicketRow, new_vms: dict[int, VmPlacement]) -> tuple[dict[str, Any], Plan]:
    """The target's plan with the new sizes and its DR reservations grown by the resize's growth."""
    vms = [new_vms.get(vm.index, vm) for vm in placements(target)]
    growth = {(r.cloud, r.centre): r.resources for r in reservations(row)}
    dr = [dataclasses.replace(r, resources=r.resources + growth.get((r.cloud, r.centre), Resources())) for r in reservations(target)]
    plan = Plan(target.id, target.tenant, target.system, decode(target.plan).protection, tuple(vms), tuple(dr))
    data = with_vms(target.plan, vms, dr)
    return data, plan


def _commit_resize(ctx: EngineContext, row: TicketRow, target: TicketRow, new_vms: dict[int, VmPlacement], actor: str) -> None:
    """Target's ledger recomputed from the new sizes (the resize's reserved growth folded in), its plan
    and VM rows rewritten, the resize ticket done — one transaction."""
    data, plan = _resized_plan(target, row, new_vms)
    before = {vm.index: vm.flavor for vm in replaced(row)}
    now = ctx.now()  # one moment for the release and the new commit: the history steps from old to new size at once
    with ctx.store.transaction() as conn:
        rows.lock_quota(conn)
        rows.release(conn, target.id, now=now)
        rows.release(conn, row.id, now=now)
        rows.reserve(conn, ledger_lines(plan, target))
        rows.commit(conn, target.id, now=now)
        rows.set_plan(conn, target.id, data, now=now)
        for vm in rows.vms_of(conn, target.id):
            if vm.idx in new_vms:
                new = new_vms[vm.idx]
                rows.upsert_vm(conn, dataclasses.replace(vm, flavor=new.flavor, vcpus=new.size.vcpus, ram_mb=new.size.ram_mb,
                                                         disk_gb=new.size.disk_gb, updated_at=ctx.now()))
        _finish(ctx, row, actor, {"target": target.id,
                                  "resized": {v.name: f"{before.get(i)} → {v.flavor}" for i, v in new_vms.items()}}, conn)
