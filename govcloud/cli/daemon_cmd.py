"""``govcloud daemon``, ``govcloud reconcile``, ``govcloud status`` and ``govcloud drift list``.

The daemon runs the engine's own functions on timers (see ``govcloud/daemon.py``); ``reconcile``
runs one reconcile pass from a terminal with the same code; ``status`` and ``drift list`` read what
the daemon recorded (centre health, cycles, findings, daemon instances) without calling any cloud.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from govcloud.cli.app import AppContext, pass_app
from govcloud.cli.output import emit, output_option

COMMANDS: list[click.Command] = []


def _listen(value: str | None) -> tuple[str, int] | None:
    if value is None or value == "none":
        return None
    host, _, port = value.rpartition(":")
    if not port.isdigit():
        raise click.BadParameter(f"{value!r}: expected HOST:PORT (e.g. 127.0.0.1:9478) or 'none'", param_hint="--listen")
    return host or "127.0.0.1", int(port)


@click.command("daemon")
@click.option("--once", is_flag=True, help="One full round (become leader, inbox, apply, leases, reconcile, health), then exit.")
@click.option("--inbox", type=click.Path(file_okay=False, path_type=Path),
              help="Watched directory of ticket files (default: $GOVCLOUD_INBOX or <state dir>/inbox).")
@click.option("--listen", metavar="HOST:PORT|none", help="Address of /metrics, /healthz, /readyz (default 127.0.0.1:9478; 'none' serves nothing).")
@click.option("--policy", type=click.Choice(["correct", "report"]), help="What to do about drift (default: correct).")
@click.option("--apply-interval", type=click.FloatRange(min=0.2), help="Seconds between work passes (inbox, apply, leases).")
@click.option("--reconcile-interval", type=click.FloatRange(min=1), help="Seconds between reconcile passes.")
@click.option("--health-interval", type=click.FloatRange(min=0.5), help="Seconds between centre health probes.")
@click.option("--health-silent-after", type=click.FloatRange(min=0),
              help="Seconds without a compute heartbeat after which a host counts down before nova says so (0, default: "
                   "nova's verdict only); with a fence method the daemon then fences and evacuates early.")
@click.option("--failover", "failover_policy", type=click.Choice(["report", "evacuate", "auto"]),
              help="A centre recorded down: report the plan (default), evacuate its protected VMs, or auto: evacuate where "
                   "its fence method fenced it completely, report elsewhere.")
@click.option("--concurrency", type=click.IntRange(min=1),
              help="Servers created or deleted at once per cloud endpoint, across tickets (default 16).")
@pass_app
def daemon_cmd(app: AppContext, once: bool, inbox: Path | None, listen: str | None, policy: str | None,
               apply_interval: float | None, reconcile_interval: float | None, health_interval: float | None,
               health_silent_after: float | None, failover_policy: str | None, concurrency: int | None) -> None:
    """Run the control plane: inbox, approvals, provisioning, leases, reconcile, centre health, metrics.

    Several daemons may share one PostgreSQL store: one leads (advisory lock), the others stand by
    and take over when it dies. With SQLite, one daemon per database file. SIGTERM finishes the
    ticket in flight; a second SIGTERM exits at once.
    """
    from govcloud.daemon import Daemon, configure_logging, event
    from govcloud.engine.context import build

    settings = app.settings
    changes: dict[str, Any] = {k: v for k, v in {"inbox": inbox, "reconcile_policy": policy, "apply_interval": apply_interval,
                                                  "reconcile_interval": reconcile_interval, "health_interval": health_interval,
                                                  "health_silent_after": health_silent_after, "failover_policy": failover_policy}.items()
                               if v is not None}
    settings = dataclasses.replace(settings, daemon=dataclasses.replace(settings.daemon, **changes), user=settings.user or settings.daemon.identity)
    if concurrency is not None:
        settings = dataclasses.replace(settings, engine=dataclasses.replace(settings.engine, concurrency_per_cloud=concurrency))
    address = _listen(listen) if listen is not None else (settings.exporter.host, settings.exporter.port)
    configure_logging()
    ctx = build(settings, progress=lambda kind, data: event(f"engine {kind}", **data))
    serve = None
    if address is not None:
        from govcloud.exporter.serve import daemon_server

        serve = daemon_server(ctx, host=address[0], port=address[1])
    daemon = Daemon(ctx, settings=settings.daemon, serve=serve)  # refuses an identity without the operator role
    settings.inbox.mkdir(mode=0o711, parents=True, exist_ok=True)  # users reach their own directory, list no one's
    daemon.install_signals()
    raise SystemExit(daemon.run(once=once))


COMMANDS.append(daemon_cmd)


@click.command("reconcile")
@click.option("--policy", type=click.Choice(["correct", "report"]), default="report", show_default=True,
              help="correct: recreate VMs deleted or broken outside govcloud; report: only record.")
@output_option
@pass_app
def reconcile_cmd(app: AppContext, policy: str, fmt: str) -> None:
    """One reconcile pass over every cloud (what the daemon does on its interval)."""
    from govcloud.engine.context import build
    from govcloud.engine.reconcile import reconcile_once

    daemon = app.settings.daemon
    results = reconcile_once(build(app.settings), policy=policy, timeout=daemon.reconcile_timeout,
                             terraform_runs=daemon.reconcile_terraform_runs)
    emit([{"cloud": r.cloud, "servers": r.servers, "drift": sum(d.kind == "drift" for d in r.findings),
           "orphans": sum(d.kind == "orphan" for d in r.findings), "unmanaged": sum(d.kind == "unmanaged" for d in r.findings),
           "corrected": ", ".join(r.corrected), "error": r.error or ""} for r in results if r.servers or r.findings or r.error],
         fmt, title=f"reconcile ({policy})")


COMMANDS.append(reconcile_cmd)


@click.command("status")
@output_option
@pass_app
def status_cmd(app: AppContext, fmt: str) -> None:
    """What the daemon last recorded: daemons (leader), centre health, reconcile cycles per cloud."""
    from govcloud.engine import reads
    from govcloud.engine.context import build

    found = reads.status(build(app.settings, create_store=False))
    daemons, health, cycles = found.daemons, found.health, found.cycles
    data = {
        "daemons": [{"id": d.id, "leader": d.leader, "started_at": d.started_at[:19], "heartbeat_at": d.heartbeat_at[:19]} for d in daemons],
        "centres": [{"cloud": h.cloud, "centre": h.centre, "state": h.state, "since": h.since[:19], "up": f"{h.services_up}/{h.services_total}",
                     "api": "ok" if h.api_ok else "down", "checked_at": h.checked_at[:19],
                     "note": h.detail.get("error", "") or (f"→ {h.detail['pending']['state']}?" if h.detail.get("pending") else "")}
                    for h in health],
        "cycles": [{"cloud": c.cloud, "finished_at": (c.finished_at or "")[:19], "last_success": (c.success_at or "")[:19],
                    "seconds": round(c.duration_s or 0, 2), "servers": c.servers, "drift": c.drift, "orphans": c.orphans,
                    "unmanaged": c.unmanaged, "corrected": c.corrected, "error": c.error or ""} for c in cycles],
    }
    if fmt != "table":
        emit(data, fmt)
        return
    emit(data["daemons"], fmt, title="daemons")
    emit([c for c in data["centres"] if c["state"] != "healthy" or c["cloud"] in found.multi_centre] or data["centres"], fmt,
         title="centres (of clouds with several centres, and any not healthy)")
    emit([c for c in data["cycles"] if c["servers"] or c["drift"] or c["orphans"] or c["unmanaged"] or c["error"]], fmt,
         title="reconcile (clouds with servers or findings)")


COMMANDS.append(status_cmd)


@click.group("drift")
def drift() -> None:
    """What reconcile found: drift, orphans, unmanaged servers."""


@drift.command("list")
@click.option("--cloud", help="Only this cloud.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(["drift", "orphan", "unmanaged"]), help="Only these kinds (repeatable).")
@output_option
@pass_app
def drift_list(app: AppContext, cloud: str | None, kinds: tuple[str, ...], fmt: str) -> None:
    """The findings of the newest reconcile pass of each cloud (a requester: its own tenants')."""
    from govcloud.engine import reads
    from govcloud.engine.context import build

    found = reads.findings(build(app.settings, create_store=False), cloud=cloud, kinds=kinds)
    emit([{"cloud": f.cloud, "kind": f.kind, "name": f.name, "ticket": f.ticket or "", "tenant": f.tenant or "",
           "server": f.server_id or "", "first_seen": f.first_seen[:19], "detail": f.detail} for f in found], fmt, title="findings",
         empty="no findings (no reconcile pass recorded one)")


COMMANDS.append(drift)


@click.command("adopt")
@click.argument("server_ids", nargs=-1, required=True)
@click.option("--tenant", required=True, help="The tenant whose project holds the servers.")
@click.option("--system", required=True, help="The business system they belong to (tenants.yaml).")
@click.option("--cloud", required=True, help="Cloud id (topology.yaml).")
@click.option("--centre", required=True, help="Centre id of that cloud.")
@click.option("--ticket", "ticket_id", help="Ticket id to record them under (default: adopt-<random>).")
@output_option
@pass_app
def adopt_cmd(app: AppContext, server_ids: tuple[str, ...], tenant: str, system: str, cloud: str, centre: str,
              ticket_id: str | None, fmt: str) -> None:
    """Record existing servers (see drift list --kind unmanaged) as an observe-only ticket: counted in the
    quota ledger, watched by reconcile, never changed or deleted by govcloud."""
    from govcloud.engine.adopt import adopt
    from govcloud.engine.context import build

    row = adopt(build(app.settings), cloud=cloud, centre=centre, tenant=tenant, system=system, server_ids=server_ids, ticket_id=ticket_id)
    emit({"ticket": row.id, "state": row.state, "mode": row.mode, "servers": list(server_ids)}, fmt, title="adopted")


COMMANDS.append(adopt_cmd)


@click.group("inbox")
def inbox_group() -> None:
    """The daemon's inbox: one directory per user, files there are submitted as that user (docs/daemon.md)."""


@inbox_group.command("add")
@click.argument("user")
@click.option("--owner", "unix_user", required=True, metavar="ACCOUNT", help="The department's Unix account that writes the files.")
@click.option("--daemon-group", metavar="GROUP", help="The daemon's own group, when it does not run as root (mode 0770 instead of 0700).")
@click.option("--inbox", type=click.Path(file_okay=False, path_type=Path),
              help="The inbox (default: $GOVCLOUD_INBOX or <state dir>/inbox).")
@pass_app
def inbox_add(app: AppContext, user: str, unix_user: str, daemon_group: str | None, inbox: Path | None) -> None:
    """Create USER's inbox directory, owned by ACCOUNT, mode 0700 (run as root: it changes the owner)."""
    import grp
    import pwd

    from govcloud.engine.context import build
    from govcloud.engine.inbox import add_user_directory

    try:
        owner = pwd.getpwnam(unix_user).pw_uid
        group = grp.getgrnam(daemon_group).gr_gid if daemon_group else None
    except KeyError as exc:
        raise click.BadParameter(f"no such account or group: {exc.args[0]}") from None
    directory = add_user_directory(build(app.settings), inbox or app.settings.inbox, user, owner=owner, group=group)
    click.echo(f"{directory}: owner {unix_user}, mode {'0770, group ' + daemon_group if daemon_group else '0700'}; "
               f"files there are submitted as {user}")


COMMANDS.append(inbox_group)
