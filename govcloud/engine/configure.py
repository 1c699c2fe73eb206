"""Configuration: a ticket's ACTIVE VMs get the Ansible roles the ticket names; only then is it active.

``provisioning → configuring → active``, or ``config-failed`` with a reason per host; ``govcloud
configure TICKET`` runs again for the hosts that failed only. The inventory comes from govcloud's own
state (``inventory`` below is also what ``govcloud inventory --list`` prints): groups by cloud,
centre, tenant, business system and ticket; host variables with the VM's id, address, flavor and
protection.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from govcloud.engine.context import EngineContext
from govcloud.engine.ticket_base import ticket_of
from govcloud.errors import DriverError, InvalidState
from govcloud.model.access import acting_user, require
from govcloud.model.validate_tickets import unsafe_var
from govcloud.planner.stored import decode
from govcloud.store import tickets as rows
from govcloud.store.tickets import ConfigResult, TicketRow, VmRow


def group_name(*parts: str) -> str:
    """Ansible group names must be identifiers: ``tenant_gd_gat``."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", "_".join(parts))


def _admins(ctx: EngineContext, tenant: str) -> list[dict[str, str]]:
    """The tenant's contacts with an SSH key become admin logins; the user name is the e-mail's local part."""
    result: list[dict[str, str]] = []
    for contact in ctx.state.tenants[tenant].contacts:
        if contact.ssh_key:
            login = re.sub(r"[^a-z0-9_-]", "", (contact.email or "").split("@")[0].lower()) or f"admin{len(result) + 1}"
            result.append({"name": login, "ssh_key": contact.ssh_key})  # the baseline role's argument spec: name, ssh_key, state
    return result


def host_vars(ctx: EngineContext, row: TicketRow, vm: VmRow, protection: str, roles: Sequence[str]) -> dict[str, Any]:
    """Variables of one host: where to reach it, and the labels the roles put into configuration."""
    return {"ansible_host": vm.address, "ansible_python_interpreter": ctx.settings.configure.python,
            "govcloud_vm_id": vm.server_id, "govcloud_vm_name": vm.name, "govcloud_ticket": row.id,
            "govcloud_tenant": row.tenant, "govcloud_system": row.system, "govcloud_cloud": vm.cloud, "govcloud_centre": vm.centre,
            "govcloud_region": vm.region, "govcloud_zone": vm.zone, "govcloud_flavor": vm.flavor, "govcloud_protection": protection,
            "govcloud_roles": list(roles)}


def ticket_vars(variables: dict[str, Any]) -> dict[str, Any]:
    """The ticket's role variables that are safe to hand to Ansible. Validation refuses a ticket with any
    other (model/validate_tickets.unsafe_var); this keeps one stored before that rule from choosing the
    connection (``ansible_host``, ``ansible_ssh_common_args``) or templating code onto the controller,
    and govcloud's own host variables are laid over the ticket's anyway."""
    return {name: value for name, value in variables.items() if unsafe_var(str(name), value) is None}


def inventory(ctx: EngineContext, ticket_ids: Sequence[str] = ()) -> dict[str, Any]:
    """Ansible's dynamic-inventory JSON for the ACTIVE VMs of active or configuring tickets."""
    groups: dict[str, set[str]] = {}
    hostvars: dict[str, dict[str, Any]] = {}
    with ctx.store.transaction() as conn:
        selected = [rows.require(conn, t) for t in ticket_ids] if ticket_ids else rows.listing(
            conn, states=("configuring", "config-failed", "active"))
        members = {row.id: rows.vms_of(conn, row.id) for row in selected}
    for row in selected:
        if row.kind != "create":
            continue
        ticket = ticket_of(row)
        protection = decode(row.plan).protection
        for vm in members[row.id]:
            if vm.status != "ACTIVE" or not vm.address:
                continue
            hostvars[vm.name] = ticket_vars(ticket.vars) | host_vars(ctx, row, vm, protection, ticket.roles)
            for group in (group_name("cloud", vm.cloud), group_name("centre", vm.cloud, vm.centre), group_name("tenant", row.tenant),
                          group_name("system", row.tenant, row.system), group_name("ticket", row.id)):
                groups.setdefault(group, set()).add(vm.name)
    result: dict[str, Any] = {name: {"hosts": sorted(hosts)} for name, hosts in sorted(groups.items())}
    result["all"] = {"children": sorted(groups)}
    result["_meta"] = {"hostvars": hostvars}
    return result


def static_inventory(dynamic: dict[str, Any]) -> dict[str, Any]:
    """The dynamic-inventory JSON as a static inventory (what ansible's YAML plugin and
    ansible-runner's ``inventory=`` expect; inventory/static.example.yml documents it): each host's
    variables once under ``all.hosts.<host>``, the groups under ``all.children.<group>.hosts`` by name
    only (repeating the variables per group made YAML anchors and aliases of every host)."""
    groups: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
        g: {"hosts": {h: {} for h in v["hosts"]}} for g, v in dynamic.items() if g not in ("all", "_meta")}
    return {"all": {"hosts": dict(sorted(dynamic["_meta"]["hostvars"].items())), "children": groups}}


def host_owners(dynamic: dict[str, Any]) -> dict[str, str]:
    """Address → the server id of the VM there now: a changed owner lets the new VM's SSH host key in
    (drivers/known_hosts.py); a VM without a server id yet is owned by its ticket and name."""
    return {v["ansible_host"]: v.get("govcloud_vm_id") or f'{v["govcloud_ticket"]}/{v["govcloud_vm_name"]}'
            for v in dynamic["_meta"]["hostvars"].values()}


def _driver(ctx: EngineContext) -> Any:
    from govcloud.drivers.ansible import AnsibleDriver

    return AnsibleDriver.for_settings(ctx.settings)


def run_configuration(ctx: EngineContext, row: TicketRow, actor: str, *, only_failed: bool = False,
                      driver_factory: Callable[[EngineContext], Any] = _driver) -> tuple[str, str]:
    """Configure the ticket's VMs (all, or those whose last run failed); move the ticket accordingly."""
    ticket = ticket_of(row)
    with ctx.store.transaction() as conn:
        previous = {r.vm: r for r in rows.config_of(conn, row.id)}
        if row.state != "configuring":
            rows.move(conn, row.id, row.state, "configuring", now=ctx.now())
    limit = sorted(vm for vm, r in previous.items() if r.status in ("failed", "unreachable")) if only_failed else []
    inv = inventory(ctx, [row.id])
    extravars = {"govcloud_admins": _admins(ctx, row.tenant), "govcloud_prometheus_url": ctx.settings.configure.prometheus_url}
    ctx.progress("ticket", {"ticket": row.id, "state": "configuring", "total": len(limit or inv["_meta"]["hostvars"])})
    expected = limit or sorted(inv["_meta"]["hostvars"])
    try:
        result = driver_factory(ctx).run(static_inventory(inv), playbook=ctx.settings.configure.playbook, extravars=extravars, limit=limit,
                                         progress=ctx.progress, owners=host_owners(inv))
    except DriverError as exc:  # a timed-out run, no ansible-playbook: no host has a result, all may be retried
        return _record(ctx, row, actor, _NoRun(), expected=expected, roles=ticket.roles, error=str(exc))
    return _record(ctx, row, actor, result, expected=expected, roles=ticket.roles)


class _NoRun:
    """Stands for the result of a run that ended without one (the driver raised)."""

    ident = ""
    rc = -1

    @property
    def hosts(self) -> dict[str, Any]:
        return {}


def _record(ctx: EngineContext, row: TicketRow, actor: str, result: Any, *, expected: Sequence[str], roles: Sequence[str],
            error: str | None = None) -> tuple[str, str]:
    """Per-host results into the store and the audit; the ticket active only when every host is fine."""
    now = ctx.now()
    missing = [h for h in expected if h not in result.hosts]
    bad = {h: r for h, r in result.hosts.items() if r.status in ("failed", "unreachable")}
    with ctx.store.transaction() as conn:
        for host, outcome in result.hosts.items():
            rows.record_config(conn, ConfigResult(row.id, host, result.ident, outcome.status, outcome.changed, outcome.failures, now))
        for host in missing:
            rows.record_config(conn, ConfigResult(row.id, host, result.ident, "failed", 0, (error or f"no result (ansible rc {result.rc})",), now))
        failed = sorted(set(bad) | set(missing))
        reason = "; ".join(f"{h}: {bad[h].status}" + (f" ({bad[h].failures[0]})" if h in bad and bad[h].failures else "")
                           for h in failed if h in bad) or error or ("; ".join(f"{h}: no result" for h in missing))
        state = "config-failed" if failed else "active"
        rows.move(conn, row.id, "configuring", state, now=now, reason=(reason + f". Fix them, then `govcloud configure {row.id}`")
                  if failed else None, **({"active_at": now} if not failed else {}))
        ctx.store.audit.append(actor, f"ticket.{'config-failed' if failed else 'configured'}", f"ticket:{row.id}",
                               {"run": result.ident, "roles": list(roles), "hosts": {h: r.status for h, r in result.hosts.items()},
                                "failed": failed, **({"error": error} if error else {})}, connection=conn)
    ctx.progress("ticket", {"ticket": row.id, "state": state, "reason": reason if failed else ""})
    changed = sum(r.changed for r in result.hosts.values())
    return state, (f"{len(failed)} host(s) failed: {reason}" if failed else f"{len(result.hosts)} host(s) configured, {changed} change(s)")


def configure(ctx: EngineContext, ticket_id: str) -> tuple[str, str]:
    """``govcloud configure TICKET``: retry the hosts that failed (all hosts of an active ticket)."""
    user = acting_user(ctx.state.users, ctx.settings.user)
    require(user, "apply")
    with ctx.store.transaction() as conn:
        row = rows.require(conn, ticket_id)
    if row.state not in ("config-failed", "active", "configuring"):
        raise InvalidState(f"ticket {ticket_id} is {row.state}; only provisioned tickets can be configured")
    return run_configuration(ctx, row, user.id, only_failed=row.state == "config-failed")
