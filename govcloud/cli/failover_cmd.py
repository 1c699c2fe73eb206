"""``govcloud failover plan|run``: move the protected VMs of a centre that is down to its partner.

Both commands build the same plan (``failover/recover.py`` gathers, ``planner/failover.py``
decides); ``plan`` prints it and changes nothing, ``run`` prints it, asks (unless ``--yes``) and
evacuates. The exit code of ``run`` is 1 when any move failed, so a script notices.
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


def _recovery(app: AppContext, timeout: float = 600.0) -> Any:
    from govcloud.engine.context import build
    from govcloud.failover.recover import Recovery
    from govcloud.model.access import acting_user

    ctx = build(app.settings)
    return Recovery(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, now=ctx.now,
                    actor=acting_user(ctx.state.users, app.settings.user), timeout=timeout,
                    tries=ctx.settings.engine.temporary_retries + 1)


def _show(plan: Any, fmt: str) -> None:
    data = plan.as_dict()
    if fmt != "table":
        emit(data, fmt)
        return
    groups = [{**g, "order": n, "depends_on": ", ".join(g["depends_on"]), "hook": g["hook"]["role"] if g["hook"] else ""}
              for n, g in enumerate(data["groups"], 1)]
    emit(groups, fmt, columns=("order", "name", "priority", "depends_on", "hook", "moves", "held"),
         title=f"failover of {plan.cloud}/{plan.centre}: groups in recovery order")
    emit(data["moves"], fmt, columns=("group", "vm", "system", "protection", "from", "to", "host"),
         title=f"{len(plan.moves)} to move")
    if data["held"]:
        emit(data["held"], fmt, columns=("group", "vm", "system", "protection", "reason"), title=f"{len(plan.held)} held where they are")


cloud_option = click.option("--cloud", help="Cloud id (topology.yaml); needed only when several clouds have a centre of that name.")


@failover.command("plan")
@click.argument("centre")
@cloud_option
@output_option
@pass_app
def plan_cmd(app: AppContext, centre: str, cloud: str | None, fmt: str) -> None:
    """What ``failover run CENTRE`` would do now (asks nova which hosts are up; changes nothing)."""
    _show(_recovery(app).plan(cloud, centre), fmt)


COMMANDS.append(failover)


@failover.command("run")
@click.argument("centre")
@cloud_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--timeout", type=click.FloatRange(min=10), default=600.0, show_default=True, help="Seconds to wait for each evacuated VM.")
@output_option
@pass_app
def run_cmd(app: AppContext, centre: str, cloud: str | None, yes: bool, timeout: float, fmt: str) -> None:
    """Evacuate the protected VMs of CENTRE (which nova must report down) to the partner centre."""
    recovery = _recovery(app, timeout)
    plan = recovery.plan(cloud, centre)
    if fmt == "table":
        _show(plan, fmt)
    if not plan.moves:
        if fmt != "table":
            from govcloud.failover.recover import RecoveryRun

            emit(RecoveryRun(plan).as_dict(), fmt)
        return
    if not yes and not click.confirm(f"evacuate {len(plan.moves)} VMs from {centre} to {plan.moves[0].target}?", err=True):
        raise click.exceptions.Exit(1)

    def said(outcome: Any) -> None:
        if fmt == "table":
            mark = "moved " if outcome.ok else "FAILED"
            click.echo(f"{mark} {outcome.move.vm.name} → {outcome.move.target}: {outcome.detail}", err=True)

    result = recovery.run(plan, on_outcome=said)
    if fmt != "table":
        emit(result.as_dict(), fmt)
    else:
        click.echo(f"{len(result.outcomes) - len(result.failed)} moved, {len(result.failed)} failed, {len(plan.held)} held", err=True)
    if result.failed:
        raise click.exceptions.Exit(1)
