"""``govcloud dr replicate|replicas``: replicas of ``dr`` VMs in their cloud's DR region (issue 14).

``replicate`` runs the daemon's replication pass now (``failover/replicate.py``): every selected ``dr``
VM is snapshotted and copied into the DR region (``--due``: only those whose newest replica is older
than their RPO, as the daemon does), then old replicas are pruned. Exit 1 when any VM failed.
``replicas`` lists what the store holds, filtered by the acting user's tenants.
"""

from __future__ import annotations

from typing import Any

import click

from govcloud.cli.app import AppContext, pass_app
from govcloud.cli.output import emit, output_option

COMMANDS: list[click.Command] = []


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
