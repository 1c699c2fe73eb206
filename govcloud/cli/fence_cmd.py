"""``govcloud failover fence|unfence|fencing``: power a centre's compute hosts off (and nova's services forced
down), back on, and show each centre's fencing as nova reports it.

The commands call ``failover/fence.py``'s ``Fencer``, as the recovery and the daemon do; the method per
centre comes from the fencing file (``inventory/fencing.yaml``). Each fence and unfence is audited
(``centre.fence`` / ``centre.unfence``, with the per-host outcome; never a credential). ``fence`` exits 1
unless the centre is fully fenced and forced down; ``unfence`` exits 1 unless every host is back.
"""

from __future__ import annotations

from typing import Any

import click

from govcloud.cli.app import AppContext, pass_app
from govcloud.cli.output import emit, output_option

EXTRA: list[tuple[str, click.Command]] = []
"""(group, command) pairs the CLI adds to an existing group (here: ``failover``)."""

HOST_COLUMNS = ("host", "fenced", "forced_down", "in_nova", "error")


def _fencer(app: AppContext) -> tuple[Any, Any]:
    from govcloud.engine.context import build
    from govcloud.failover.fence import Fencer
    from govcloud.model.access import acting_user
    from govcloud.model.fencing import load_fencing

    ctx = build(app.settings)
    fencing = load_fencing(app.settings.data.resolve(app.settings.data.fencing), ctx.state.topology)
    return Fencer(topology=ctx.state.topology, endpoints=ctx.endpoints, fencing=fencing, driver=ctx.driver, settings=app.settings.fencing,
                  actor=acting_user(ctx.state.users, app.settings.user)), ctx


def _finish(report: Any, ctx: Any, actor: str, fmt: str, ok: bool) -> None:
    ctx.store.audit.append(actor, f"centre.{report.action}", f"centre:{report.cloud}/{report.centre}", report.as_dict())
    data = report.as_dict()
    if fmt != "table":
        emit(data, fmt)
    else:
        emit(data["hosts"], fmt, columns=HOST_COLUMNS, title=f"{report.action} {report.cloud}/{report.centre} ({report.method})")
        verdict = {"fence": "fenced, services forced down: evacuation may start" if report.ready else "NOT fenced: nothing may be evacuated",
                   "unfence": "every host back, forced_down cleared" if report.restored else "NOT every host is back"}[report.action]
        click.echo(verdict + (f" ({report.error})" if report.error else ""), err=True)
    if not ok:
        raise click.exceptions.Exit(1)


cloud_option = click.option("--cloud", help="Cloud id (topology.yaml); needed only when several clouds have a centre of that name.")


@click.command("fence")
@click.argument("centre")
@cloud_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Show the method and the hosts; power nothing off.")
@output_option
@pass_app
def fence_cmd(app: AppContext, centre: str, cloud: str | None, yes: bool, dry_run: bool, fmt: str) -> None:
    """Power off every compute host of CENTRE with its fence method, confirm each is off, then force
    their nova-compute services down so that evacuation can start at once."""
    fencer, ctx = _fencer(app)
    target = fencer.target(cloud, centre)
    if dry_run or target.fence.method == "none":
        states = [s for s in fencer.states() if not isinstance(s, tuple) and (s.cloud, s.centre) == (target.cloud, target.centre)]
        emit([s.as_dict() for s in states], fmt, columns=("cloud", "centre", "method", "state", "hosts", "forced_down"))
        if target.fence.method == "none":
            click.echo(f"{target.cloud}/{target.centre} has fence method none (fencing file): nothing to fence", err=True)
            raise click.exceptions.Exit(1)
        return
    if not yes and not click.confirm(f"power off every compute host of {target.cloud}/{target.centre} ({target.fence.method})?", err=True):
        raise click.exceptions.Exit(1)
    report = fencer.fence(target.cloud, target.centre)
    _finish(report, ctx, fencer.actor, fmt, report.ready)


@click.command("unfence")
@click.argument("centre")
@cloud_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@output_option
@pass_app
def unfence_cmd(app: AppContext, centre: str, cloud: str | None, yes: bool, fmt: str) -> None:
    """Power CENTRE's compute hosts on again and clear forced_down once nova hears their heartbeat."""
    fencer, ctx = _fencer(app)
    target = fencer.target(cloud, centre)
    if not yes and not click.confirm(f"power on the compute hosts of {target.cloud}/{target.centre} and return them to nova?", err=True):
        raise click.exceptions.Exit(1)
    report = fencer.unfence(target.cloud, target.centre)
    _finish(report, ctx, fencer.actor, fmt, report.restored)


@click.command("fencing")
@output_option
@pass_app
def fencing_cmd(app: AppContext, fmt: str) -> None:
    """Each OpenStack centre's fence method and what nova shows now ("fenced": every host forced down)."""
    fencer, _ = _fencer(app)
    rows = []
    for state in fencer.states():
        if isinstance(state, tuple):
            target, why = state
            rows.append({"cloud": target.cloud, "centre": target.centre, "method": target.fence.method, "state": "unknown",
                         "evacuate_now": False, "hosts": [], "forced_down": [], "up": [], "error": why})
        else:
            rows.append(state.as_dict() | {"error": ""})
    emit(rows, fmt, columns=("cloud", "centre", "method", "state", "evacuate_now", "forced_down", "error"))


EXTRA += [("failover", fence_cmd), ("failover", unfence_cmd), ("failover", fencing_cmd)]
