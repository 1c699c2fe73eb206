"""``apply`` and retirement: which tickets to work on, and which provisioning path does each.

Called by the CLI (``govcloud apply``, ``ticket retire``) and the daemon. A create ticket's VMs come to
exist through a :class:`~govcloud.engine.ticket_base.ProvisioningPath`: the Terraform path
(terraform_path.py) for tickets in ``driver: terraform`` clouds, the OpenStack path (openstack_path.py)
for every other; ``path_for`` is the one place that chooses. Changes (resize, delete, quota-change),
configuration, quarantine and the retirement's bookkeeping (ledger release, state, audit) are the same
for both and live here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from govcloud.drivers.terraform import WorkspaceBusy
from govcloud.engine import changes
from govcloud.engine import terraform_path as tf
from govcloud.engine.configure import run_configuration
from govcloud.engine.context import EngineContext
from govcloud.engine.openstack_path import OpenStackPath, run_queue
from govcloud.engine.plans import placements
from govcloud.engine.quota_change import apply_quota_change
from govcloud.engine.ticket_base import Outcome, ProvisioningPath, ticket_of
from govcloud.engine.workqueue import WorkQueue
from govcloud.errors import GovcloudError, InputError, InvalidState, NotFound, PermanentError
from govcloud.model.access import acting_user, require
from govcloud.model.states import TO_WORK_ON, allowed
from govcloud.store import tickets as rows
from govcloud.store.tickets import TicketRow

TICKETS_AT_ONCE = 32
"""Tickets whose VMs an ``apply`` puts into its work queue together (their threads mostly wait: the
queue's bounds per endpoint and host, not this, limit what the clouds see)."""


def paths(queue: WorkQueue) -> tuple[ProvisioningPath, ...]:
    """The provisioning paths of one run, asked in order: the first that handles a ticket provisions it
    (the OpenStack path, sharing the run's work queue, takes every ticket no other path does)."""
    return (tf.TerraformPath(), OpenStackPath(queue))


def path_for(ctx: EngineContext, row: TicketRow, available: Sequence[ProvisioningPath]) -> ProvisioningPath:
    """The provisioning path of a create ticket: the one place that chooses."""
    return next(path for path in available if path.handles(ctx, row))


def _tickets(ctx: EngineContext, ids: Sequence[str], states: Sequence[str]) -> list[TicketRow]:
    with ctx.store.transaction() as conn:
        if not ids:
            return rows.listing(conn, states=states)
        found = []
        for ticket_id in ids:
            row = rows.require(conn, ticket_id)
            found.append(row)
        return found


def _never() -> bool:
    return False


def apply(ctx: EngineContext, ticket_ids: Sequence[str] = (), *, configure: bool = True, stop: Callable[[], bool] = _never,
          skip_moved: bool = False) -> list[Outcome]:
    """Provision approved tickets (and finish interrupted ones), configure them with their Ansible roles
    (unless ``configure`` is off), and retire those marked for retirement.

    The servers of every OpenStack ticket to provision or retire go through one work queue
    (engine/workqueue.py) at the same time; then, ticket by ticket in order, the configuration of those
    and everything else (Terraform applies, changes, converges), as before. The CLI and the daemon both
    call this with every ticket there is to work on, so the daemon's pass is as fast as ``govcloud apply``.

    ``stop`` is asked before each ticket's step starts (the daemon: still the leader, not asked to stop);
    once it says so, the tickets not started yet are left as they are for the next run. ``skip_moved``
    (the daemon): a ticket that raises an InputError — it moved on under us, a CLI user acted first, its
    change's target is gone — becomes a ``skipped`` outcome instead of stopping the run, so one such
    ticket never holds up the others pass after pass."""
    user = acting_user(ctx.state.users, ctx.settings.user)
    require(user, "apply")
    selected = _tickets(ctx, ticket_ids, TO_WORK_ON)
    outcomes = []

    def guarded(row: TicketRow, step: Callable[[], Outcome | None]) -> Outcome | None:
        if stop():
            return None
        try:
            return _guarded(ctx, row, ticket_ids, step)
        except InputError as exc:
            if not skip_moved:
                raise
            return Outcome(row.id, "skipped", str(exc))

    with run_queue(ctx) as queue:
        available = paths(queue)
        shared = [row for row in selected if _queued(ctx, row, available)]
        with ThreadPoolExecutor(max_workers=max(1, min(len(shared), TICKETS_AT_ONCE)), thread_name_prefix="govcloud-ticket") as pool:
            started = {row.id: pool.submit(guarded, row, functools.partial(_cloud_step, ctx, row, user.id, available, configure=configure))
                       for row in shared}
        for row in selected:
            if row.id in started:
                outcome = started[row.id].result()
                if outcome is not None and outcome.state == "configuring":
                    outcome = guarded(row, functools.partial(_configure_again, ctx, row.id, user.id)) or outcome
            else:
                outcome = guarded(row, functools.partial(_work_on, ctx, row, user.id, available, ticket_ids, configure))
            if outcome is not None:
                outcomes.append(outcome)
    return outcomes


def _queued(ctx: EngineContext, row: TicketRow, available: Sequence[ProvisioningPath]) -> bool:
    """An OpenStack create ticket to provision or to retire: its servers go into the shared work queue."""
    if row.kind != "create" or row.state not in ("approved", "provisioning", "retiring") or row.mode == "observe":
        return False
    try:
        return isinstance(path_for(ctx, row, available), OpenStackPath)
    except Exception:  # noqa: BLE001 - an unusable ticket is quarantined by the ticket-by-ticket step
        return False


def _cloud_step(ctx: EngineContext, row: TicketRow, actor: str, available: Sequence[ProvisioningPath], *, configure: bool) -> Outcome:
    """Provision (the configuration comes later, ticket by ticket: ``configuring``) or retire one queued ticket."""
    if row.state == "retiring":
        return _retire(ctx, row, actor, available)
    return path_for(ctx, row, available).provision(ctx, row, actor, configure=configure)


def _work_on(ctx: EngineContext, row: TicketRow, actor: str, available: Sequence[ProvisioningPath], ticket_ids: Sequence[str],
             configure: bool) -> Outcome | None:
    """One ticket not in the shared queue (None: nothing to do with it in this run)."""
    if row.state == "configuring":  # a run died while configuring: configure again
        return _configure(ctx, row, actor)
    if row.state in ("approved", "provisioning") and row.kind in ("resize", "delete", "quota-change"):
        return _change(ctx, row, actor)
    if row.state in ("approved", "provisioning"):
        outcome = path_for(ctx, row, available).provision(ctx, row, actor, configure=configure)
        return _configure(ctx, _reload(ctx, row.id), actor) if outcome.state == "configuring" else outcome
    if row.state == "retiring":
        return _retire(ctx, row, actor, available)
    if row.state == "active" and ticket_ids:
        outcome = path_for(ctx, row, available).converge(ctx, row, actor)
        roles = row.kind == "create" and bool(_ticket_roles(row))
        configured = _configure(ctx, row, actor) if configure and roles else None
        return Outcome(row.id, configured.state, f"{outcome.detail}; {configured.detail}") if configured else outcome
    if ticket_ids:
        raise InvalidState(f"ticket {row.id} is {row.state}: apply provisions approved, converges active and finishes retiring tickets")
    return None


def _guarded(ctx: EngineContext, row: TicketRow, ticket_ids: Sequence[str], step: Callable[[], Outcome | None]) -> Outcome | None:
    """``step`` of one ticket; what goes wrong with it never blocks the others (but bad input stops the run)."""
    try:
        return step()
    except tf.PlanRefused as exc:
        if ticket_ids:
            raise
        return Outcome(row.id, "refused", str(exc))  # a stale plan never blocks the other tickets
    except WorkspaceBusy as exc:  # another run of this host holds the Terraform workspace: the ticket waits, unchanged
        return Outcome(row.id, "busy", str(exc))
    except (InvalidState, NotFound):
        raise
    except Exception as exc:  # noqa: BLE001 - one broken ticket must never block the others
        return _quarantine(ctx, row, exc)


def _ticket_roles(row: TicketRow) -> tuple[str, ...]:
    return ticket_of(row).roles


def _reload(ctx: EngineContext, ticket_id: str) -> TicketRow:
    with ctx.store.transaction() as conn:
        return rows.require(conn, ticket_id)


def _configure_again(ctx: EngineContext, ticket_id: str, actor: str) -> Outcome:
    """Configure a ticket provisioned earlier in this run (read back: its state moved)."""
    return _configure(ctx, _reload(ctx, ticket_id), actor)


def _configure(ctx: EngineContext, row: TicketRow, actor: str) -> Outcome:
    state, detail = run_configuration(ctx, row, actor)
    return Outcome(row.id, state, detail)


def _change(ctx: EngineContext, row: TicketRow, actor: str) -> Outcome:
    """A resize or delete ticket (engine/changes.py); a permanent failure leaves the target as it was."""
    ticket = ticket_of(row)
    try:
        if row.kind == "delete":
            state, detail = changes.apply_delete(ctx, row, ticket, actor, retire=retire_row)
        else:
            apply_kind = {"resize": changes.apply_resize, "quota-change": apply_quota_change}[row.kind]
            state, detail = apply_kind(ctx, row, ticket, actor)
    except PermanentError as exc:
        advice = f"{exc}. Nothing was released; fix the cause and run `govcloud apply {row.id}` again, or retire it."
        with ctx.store.transaction() as conn:
            current = rows.get(conn, row.id)
            if current is not None and current.state == "provisioning":
                rows.move(conn, row.id, "provisioning", "failed", now=ctx.now(), reason=advice)
                ctx.store.audit.append(actor, "ticket.fail", f"ticket:{row.id}", {"reason": advice}, connection=conn)
        return Outcome(row.id, "failed", advice)
    ctx.progress("ticket", {"ticket": row.id, "state": state})
    return Outcome(row.id, state, detail)


def _quarantine(ctx: EngineContext, row: TicketRow, exc: BaseException) -> Outcome:
    """Park a ticket that cannot be processed (its plan or data is unusable) so the rest go on."""
    reason = f"cannot be processed: {type(exc).__name__}: {exc}; fix the data, then `govcloud ticket retire {row.id}` or resubmit"
    try:
        with ctx.store.transaction() as conn:
            current = rows.get(conn, row.id)
            if current is not None and allowed(current.state, "quarantined"):
                rows.move(conn, row.id, current.state, "quarantined", now=ctx.now(), reason=reason)
                ctx.store.audit.append("system", "ticket.quarantine", f"ticket:{row.id}", {"reason": reason}, connection=conn)
    except GovcloudError as store_error:
        reason += f" (and recording that failed: {store_error})"
    ctx.progress("ticket", {"ticket": row.id, "state": "quarantined", "reason": reason})
    return Outcome(row.id, "quarantined", reason)


def retire(ctx: EngineContext, ticket_id: str) -> Outcome:
    """Mark a ticket for retirement and carry it out now (``apply`` finishes it if this run dies)."""
    (outcome,) = retire_all(ctx, [ticket_id])
    return outcome


def retire_all(ctx: EngineContext, ticket_ids: Sequence[str]) -> list[Outcome]:
    """``ticket retire ID…``: every named ticket is checked first (nothing changes if one cannot be
    retired), then all are retired at once, their deletes sharing one work queue."""
    user = acting_user(ctx.state.users, ctx.settings.user)
    require(user, "retire")
    selected = []
    with ctx.store.transaction() as conn:
        for ticket_id in ticket_ids:
            row = rows.require(conn, ticket_id)
            if row.kind != "create":
                raise InvalidState(f"ticket {ticket_id} is a {row.kind} ticket; retire the create ticket it changed instead")
            if row.state != "retiring" and not allowed(row.state, "retiring"):
                raise InvalidState(f"ticket {ticket_id} is {row.state}; it cannot be retired")
            selected.append(row)
    with run_queue(ctx) as queue, ThreadPoolExecutor(max_workers=max(1, min(len(selected), TICKETS_AT_ONCE)),
                                                    thread_name_prefix="govcloud-ticket") as pool:
        available = paths(queue)
        started = [pool.submit(retire_row, ctx, row, user.id, reason="operator", available=available) for row in selected]
    return [future.result() for future in started]


def retire_row(ctx: EngineContext, row: TicketRow, actor: str, *, reason: str,
               available: Sequence[ProvisioningPath] | None = None) -> Outcome:
    """Move a ticket to retiring (if it is not already) and carry the retirement out (``available``: the
    run's paths; None: a work queue of its own)."""
    if available is None:
        with run_queue(ctx) as queue:
            return retire_row(ctx, row, actor, reason=reason, available=paths(queue))
    if row.state != "retiring":
        with ctx.store.transaction() as conn:
            rows.move(conn, row.id, row.state, "retiring", now=ctx.now())
            ctx.store.audit.append(actor, "ticket.retire", f"ticket:{row.id}", {"from": row.state, "why": reason}, connection=conn)
            fresh = rows.get(conn, row.id)
        assert fresh is not None
        row = fresh
    return _retire(ctx, row, actor, available)


def _forget(ctx: EngineContext, row: TicketRow) -> int:
    """Drop an observe-only ticket's VM records; its servers stay as they are. Returns 0 (deleted)."""
    with ctx.store.transaction() as conn:
        for vm in rows.vms_of(conn, row.id):
            rows.delete_vm(conn, row.id, vm.idx)
    return 0


def _retire(ctx: EngineContext, row: TicketRow, actor: str, available: Sequence[ProvisioningPath]) -> Outcome:
    vms = placements(row)
    ctx.progress("ticket", {"ticket": row.id, "state": "retiring", "total": len(vms)})
    # an adopted (observe) ticket's servers were never govcloud's: it only stops watching them
    deleted = _forget(ctx, row) if row.mode == "observe" else path_for(ctx, row, available).remove(ctx, row, actor)
    finished_elsewhere = Outcome(row.id, "retired", f"{deleted} server(s) deleted; the retirement was finished by another run")
    try:
        with ctx.store.transaction() as conn:
            current = rows.get(conn, row.id)
            if current is not None and current.state == "retired":  # the daemon or a CLI user finished it first
                return finished_elsewhere
            now = ctx.now()
            released = rows.release(conn, row.id, now=now)
            rows.move(conn, row.id, "retiring", "retired", now=now)
            ctx.store.audit.append(actor, "ticket.retired", f"ticket:{row.id}", {"servers_deleted": deleted, "ledger_lines_released": released},
                                   connection=conn)
    except rows.StaleState:
        if _reload(ctx, row.id).state == "retired":
            return finished_elsewhere
        raise
    ctx.progress("ticket", {"ticket": row.id, "state": "retired"})
    return Outcome(row.id, "retired", f"{deleted} server(s) deleted, quota released")
