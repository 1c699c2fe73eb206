"""``govcloud validate | topology show | tenants list|show | quota show | version``: the desired state."""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from govcloud import __version__
from govcloud.cli.app import AppContext, pass_app
from govcloud.cli.output import emit, output_option
from govcloud.errors import ConfigError, NotFound
from govcloud.settings import DataPaths

if TYPE_CHECKING:
    from govcloud.model.parsed import DesiredState

COMMANDS: list[click.Command] = []


def _paths(app: AppContext, topology: str | None = None, tenants: str | None = None, quotas: str | None = None) -> DataPaths:
    data = app.settings.data
    changes = {k: Path(v) for k, v in (("topology", topology), ("tenants", tenants), ("quotas", quotas)) if v}
    return dataclasses.replace(data, **changes) if changes else data


def load(app: AppContext, *, with_tickets: bool = False) -> DesiredState:
    """The desired state for commands that only read it (tickets are validated by ``validate``)."""
    from govcloud.model.state import load_state  # the model (and PyYAML) only for commands that read data

    paths = app.settings.data
    return load_state(paths, None if with_tickets else [])


@click.command()
@click.argument("tickets", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--topology", metavar="FILE", help="Topology file instead of inventory/topology.yaml.")
@click.option("--tenants", metavar="FILE", help="Tenants file instead of tenants.yaml.")
@click.option("--quotas", metavar="DIR", help="Quota directory instead of quotas/.")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@pass_app
def validate(app: AppContext, tickets: tuple[Path, ...], topology: str | None, tenants: str | None,
             quotas: str | None, fmt: str) -> None:
    """Check topology, tenants, quotas, tickets and fencing; report every problem with file, line and key.

    TICKETS are ticket files to check in addition to the data; without them, tickets/*.yaml is checked.
    Exit code 2 when anything is wrong. The files are checked as `ticket submit` checks them (leases that
    ended included); what only the state store knows — ids in use, duplicates of live tickets, resize and
    delete targets — is checked by `ticket submit`, which reports it in the same form.
    """
    from govcloud.model.fencing import load_fencing
    from govcloud.model.state import default_ticket_files, load_state

    paths = _paths(app, topology, tenants, quotas)
    files = list(tickets) if tickets else default_ticket_files(paths)
    try:
        state = load_state(paths, files, today=datetime.datetime.now(datetime.UTC).date())
        load_fencing(paths.resolve(paths.fencing), state.topology)
    except ConfigError as exc:
        if fmt == "json":
            click.echo(json.dumps({"ok": False, "problems": [p.as_dict() for p in exc.problems]}, ensure_ascii=False, indent=2))
            raise click.exceptions.Exit(2) from None
        raise
    summary = {"ok": True, "clouds": len(state.topology.clouds),
               "centres": sum(len(c.centres) for c in state.topology.clouds), "tenants": len(state.tenants),
               "systems": sum(len(t.systems) for t in state.tenants.values()), "quotas": len(state.quotas.quotas),
               "tickets": len(state.tickets)}
    if fmt == "json":
        click.echo(json.dumps(summary | {"problems": []}, ensure_ascii=False, indent=2))
    else:
        click.echo("ok: " + ", ".join(f"{v} {k}" for k, v in summary.items() if k != "ok"))


@click.group()
def topology() -> None:
    """The clouds and their centres."""


@topology.command("show")
@output_option
@pass_app
def topology_show(app: AppContext, fmt: str) -> None:
    """One row per centre: cloud, kind, driver, role, site, region, AZs, allocatable capacity."""
    state = load(app)
    rows: list[dict[str, Any]] = []
    for cloud in state.topology.clouds:
        for centre in cloud.centres:
            can = centre.allocatable()
            rows.append({"cloud": cloud.id, "name": cloud.name, "kind": cloud.kind, "driver": cloud.driver,
                         "centre": centre.id, "centre_name": centre.name, "role": centre.role, "site": centre.site,
                         "region": cloud.region_of(centre), "zones": list(centre.availability_zones),
                         "vcpus": can.vcpus, "ram_mb": can.ram_mb, "disk_gb": can.disk_gb})
    emit(rows, fmt, title="topology (capacity × overcommit)")


def _complete_tenants(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Tenant ids for shell completion; silent when the data does not load."""
    from govcloud.model.state import load_state

    app = ctx.find_object(AppContext)
    try:
        state = load_state(app.settings.data if app else DataPaths(), [])
    except ConfigError:
        return []
    return [t for t in state.tenants if t.startswith(incomplete)]


@click.group()
def tenants() -> None:
    """Tenants and their business systems."""


@tenants.command("list")
@output_option
@pass_app
def tenants_list(app: AppContext, fmt: str) -> None:
    """All tenants with kind, parent, clouds and number of business systems."""
    state = load(app)
    rows = [{"id": t.id, "name": t.name, "kind": t.kind, "parent": t.parent or "", "clouds": list(t.clouds),
             "systems": len(t.systems)} for t in state.tenants.values()]
    emit(rows, fmt, title=f"{len(rows)} tenants")


@tenants.command("show")
@click.argument("tenant", shell_complete=_complete_tenants)
@output_option
@pass_app
def tenants_show(app: AppContext, tenant: str, fmt: str) -> None:
    """One tenant: contacts, clouds and business systems."""
    state = load(app)
    found = state.tenants.get(tenant)
    if found is None:
        raise NotFound(f"no tenant '{tenant}' in tenants.yaml (try `govcloud tenants list`)")
    if fmt != "table":
        emit({"id": found.id, "name": found.name, "kind": found.kind, "parent": found.parent, "clouds": list(found.clouds),
              "contacts": [dataclasses.asdict(c) for c in found.contacts],
              "systems": [{"id": s.id, "name": s.name, "protection": s.protection, "owner": s.owner} for s in found.systems]}, fmt)
        return
    click.echo(f"{found.id}  {found.name}  ({found.kind}{', parent ' + found.parent if found.parent else ''})")
    click.echo("clouds: " + ", ".join(found.clouds))
    emit([dataclasses.asdict(c) for c in found.contacts], fmt, columns=["name", "email", "phone"], title="contacts")
    emit([{"id": s.id, "name": s.name, "protection": s.protection, "owner": s.owner} for s in found.systems], fmt,
         title="business systems")


@click.group()
def quota() -> None:
    """Quota limits, reservations and usage per tenant and cloud; why a ticket does not fit."""


@click.command()
def version() -> None:
    """Print govcloud's version."""
    click.echo(__version__)


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    Load it in the running shell with: eval "$(govcloud completion bash)"
    """
    from click.shell_completion import get_completion_class

    root = ctx.find_root().command
    cls = get_completion_class(shell)
    if cls is None:  # click knows these three; kept for clarity should that ever change
        raise click.BadParameter(f"no completion for {shell}")
    click.echo(cls(root, {}, "govcloud", "_GOVCLOUD_COMPLETE").source())


COMMANDS.extend([validate, topology, tenants, quota, version, completion])
