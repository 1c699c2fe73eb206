"""``govcloud drill run|cleanup|history``: DR drills (issue 14, part 3; ``failover/drill.py``).

``run GROUP`` boots copies of a protection group's ``dr`` VMs from their newest replicas in the target
centre on an isolated network, runs the group's hook on them, measures the RTO and deletes everything it
made; it prints the per-VM results and the path of the Markdown report. Exit codes: 0 the drill succeeded
and nothing was left over; 1 it failed (a copy, the hook) or something it made could not be deleted; 2
refused (unknown group, cloud or target, no dr VM, a drill of the group already running, not an operator).
``cleanup`` deletes what killed drills left (found by name in every region): exit 1 when something is still
there. ``history`` lists drills, filtered by the acting user's tenants.
"""

from __future__ import annotations

from typing import Any

import click

from govcloud.cli.app import AppContext, pass_app
from govcloud.cli.output import emit, output_option

COMMANDS: list[click.Command] = []


@click.group("drill")
def drill() -> None:
    """DR drills: a protection group recovered on copies in an isolated network, production untouched."""


COMMANDS.append(drill)


def _drill(app: AppContext, fmt: str, timeout: float = 600.0) -> Any:
    from govcloud.engine.context import build
    from govcloud.engine.onboard import ensure_tenant_for
    from govcloud.failover.drill import Drill
    from govcloud.failover.hooks import ansible_hook
    from govcloud.model.access import acting_user

    ctx = build(app.settings)
    actor = acting_user(ctx.state.users, app.settings.user)

    def said(text: str) -> None:
        if fmt == "table":
            click.echo(text, err=True)

    return Drill(store=ctx.store, state=ctx.state, endpoints=ctx.endpoints, driver=ctx.driver, now=ctx.now, actor=actor,
                 hook=ansible_hook(ctx.settings), settings=ctx.settings.failover, timeout=timeout,
                 tries=ctx.settings.engine.temporary_retries + 1, onboard=lambda tenant, endpoint: ensure_tenant_for(ctx, tenant, endpoint),
                 report_dir=ctx.settings.state_dir / "drills", on_event=said)


@drill.command("run")
@click.argument("group", metavar="GROUP")
@click.option("--cloud", default="gd-prov", show_default=True, metavar="C", help="The cloud whose recovery plan names GROUP.")
@click.option("--target", default="sg-dr", show_default=True, metavar="CENTRE",
              help="Where the copies boot: sg-dr (from the replicas' copies in its region) or gz-backup (from the snapshots).")
@click.option("--timeout", type=click.FloatRange(min=10), default=600.0, show_default=True, help="Seconds to wait for each copy.")
@output_option
@pass_app
def run_cmd(app: AppContext, group: str, cloud: str, target: str, timeout: float, fmt: str) -> None:
    """Drill one protection group: copies from replicas on an isolated network, hook, RTO, everything deleted."""
    done = _drill(app, fmt, timeout).run(group, cloud_id=cloud, target=target)
    detail = done.detail
    if fmt == "table":
        emit(detail["vms"], fmt, columns=("vm", "taken_at", "server", "host", "boot_s", "ok", "error"),
             title=f"drill {done.run.id} of {group} in {target}: {done.run.state}")
        click.echo(f"hook: {'passed' if detail['hook']['ok'] else 'FAILED'}: {detail['hook']['detail']}")
        click.echo(f"RTO: group {detail['rto']['groups'][group]} s, total {detail['rto']['total_s']} s; cleaned up "
                   f"{len(detail['cleanup']['deleted'])} resources, left over {len(detail['cleanup']['leftovers'])}")
        click.echo(f"report: {done.report}")
    else:
        emit({"run": done.run.id, "state": done.run.state, "report": str(done.report), **detail}, fmt)
    if not done.ok:
        raise click.exceptions.Exit(1)


@drill.command("cleanup")
@output_option
@pass_app
def cleanup_cmd(app: AppContext, fmt: str) -> None:
    """Delete what drills that died half-way left behind (found by their tag in every region)."""
    found = _drill(app, fmt).cleanup()
    if fmt == "table":
        emit(found.deleted, fmt, columns=("endpoint", "kind", "id", "name"), title=f"{len(found.deleted)} deleted",
             empty="nothing left by a drill")
        if found.ended_runs:
            click.echo(f"drill runs ended failed (their process had died): {', '.join(map(str, found.ended_runs))}")
        for line in found.errors:
            click.echo(f"error: {line}", err=True)
        if found.leftovers:
            emit(found.leftovers, fmt, columns=("endpoint", "kind", "id", "name"), title=f"{len(found.leftovers)} still there")
    else:
        emit(found.as_dict(), fmt)
    if found.leftovers or found.errors:
        raise click.exceptions.Exit(1)


@drill.command("history")
@click.option("--cloud", metavar="C", help="Only drills of this cloud.")
@click.option("--group", metavar="GROUP", help="Only drills of this protection group.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@output_option
@pass_app
def history_cmd(app: AppContext, cloud: str | None, group: str | None, limit: int, fmt: str) -> None:
    """Drills, the newest first (a requester sees drills of its own tenants' VMs only)."""
    from govcloud.engine.context import build
    from govcloud.failover.drill import history
    from govcloud.model.access import acting_user

    ctx = build(app.settings)
    user = acting_user(ctx.state.users, app.settings.user)
    rows = history(ctx.store, user, cloud=cloud, group=group, limit=limit)
    emit(rows, fmt, columns=("run", "group", "cloud", "target", "state", "user", "start", "vms", "passed", "hook", "rto_s", "leftovers"),
         empty="no drill yet")
