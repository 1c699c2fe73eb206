"""``govcloud failover plan|run|migrate|failback|status|history``: move the protected VMs of a centre that
is down to its partner, empty a healthy one before maintenance and bring them home again
(``failover/planned.py``), and read the journal of such runs.

``plan`` and ``run`` build the same plan (``failover/recover.py`` gathers, ``planner/failover.py``
decides, group by group of the cloud's recovery plan); ``plan`` prints it and changes nothing, ``run``
prints it, asks (unless ``--yes``) and carries it out as a journalled run. Exit codes of ``run``, so a
script can tell: 0 every planned move done; 1 a move or a hook failed; 2 refused, nothing done (bad
centre, nova still reports hosts up, another run of the centre in progress); 3 nothing could be
recovered although protected VMs are held (no partner, no room, partner down).
"""

from __future__ import annotations

from typing import Any

import click

from govcloud.cli.app import AppContext, pass_app
from govcloud.cli.output import emit, output_option

COMMANDS: list[click.Command] = []


@click.group("failover")
def failover() -> None:
    """Fail a centre that is down over to the same-city partner centre (forced evacuation in nova)."""


EXIT_FAILED = 1
"""``failover run``: a move or a hook failed."""
EXIT_NOTHING_RECOVERED = 3
"""``failover run``: nothing was moved, yet protected (ha/dr) VMs are held."""


def _recovery(app: AppContext, timeout: float = 600.0) -> Any:
    from govcloud.engine.context import build
    from govcloud.failover.fence import recovery_fence
    from govcloud.failover.hooks import ansible_hook
    from govcloud.failover.recover import Recovery
    from govcloud.model.access import acting_user

    ctx = build(app.settings, create_store=False)  # no store yet: no VMs, nothing to move or record
    actor = acting_user(ctx.state.users, app.settings.user)
    fence = recovery_fence(settings=ctx.settings, topology=ctx.state.topology, endpoints=ctx.endpoints, driver=ctx.driver,
                           audit=ctx.store.audit, actor=actor)  # `run` fences a centre with a method before planning
    return Recovery(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, now=ctx.now, actor=actor,
                    timeout=timeout, tries=ctx.settings.engine.temporary_retries + 1, settings=ctx.settings.failover,
                    hook=ansible_hook(ctx.settings), fence=fence)


def _show(plan: Any, fmt: str, what: str = "failover") -> None:
    data = plan.as_dict()
    if fmt != "table":
        emit(data, fmt)
        return
    groups = [{**g, "order": n, "depends_on": ", ".join(g["depends_on"]), "hook": g["hook"]["role"] if g["hook"] else ""}
              for n, g in enumerate(data["groups"], 1)]
    emit(groups, fmt, columns=("order", "name", "priority", "depends_on", "hook", "moves", "held"),
         title=f"{what} of {plan.cloud}/{plan.centre}: groups in recovery order")
    emit(data["moves"], fmt, columns=("group", "vm", "system", "protection", "from", "to", "host"),
         title=f"{len(plan.moves)} to move", empty="nothing to move")
    if data["held"]:
        emit(data["held"], fmt, columns=("group", "vm", "system", "protection", "reason"), title=f"{len(plan.held)} held where they are")


cloud_option = click.option("--cloud", help="Cloud id (topology.yaml); needed only when several clouds have a centre of that name.")


@failover.command("plan")
@click.argument("centre")
@cloud_option
@output_option
@pass_app
def plan_cmd(app: AppContext, centre: str, cloud: str | None, fmt: str) -> None:
    """What "failover run CENTRE" would do now (asks nova which hosts are up; changes nothing)."""
    _show(_recovery(app).plan(cloud, centre), fmt)


COMMANDS.append(failover)


def _exit_code(result: Any) -> int:
    """What ``run`` exits with (module docstring): a script must tell "recovered nothing" from "done"."""
    if result.failed or any(not h.ok for h in result.hooks.values()):
        return EXIT_FAILED
    protected_held = [h for h in result.plan.held if h.vm.protection in ("ha", "dr")]
    if not result.moved and protected_held:
        return EXIT_NOTHING_RECOVERED
    return 0


@failover.command("run")
@click.argument("centre")
@cloud_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--timeout", type=click.FloatRange(min=10), default=600.0, show_default=True, help="Seconds to wait for each evacuated VM.")
@output_option
@pass_app
def run_cmd(app: AppContext, centre: str, cloud: str | None, yes: bool, timeout: float, fmt: str) -> None:
    """Evacuate the protected VMs of CENTRE (which nova must report down) to the partner centre, group by group.

    Exit codes: 0 done; 1 a move or hook failed; 2 refused (nothing done); 3 nothing recovered, protected VMs held."""
    from govcloud.failover.steps import RecoveryRun

    recovery = _recovery(app, timeout)
    plan = recovery.fence_and_plan(cloud, centre)
    if fmt == "table":
        _show(plan, fmt)
    if plan.moves and not yes and not click.confirm(f"evacuate {len(plan.moves)} VMs from {centre} to {plan.moves[0].target}?", err=True):
        raise click.exceptions.Exit(1)

    result = recovery.run(plan, on_outcome=_said(fmt)) if plan.moves or recovery.has_run(plan) else RecoveryRun(plan, state="nothing to do")
    _carry_out(result, plan, fmt)


def _carry_out(result: Any, plan: Any, fmt: str) -> None:
    """Print what a run did (``run``, ``migrate``, ``failback``) and exit with its code."""
    if fmt != "table":
        emit(result.as_dict(), fmt)
    else:
        for group, hook in result.hooks.items():
            click.echo(f"hook of {group}: {'ok' if hook.ok else 'FAILED'}: {hook.detail}", err=True)
        run = f"run {result.run_id}" + (" (resumed)" if result.resumed else "") if result.run_id else "no run"
        click.echo(f"{run}: {len(result.moved)} moved, {len(result.failed)} failed, {len(plan.held)} held"
                   + (f"; stopped at the first error: {result.stopped}" if result.stopped else ""), err=True)
    code = _exit_code(result)
    if code:
        raise click.exceptions.Exit(code)


def _said(fmt: str) -> Any:
    def said(outcome: Any) -> None:
        if fmt == "table":
            mark = "moved " if outcome.ok else "FAILED"
            click.echo(f"{mark} [{outcome.move.group}] {outcome.move.vm.name} → {outcome.move.target}: {outcome.detail}", err=True)
    return said


def _planned_options(command: Any) -> Any:
    """The argument and options ``migrate`` and ``failback`` share (one list, so their help cannot drift apart)."""
    for option in reversed((click.argument("centre"), cloud_option,
                            click.option("--yes", is_flag=True, help="Do not ask for confirmation."),
                            click.option("--dry-run", is_flag=True,
                                         help="Print the plan and change nothing (no service disabled or enabled, no VM moved)."),
                            click.option("--timeout", type=click.FloatRange(min=10), default=600.0, show_default=True,
                                         help="Seconds to wait for each migrated VM."),
                            output_option, pass_app)):
        command = option(command)
    return command


@failover.command("migrate")
@_planned_options
def migrate_cmd(app: AppContext, centre: str, cloud: str | None, yes: bool, dry_run: bool, timeout: float, fmt: str) -> None:
    """Planned migration: put the healthy CENTRE in maintenance (its nova computes disabled) and move its
    protected VMs to the partner centre, group by group (live migration; cold for VMs that do not run),
    stopping at the first error. 'failover failback CENTRE' ends the maintenance and brings them back.

    Exit codes: 0 done; 1 a move or hook failed (the run stopped there); 2 refused (nothing done); 3 nothing moved, protected VMs held."""
    from govcloud.failover.planned import Planned

    planned = Planned(_recovery(app, timeout))
    plan = planned.migrate_plan(cloud, centre)
    if fmt == "table" or dry_run:
        _show(plan, fmt, "planned migration")
    if dry_run:
        return
    target = plan.moves[0].target if plan.moves else "the partner"
    if not yes and not click.confirm(f"put {centre} in maintenance and migrate {len(plan.moves)} VMs to {target}?", err=True):
        raise click.exceptions.Exit(1)
    _carry_out(planned.migrate(plan, on_outcome=_said(fmt)), plan, fmt)


@failover.command("failback")
@_planned_options
def failback_cmd(app: AppContext, centre: str, cloud: str | None, yes: bool, dry_run: bool, timeout: float, fmt: str) -> None:
    """Bring the VMs whose home is CENTRE back from the partner, once nova reports every host of CENTRE up and
    none forced down: ends its maintenance, then live-migrates group by group, members of one server group
    onto different hosts, stopping at the first error.

    Exit codes: 0 done; 1 a move or hook failed (the run stopped there); 2 refused (nothing done); 3 nothing moved, protected VMs held."""
    from govcloud.failover.planned import Planned

    planned = Planned(_recovery(app, timeout))
    plan = planned.failback_plan(cloud, centre)
    if fmt == "table" or dry_run:
        _show(plan, fmt, "failback")
    if dry_run:
        return
    if not yes and not click.confirm(f"end the maintenance of {centre} and bring {len(plan.moves)} VMs home?", err=True):
        raise click.exceptions.Exit(1)
    _carry_out(planned.failback(plan, on_outcome=_said(fmt)), plan, fmt)


@failover.command("cancel")
@click.argument("centre")
@cloud_option
@click.option("--reason", required=True, help="Why (recorded in the journal and the audit trail).")
@pass_app
def cancel_cmd(app: AppContext, centre: str, cloud: str | None, reason: str) -> None:
    """Cancel the run of CENTRE in progress: no further VM is sent (those already with nova finish)."""
    run = _recovery(app).cancel(cloud, centre, reason=reason)
    click.echo(f"run {run.id} ({run.kind}) of {run.cloud}/{run.centre} cancelled; its process stops at its next heartbeat", err=True)


@failover.command("status")
@output_option
@pass_app
def status_cmd(app: AppContext, fmt: str) -> None:
    """Each centre: health, fencing, maintenance (its nova computes disabled, e.g. by 'failover migrate'), the running or last recovery run;
    then each recovery plan (protection group): READY or NOT READY for a DR activation, and why.

    JSON and YAML: {"centres": [...], "plans": [...]}."""
    from govcloud.engine.context import build
    from govcloud.failover.fence import fence_states
    from govcloud.failover.reads import readiness, status
    from govcloud.model.access import acting_user
    from govcloud.model.fencing import load_fencing

    ctx = build(app.settings)
    fencing = load_fencing(app.settings.data.resolve(app.settings.data.fencing), ctx.state.topology)
    states = fence_states(ctx.state.topology, ctx.endpoints, fencing, ctx.driver)  # nova's listing: none, armed, partial, fenced
    listed = [s for s in states if not isinstance(s, tuple)]
    shown = {(s[0].cloud, s[0].centre): "unknown" for s in states if isinstance(s, tuple)} | {(s.cloud, s.centre): s.state for s in listed}
    maintenance = {(s.cloud, s.centre): s.maintenance for s in listed}
    user = acting_user(ctx.state.users, app.settings.user)
    rows = status(ctx.store, user, fencing=shown, maintenance=maintenance)
    plans = readiness(ctx.store, user, ctx.state, settings=ctx.settings.dr, now=ctx.clock())
    if fmt != "table":
        emit({"centres": rows, "plans": plans}, fmt)
        return
    emit(rows, fmt, columns=("cloud", "centre", "health", "since", "fencing", "maintenance", "run", "run_kind", "run_state", "run_start",
                             "moved", "failed", "held"), title="centres and their recovery runs")
    emit(plans, fmt, columns=("cloud", "plan", "state", "last_drill", "dr_vms", "why"), title="recovery plans: readiness for a DR activation",
         empty="no recovery plans")


@failover.command("history")
@click.option("--centre", help="Only runs of this centre.")
@cloud_option
@click.option("--limit", type=click.IntRange(min=1, max=10000), default=50, show_default=True, help="The newest N runs.")
@output_option
@pass_app
def history_cmd(app: AppContext, centre: str | None, cloud: str | None, limit: int, fmt: str) -> None:
    """Recovery runs, the newest first: kind, who started it, start, duration, VMs moved / failed / held."""
    from govcloud.engine.context import build
    from govcloud.failover.reads import history
    from govcloud.model.access import acting_user

    ctx = build(app.settings)
    rows = history(ctx.store, acting_user(ctx.state.users, app.settings.user), cloud=cloud, centre=centre, limit=limit)
    emit(rows, fmt, columns=("run", "kind", "cloud", "centre", "state", "user", "start", "duration_s", "moved", "failed", "held",
                             "resumed"), title="recovery runs")
