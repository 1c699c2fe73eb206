"""``govcloud dr replicate|replicas|activate|approve|return``: the remote DR centre (issue 14).

``replicate`` runs the daemon's replication pass now (``failover/replicate.py``): every selected ``dr``
VM is snapshotted and copied into the DR region (``--due``: only those whose newest replica is older
than their RPO, as the daemon does), then old replicas are pruned. Exit 1 when any VM failed.
``replicas`` lists what the store holds, filtered by the acting user's tenants.

``activate`` (an operator) requests a DR activation of a cloud — a run waiting for the e-government
office's approval — and, once ``approve`` (an approver who did not request it) or the plan's emergency
rule approved it, carries it out on the next ``activate`` (``failover/activate.py``). Exit codes of
``activate``: 0 every dr VM rebuilt; 1 a rebuild or a hook failed; 2 refused (centres not down and not
declared lost, unknown cloud or run); 3 nothing rebuilt although dr VMs are held; 4 waiting for
approval (nothing was created; the run id is printed).

``return`` (an operator) brings the ``dr`` VMs an ended activation left in the DR centre back to their
home centres once Guangzhou is healthy again (``failover/dr_return.py``); ``--dry-run`` shows the plan.
Exit codes: 0 every VM back and its DR copy retired; 1 a VM, a hook, the configure step or a retirement
failed; 2 refused (no ended activation, a centre recorded down or without a compute host up, a run of
the cloud in progress); 3 nothing to return, or nothing returned although VMs are held.
"""

from __future__ import annotations

from typing import Any

import click

from govcloud.cli.app import AppContext, pass_app
from govcloud.cli.output import emit, output_option

COMMANDS: list[click.Command] = []

EXIT_FAILED = 1
EXIT_NOTHING_REBUILT = 3


@click.group("dr")
def dr() -> None:
    """Disaster recovery in the remote DR centre: replicas of dr VMs in its region."""


COMMANDS.append(dr)


@dr.command("replicate")
@click.option("--system", metavar="S", help="Only the dr VMs of this business system (tenants.yaml id).")
@click.option("--tenant", metavar="T", help="Only the dr VMs of this tenant.")
@click.option("--due", is_flag=True, help="Only VMs whose newest replica is older than their RPO (what the daemon does).")
@output_option
@pass_app
def replicate_cmd(app: AppContext, system: str | None, tenant: str | None, due: bool, fmt: str) -> None:
    """Snapshot the dr VMs now, copy the snapshots into the DR region, keep the newest K."""
    from govcloud.engine.context import build
    from govcloud.failover.replicate import Replicator, Result
    from govcloud.model.access import acting_user

    ctx = build(app.settings)
    user = acting_user(ctx.state.users, app.settings.user)

    def said(event: dict[str, object]) -> None:
        if fmt == "table":
            click.echo(f"retrying {event['doing']} (try {event['attempt']}): {event['error']}", err=True)

    replicator = Replicator(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, clock=ctx.clock, actor=user,
                            settings=ctx.settings.dr, tries=ctx.settings.engine.temporary_retries + 1, on_retry=said)

    def done(result: Result) -> None:
        if fmt == "table":
            row = result.as_dict()
            mark = "ok    " if result.ok else "FAILED"
            click.echo(f"{mark} {row['vm']}: {row['state']} {row['dr_image'] or ''} {row['size'] or ''} "
                       f"(pruned {row['pruned']}){' ' + '; '.join(result.errors) if result.errors else ''}", err=True)

    results = replicator.run(system=system, tenant=tenant, force=not due, on_result=done)
    rows: list[dict[str, Any]] = [r.as_dict() for r in results]
    if fmt == "table":
        emit(rows, fmt, columns=("vm", "tenant", "system", "state", "source_image", "dr_image", "size", "pruned"),
             title=f"{len(rows)} dr VMs")
    else:
        emit(rows, fmt)
    if any(not r.ok for r in results):
        raise click.exceptions.Exit(1)


@dr.command("replicas")
@click.option("--system", metavar="S", help="Only replicas of this business system.")
@output_option
@pass_app
def replicas_cmd(app: AppContext, system: str | None, fmt: str) -> None:
    """Replicas in the store (a requester sees its own tenants' only)."""
    from govcloud.engine.context import build
    from govcloud.failover.replicate import replica_listing
    from govcloud.model.access import acting_user

    ctx = build(app.settings)
    user = acting_user(ctx.state.users, app.settings.user)
    rows = [r.as_dict() for r in replica_listing(ctx.store, user, system=system)]
    emit(rows, fmt, columns=("vm", "tenant", "system", "state", "taken_at", "source_region", "source_image", "dr_region", "dr_image",
                             "size", "checksum", "error"))


def _activation(app: AppContext, timeout: float = 600.0) -> tuple[Any, Any]:
    """The engine context and a DrActivation acting as the acting user."""
    from govcloud.engine.context import build
    from govcloud.failover.activate import DrActivation
    from govcloud.failover.hooks import ansible_hook
    from govcloud.model.access import acting_user

    ctx = build(app.settings)
    actor = acting_user(ctx.state.users, app.settings.user)
    return ctx, DrActivation(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, now=ctx.now, actor=actor,
                             timeout=timeout, tries=ctx.settings.engine.temporary_retries + 1, settings=ctx.settings.failover,
                             hook=ansible_hook(ctx.settings), onboard=lambda tenant, endpoint: _onboarded(ctx, tenant, endpoint))


def _onboarded(ctx: Any, tenant: str, endpoint: Any) -> None:
    from govcloud.engine.onboard import ensure_tenant_for

    ensure_tenant_for(ctx, tenant, endpoint)


@dr.command("activate")
@click.option("--cloud", metavar="C", help="The cloud whose dr VMs are rebuilt in its DR centre (e.g. gd-prov).")
@click.option("--run", "run_id", type=int, metavar="ID", help="Carry on this DR activation run (default: the cloud's waiting or running one).")
@click.option("--reason", default="", help="Why (recorded in the run and the audit trail); needed with --declare-lost.")
@click.option("--declare-lost", is_flag=True, help="Declare the cloud's serving centres lost although the health watch has not recorded "
              "them down (audited dr.declare-lost).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation before rebuilding.")
@click.option("--timeout", type=click.FloatRange(min=10), default=600.0, show_default=True, help="Seconds to wait for each rebuilt VM.")
@click.option("--skip-configure", is_flag=True, help="Do not apply the tickets' Ansible roles to the rebuilt VMs afterwards.")
@output_option
@pass_app
def activate_cmd(app: AppContext, cloud: str | None, run_id: int | None, reason: str, declare_lost: bool, yes: bool, timeout: float,
                 skip_configure: bool, fmt: str) -> None:
    """Request a DR activation (a run the e-government office approves), or carry out an approved one.

    Exit codes: 0 done; 1 a rebuild or hook failed; 2 refused; 3 nothing rebuilt, dr VMs held; 4 waiting for approval."""
    from govcloud.errors import InputError

    if declare_lost and not reason.strip():
        raise InputError("--declare-lost needs --reason: a declaration that centres are lost is audited with its reason")
    ctx, activation = _activation(app, timeout)
    run, requested = activation.run_for(cloud_id=cloud, run_id=run_id, reason=reason, declare_lost=declare_lost)
    if requested:
        click.echo(f"DR activation run {run.id} of {run.cloud} requested" + (" (centres declared lost)" if declare_lost else ""), err=True)
    approval = activation.approval(run)  # AwaitingApproval (exit 4) names the run to approve
    plan, _ = activation.plan(run.cloud)
    if fmt == "table":
        click.echo(f"run {run.id} approved by {approval['by']}" + (f" ({approval['rule']})" if approval.get("rule") else ""), err=True)
        emit(plan.as_dict()["moves"], fmt, columns=("group", "vm", "system", "from", "to"), title=f"{len(plan.moves)} to rebuild in "
             f"{plan.centre}", empty="nothing to rebuild")
        if plan.held:
            emit(plan.as_dict()["held"], fmt, columns=("group", "vm", "system", "centre", "reason"), title=f"{len(plan.held)} held")
    if plan.moves and not yes and not click.confirm(f"rebuild {len(plan.moves)} VMs in {plan.centre} from their replicas?", err=True):
        raise click.exceptions.Exit(1)

    done = activation.activate(run.id, on_outcome=_said(fmt))
    _report(ctx, done, fmt, skip_configure=skip_configure, what="rebuilt", where=f"in {plan.centre}",
            columns=("vm", "from", "to", "server", "taken_at", "data_loss_s", "rto_s", "rebuild_s"))


def _said(fmt: str) -> Any:
    """Each VM's outcome on stderr as it ends (tables only: JSON/YAML output is the result alone)."""
    def said(outcome: Any) -> None:
        if fmt == "table":
            click.echo(f"{'ok    ' if outcome.ok else 'FAILED'} {outcome.move.vm.name} ({outcome.move.group}): {outcome.detail}", err=True)
    return said


def _report(ctx: Any, done: Any, fmt: str, *, skip_configure: bool, what: str, where: str, columns: tuple[str, ...],
            left: bool = False) -> None:
    """What an activation or a return did, once carried out: the tickets' roles applied to the VMs at their
    new servers (unless ``--skip-configure``), the per-VM report, the hooks; exit 1 when a move, a hook, a
    configure failed or something was ``left`` behind, exit 3 when nothing moved and VMs were held."""
    configured = {} if skip_configure else _configure(ctx, sorted({r["ticket"] for r in done.reports.values()}), fmt)
    data = {**done.as_dict(), "configured": configured}
    if fmt == "table":
        rows = [{"vm": name, **report} for name, report in sorted(data["vms"].items())]
        emit(rows, fmt, columns=columns, title=f"run {done.run.run_id} {done.run.state}: {len(rows)} {what} {where}", empty=f"nothing {what}")
        for group, hook in done.run.hooks.items():
            click.echo(f"hook of {group}: {'ok' if hook.ok else 'FAILED'}: {hook.detail}", err=True)
        if skip_configure and rows:
            click.echo(f"--skip-configure: the tickets' Ansible roles were not applied to the {what} VMs (govcloud configure TICKET)", err=True)
    else:
        emit(data, fmt)
    if done.run.failed or left or done.run.hooks_failed or any(c["state"] != "active" for c in configured.values()):
        raise click.exceptions.Exit(EXIT_FAILED)
    if not done.run.moved and done.run.plan.held:
        raise click.exceptions.Exit(EXIT_NOTHING_REBUILT)


def _configure(ctx: Any, ticket_ids: list[str], fmt: str) -> dict[str, dict[str, str]]:
    """The engine's configure step (``govcloud configure``) on each ticket whose VMs were rebuilt: its roles
    reach the new servers at their new addresses. Ticket → state (``active`` or ``config-failed``) and summary."""
    from govcloud.engine import configure
    from govcloud.errors import GovcloudError

    done: dict[str, dict[str, str]] = {}
    for ticket in ticket_ids:
        try:
            state, text = configure.configure(ctx, ticket)
        except GovcloudError as exc:  # a ticket retired or moved meanwhile: said, the others go on
            state, text = "not configured", str(exc)
        done[ticket] = {"state": state, "detail": text}
        if fmt == "table":
            click.echo(f"configure {ticket}: {state}: {text}", err=True)
    return done


@dr.command("approve")
@click.argument("run_id", type=int, metavar="RUN")
@output_option
@pass_app
def approve_cmd(app: AppContext, run_id: int, fmt: str) -> None:
    """Approve a DR activation run (an approver of the e-government office, not the operator who requested it)."""
    _, activation = _activation(app)
    run = activation.approve(run_id)
    if fmt == "table":
        click.echo(f"DR activation run {run.id} of {run.cloud} approved by {run.detail['approval']['by']}; "
                   f"an operator carries it out: govcloud dr activate --run {run.id}")
    else:
        emit({"run": run.id, "cloud": run.cloud, "approval": run.detail["approval"], "requested_by": run.started_by}, fmt)


@dr.command("return")
@click.option("--cloud", metavar="C", required=True, help="The cloud whose dr VMs go back from its DR centre to their home centres.")
@click.option("--dry-run", is_flag=True, help="Check and show the plan; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation before returning.")
@click.option("--timeout", type=click.FloatRange(min=10), default=600.0, show_default=True, help="Seconds to wait for each server.")
@click.option("--skip-configure", is_flag=True, help="Do not apply the tickets' Ansible roles to the returned VMs afterwards.")
@output_option
@pass_app
def return_cmd(app: AppContext, cloud: str, dry_run: bool, yes: bool, timeout: float, skip_configure: bool, fmt: str) -> None:
    """Bring the dr VMs a DR activation left in the DR centre back to Guangzhou (snapshot, copy back, rebuild, retire the DR copy).

    Exit codes: 0 done; 1 a VM, hook, configure or retirement failed; 2 refused; 3 nothing to return."""
    from govcloud.engine.context import build
    from govcloud.failover.dr_return import DrReturn
    from govcloud.failover.hooks import ansible_hook
    from govcloud.model.access import acting_user

    ctx = build(app.settings)
    actor = acting_user(ctx.state.users, app.settings.user)
    back = DrReturn(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, now=ctx.now, actor=actor,
                    dr_settings=ctx.settings.dr, timeout=timeout, tries=ctx.settings.engine.temporary_retries + 1,
                    settings=ctx.settings.failover, hook=ansible_hook(ctx.settings))
    plan, activation = back.plan(cloud)
    if fmt == "table" or dry_run:
        shown = plan.as_dict()
        if fmt == "table":
            click.echo(f"return of {plan.cloud} from {plan.centre} (after DR activation run {activation.id})", err=True)
            emit(shown["moves"], fmt, columns=("group", "vm", "system", "from", "to"), title=f"{len(plan.moves)} to return",
                 empty="nothing to return")
            if plan.held:
                emit(shown["held"], fmt, columns=("group", "vm", "system", "centre", "reason"), title=f"{len(plan.held)} held")
        else:
            emit({**shown, "activation": activation.id, "dry_run": True}, fmt)
    if dry_run:
        return
    if plan.moves and not yes and not click.confirm(f"return {len(plan.moves)} VMs from {plan.centre} to Guangzhou?", err=True):
        raise click.exceptions.Exit(1)

    done = back.run(cloud, on_outcome=_said(fmt))
    _report(ctx, done, fmt, skip_configure=skip_configure, what="returned", where=f"from {plan.centre}",
            columns=("vm", "from", "to", "zone", "server", "dr_server", "downtime_s", "left"), left=bool(done.left))
