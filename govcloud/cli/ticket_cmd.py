"""``govcloud ticket …``, ``plan``, ``apply``, ``quota explain``, ``tenants sync``: the main job.

Each command builds an ``EngineContext`` (desired state, store, endpoint profile, drivers) and calls
the engine — the same functions the daemon runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from govcloud.cli.app import AppContext, pass_app
from govcloud.cli.output import emit, output_option, wide_option
from govcloud.cli.progress import progress_sink

COMMANDS: list[click.Command] = []


def context(app: AppContext, progress: Any = None, *, create: bool = False) -> Any:
    """The engine context, imported lazily (SQLAlchemy, the engine) to keep ``--help`` fast. ``create``: the
    command may start a new store (submit, tenants sync); the others only act on rows that must exist."""
    from govcloud.engine.context import build, no_progress

    return build(app.settings, progress=progress or no_progress, create_store=create)


def _ticket_rows(rows: list[Any]) -> list[dict[str, Any]]:
    return [{"id": r.id, "tenant": r.tenant, "system": r.system, "kind": r.kind, "state": r.state,
             "submitted_by": r.submitted_by, "approved_by": r.approved_by or "", "rule": r.approval_rule or "",
             "updated_at": r.updated_at[:19], "reason": r.reason or ""} for r in rows]


@click.group()
def ticket() -> None:
    """Tickets: submit, list, show, approve, reject, retire."""


@ticket.command("submit")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@output_option
@pass_app
def ticket_submit(app: AppContext, files: tuple[Path, ...], fmt: str) -> None:
    """Validate and store ticket files (all or nothing); small ones may be auto-approved."""
    from govcloud.engine import tickets

    emit(_ticket_rows(tickets.submit(context(app, create=True), list(files))), fmt, title="submitted")


@ticket.command("list")
@click.option("--state", "states", multiple=True, help="Only tickets in this state (repeatable).")
@output_option
@pass_app
def ticket_list(app: AppContext, states: tuple[str, ...], fmt: str) -> None:
    """Tickets the acting user may see (a requester sees only its own tenants')."""
    from govcloud.engine import tickets

    emit(_ticket_rows(tickets.listing(context(app), states)), fmt, title="tickets", empty="no tickets")


@ticket.command("show")
@click.argument("ticket_id")
@output_option
@pass_app
def ticket_show(app: AppContext, ticket_id: str, fmt: str) -> None:
    """One ticket with its VMs and its audit trail."""
    from govcloud.engine import reads

    detail = reads.ticket_detail(context(app), ticket_id)
    row, vms, audit = detail.row, detail.vms, detail.audit
    data = row.as_dict() | {"vms": [vm.__dict__ for vm in vms], "audit": [r.as_dict() for r in audit]}
    if fmt != "table":
        emit(data, fmt)
        return
    emit(_ticket_rows([row]), fmt, title=f"ticket {ticket_id}")
    emit([{"name": v.name, "status": v.status, "cloud": v.cloud, "region": v.region, "centre": v.centre, "zone": v.zone,
           "flavor": v.flavor or "", "address": v.address or "", "server": v.server_id or "", "fault": v.fault or ""} for v in vms],
         fmt, title="VMs")
    emit([{"seq": r.seq, "ts": r.ts[:19], "actor": r.actor, "action": r.action, "details": r.details} for r in audit], fmt, title="audit")


@ticket.command("approve")
@click.argument("ticket_ids", nargs=-1, required=True)
@pass_app
def ticket_approve(app: AppContext, ticket_ids: tuple[str, ...]) -> None:
    """Approve submitted tickets, reserving their quota in every cloud (approver role)."""
    from govcloud.engine import reads, tickets

    ctx = context(app)
    for ticket_id in ticket_ids:
        tickets.approve(ctx, ticket_id)
        _approved(reads.approval(ctx, ticket_id))


def _approved(approval: Any) -> None:
    row = approval.row
    click.echo(f"ticket {row.id}: approved by {row.approved_by}; {approval.reserved_vms} VM(s) reserved")
    for r in approval.terraform_plans:
        second = (f"; second approval by {r.second_approved_by}" if r.second_approved_by else
                  "; NEEDS A SECOND APPROVER (it replaces or destroys resources)" if r.flagged else "")
        click.echo(f"  terraform plan {r.sha256[:12]}… of {r.workspace}: approved by {r.approved_by}{second}")


@ticket.command("reject")
@click.argument("ticket_id")
@click.option("--reason", required=True, help="Why (recorded in the audit trail and shown to the requester).")
@pass_app
def ticket_reject(app: AppContext, ticket_id: str, reason: str) -> None:
    """Reject a submitted ticket (approver role)."""
    from govcloud.engine import tickets

    row = tickets.reject(context(app), ticket_id, reason)
    click.echo(f"ticket {row.id}: rejected ({reason})")


@ticket.command("retire")
@click.argument("ticket_ids", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def ticket_retire(app: AppContext, ticket_ids: tuple[str, ...], yes: bool) -> None:
    """Delete the VMs of tickets and release their quota (operator role); several tickets share one work queue."""
    from govcloud.engine import provision

    if not yes:
        click.confirm(f"Delete every VM of ticket(s) {', '.join(ticket_ids)} and release their quota?", abort=True)
    with progress_sink() as sink:
        outcomes = provision.retire_all(context(app, sink), ticket_ids)
    for outcome in outcomes:
        click.echo(f"ticket {outcome.ticket}: {outcome.state} ({outcome.detail})")


def _plan_rows(plan: Any, ctx: Any) -> list[dict[str, Any]]:
    rows = []
    for vm in plan.vms:
        target = ctx.endpoints.of(vm.cloud, vm.centre)
        rows.append({"vm": vm.name, "cloud": vm.cloud, "centre": vm.centre, "region": target.region, "zone": target.zone or vm.zone,
                     "flavor": vm.flavor or f"{vm.size.vcpus}c/{vm.size.ram_mb}M/{vm.size.disk_gb}G",
                     "server_group": vm.server_group or ""})
    return rows


def _check_rows(plan: Any) -> list[dict[str, Any]]:
    from govcloud.engine import reads

    return [{"level": c.level, "scope": c.scope, "resource": c.resource, "before": c.before, "after": c.after, "limit": c.limit,
             "ok": "yes" if c.ok else "NO"} for c in reads.quota_changes(plan)]


@click.command("plan")
@click.argument("ticket_ids", nargs=-1)
@output_option
@pass_app
def plan_cmd(app: AppContext, ticket_ids: tuple[str, ...], fmt: str) -> None:
    """Show where each VM would land and the quota before → after at every level (submitted tickets,
    or the named ones); nothing is reserved."""
    from govcloud.engine import reads
    from govcloud.planner.stored import encode

    ctx = context(app)
    for row, plan in reads.plans(ctx, ticket_ids):
        if fmt != "table":
            emit(encode(plan), fmt)
            continue
        emit(_plan_rows(plan, ctx), fmt, title=f"plan {row.id} ({row.state}, protection {plan.protection})")
        for reservation in plan.reservations:
            r = reservation.resources
            click.echo(f"DR reservation: {r.instances} VM(s), {r.vcpus} vCPU, {r.ram_mb} MiB, {r.disk_gb} GiB in "
                       f"{reservation.cloud}/{reservation.centre} ({reservation.region})")
        emit(_check_rows(plan), fmt, title="quota before → after")
        for note in plan.notes:
            click.echo(f"note: {note}")
        click.echo("verdict: fits" if plan.ok else "verdict: DENIED — " + "; ".join(d.explain() for d in plan.denials))
        if plan.ok or row.state == "approved":  # an approved ticket's re-plan (its own reservation is counted above)
            _terraform_plans(ctx, row.id, fmt)


def _terraform_plans(ctx: Any, ticket_id: str, fmt: str) -> None:
    """For a Terraform cloud: render, plan and save; the summary, with replace/destroy flagged loudly."""
    from govcloud.engine import terraform_path
    from govcloud.errors import PermissionDenied

    with progress_sink() as sink:
        ctx.progress = sink
        try:
            saved = terraform_path.plan_ticket(ctx, ticket_id)
        except PermissionDenied as exc:
            click.echo(f"note: no Terraform plan saved ({exc})")
            return
    for record, summary in saved:
        if fmt != "table":
            emit({"terraform": {"ticket": ticket_id, "cloud": record.cloud, "workspace": record.workspace, "sha256": record.sha256,
                                "planfile": record.planfile, "add": summary.add, "change": summary.change, "destroy": summary.destroy,
                                "changes": [{"address": c.address, "action": c.action} for c in summary.changes],
                                "flagged": list(summary.flagged)}}, fmt)
            continue
        emit([{"resource": c.address, "action": c.action.upper() if c.action in ("delete", "replace") else c.action,
               "flag": "!!" if c.action in ("delete", "replace") else ""} for c in summary.changes], fmt,
             title=f"terraform plan {record.workspace} (saved, sha256 {record.sha256[:12]}…)")
        click.echo(f"terraform: {summary.add} to add, {summary.change} to change, {summary.destroy} to destroy; "
                   f"approval binds to sha256 {record.sha256}")
        if summary.flagged:
            click.secho(f"WARNING: this plan REPLACES or DESTROYS {len(summary.flagged)} resource(s): {', '.join(summary.flagged)} — "
                        "it needs a second approver (a different user with role approver) before apply", fg="red", bold=True)


@click.command("apply")
@click.argument("ticket_ids", nargs=-1)
@click.option("--skip-configure", is_flag=True, help="Provision only; the ticket becomes active without its Ansible roles.")
@output_option
@pass_app
def apply_cmd(app: AppContext, ticket_ids: tuple[str, ...], skip_configure: bool, fmt: str) -> None:
    """Provision approved tickets (all, or the named ones), configure them with their Ansible roles, and
    finish interrupted runs and retirements."""
    from govcloud.engine import provision

    with progress_sink() as sink:
        outcomes = provision.apply(context(app, sink), ticket_ids, configure=not skip_configure)
    emit([{"ticket": o.ticket, "state": o.state, "detail": o.detail} for o in outcomes], fmt, title="apply",
         empty="nothing to apply (no approved ticket, no interrupted run or retirement)")
    if any(o.state in ("failed", "quarantined", "config-failed") for o in outcomes):
        raise click.exceptions.Exit(1)
    if any(o.state == "refused" for o in outcomes):  # a stale or unsigned Terraform plan: nothing was changed
        raise click.exceptions.Exit(2)
    if any(o.state == "busy" for o in outcomes):  # another run holds a Terraform workspace: nothing was changed, try again
        raise click.exceptions.Exit(1)


@click.command("explain")
@click.argument("ticket_id")
@pass_app
def quota_explain(app: AppContext, ticket_id: str) -> None:
    """Which limits a ticket hits, at which level and in which cloud, with the numbers and what would fit."""
    from govcloud.engine import tickets

    ctx = context(app)
    plan = tickets.plan_for(ctx, tickets.show(ctx, ticket_id))
    for check in plan.checks:
        click.echo(("ok      " if check.ok else "EXCEEDED ") + check.explain())
    for suggestion in plan.suggestions:
        click.echo(f"would fit: {suggestion}")
    click.echo("verdict: fits" if plan.ok else f"verdict: denied at {len(plan.denials)} level(s)")


@click.command("sync")
@click.argument("tenant_ids", nargs=-1)
@output_option
@pass_app
def tenants_sync(app: AppContext, tenant_ids: tuple[str, ...], fmt: str) -> None:
    """Ensure project, role, nova quota, network access and security group per tenant and cloud."""
    from govcloud.engine import onboard

    with progress_sink() as sink:
        results = onboard.sync(context(app, sink, create=True), tenant_ids)
    emit([{"tenant": r.tenant, "cloud": e.cloud, "region": e.region, "project": r.project_id,
           "changed": ", ".join(r.changed) or "(nothing)"} for e, r in results], fmt, title="tenants sync")


def _usage_cell(used: int, reserved: int, limit: int) -> str:
    return f"{used}+{reserved}/{limit}" if reserved else f"{used}/{limit}"


@click.command("show")
@click.argument("tenant", required=False)
@output_option
@pass_app
def quota_show(app: AppContext, tenant: str | None, fmt: str) -> None:
    """Per tenant × cloud: used (committed) + reserved (approved, not yet provisioned) / limit.
    A "!" marks a quota at or above its warn threshold; the override column names the quota-change ticket
    whose approved limit replaces the one in quotas/. A requester sees only its own tenants."""
    from govcloud.engine import reads

    ctx = context(app)
    rows = []
    for line in reads.quota_lines(ctx, tenant):
        u, r, q = line.used, line.reserved, line.quota
        limit = q.limit.as_dict()
        warn = line.warning
        if fmt == "table":
            rows.append({"tenant": line.tenant, "name": ctx.state.tenants[line.tenant].name, "cloud": line.cloud,
                         **{n: _usage_cell(u[n], r[n], limit[n]) for n in reads.RESOURCES}, "warn": "!" if warn else "",
                         "override": line.override or ""})
        else:
            rows.append({"tenant": line.tenant, "cloud": line.cloud, "limit": limit, "reserved": r, "used": u,
                         "warn_at": q.warn_at, "warning": warn, "override": line.override})
    emit(rows, fmt, title="quota: used+reserved/limit", empty="no quotas")


@click.command("list")
@click.option("--ticket", "ticket_id", help="Only the VMs of this ticket.")
@output_option
@wide_option
@pass_app
def vm_list(app: AppContext, ticket_id: str | None, fmt: str, wide: bool) -> None:
    """Where every VM govcloud manages landed: cloud, centre, region, zone, status, address."""
    from govcloud.engine import reads

    vms = reads.vms(context(app), ticket_id)
    emit([{"vm": v.name, "ticket": v.ticket, "tenant": v.tenant, "cloud": v.cloud, "centre": v.centre, "region": v.region,
           "zone": v.zone, "flavor": v.flavor or "", "status": v.status, "address": v.address or "", "server": v.server_id or ""}
          for v in vms], fmt, title=f"{len(vms)} VM(s)", narrow=VM_COLUMNS, wide=wide, empty="no VMs")


VM_COLUMNS = ("vm", "cloud", "centre", "status", "address")
"""``vm list`` without ``--wide``: the name already carries tenant, system and ticket."""


@click.command("configure")
@click.argument("ticket_id")
@pass_app
def configure_cmd(app: AppContext, ticket_id: str) -> None:
    """Run the ticket's Ansible roles again: only the hosts that failed (config-failed), or all of them."""
    from govcloud.engine import configure

    with progress_sink() as sink:
        state, detail = configure.configure(context(app, sink), ticket_id)
    click.echo(f"ticket {ticket_id}: {state} ({detail})")
    if state != "active":
        raise click.exceptions.Exit(1)


@click.command("inventory")
@click.option("--list", "list_", is_flag=True, help="Ansible dynamic inventory: every group and host (JSON).")
@click.option("--host", metavar="HOST", help="Ansible dynamic inventory: one host's variables (JSON).")
@click.option("--static", is_flag=True, help="The same as a static YAML inventory file, for admins who prefer files.")
@click.option("--ticket", "ticket_ids", multiple=True, help="Only these tickets' VMs.")
@pass_app
def inventory_cmd(app: AppContext, list_: bool, host: str | None, static: bool, ticket_ids: tuple[str, ...]) -> None:
    """The VMs govcloud configures, as Ansible inventory (ansible-inventory -i inventory/govcloud.sh --list).
    A requester gets only its own tenants' hosts; --host of any other answers {}."""
    import json

    from govcloud.engine import configure, reads
    from govcloud.model.loading import dump

    data = reads.inventory(context(app), ticket_ids)
    if host is not None:
        click.echo(json.dumps(data["_meta"]["hostvars"].get(host, {}), ensure_ascii=False, indent=2))
    elif static:
        click.echo(dump(configure.static_inventory(data)), nl=False)
    else:  # --list, and the default
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@click.group()
def vm() -> None:
    """The VMs govcloud created for tickets."""


vm.add_command(vm_list)

COMMANDS.extend([ticket, plan_cmd, apply_cmd, configure_cmd, inventory_cmd, vm])
EXTRA = [("quota", quota_explain), ("quota", quota_show), ("tenants", tenants_sync)]
"""Subcommands that join groups defined in data_cmd."""
