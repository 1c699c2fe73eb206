"""Ticket checks: references, what each kind needs, and requests no quota could ever satisfy."""

from __future__ import annotations

import datetime
import re
from typing import Any

from govcloud.errors import Problem
from govcloud.model.parsed import Parsed
from govcloud.model.quotas import QuotaSet
from govcloud.model.resources import Resources
from govcloud.model.tenants import Tenant
from govcloud.model.tickets import ANY, Ticket, VmRequest, vm_size
from govcloud.model.topology import Topology
from govcloud.model.validate_quotas import systems_of

VAR_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
RESERVED_VAR_PREFIXES = ("ansible_", "govcloud_")
"""Ansible's connection and behaviour settings (``ansible_host``, ``ansible_connection``,
``ansible_ssh_common_args`` with a ProxyCommand, ``ansible_become_*``, …) and govcloud's own host
variables: a ticket setting one would choose where and how configuration runs."""
MAGIC_VARS = frozenset({
    "hostvars", "groups", "group_names", "inventory_hostname", "inventory_hostname_short", "inventory_dir", "inventory_file",
    "inventory_sources", "play_hosts", "playbook_dir", "role_name", "role_names", "role_path", "omit", "environment",
    "vars", "lookup", "query", "q", "item", "connection", "port", "remote_user", "become", "become_user", "become_method",
    "become_exe", "become_flags", "delegate_to", "delegate_facts", "gather_facts", "strategy", "serial", "module_defaults",
})
"""Ansible's magic variables and play keywords: shadowing them changes what Ansible does, not what a role
configures."""
TEMPLATE_MARKS = ("{{", "{%", "{#")
"""Jinja in a variable is evaluated on the controller (``lookup('pipe', …)`` runs a command there):
ticket values are data, never templates."""
MAX_VARS_DEPTH = 8


def _check_vars(ticket: Ticket, problems: list[Problem]) -> None:
    """Ticket ``vars`` feed the roles' settings only: plain names, no reserved names, no templates."""
    here = ticket.where.child("vars")
    for name, value in ticket.vars.items():
        found = unsafe_var(str(name), value)
        if found is not None:
            problems.append(here.problem(str(name), found=found, expected=SAFE_VARS, message="variable not allowed in a ticket"))


SAFE_VARS = (f"a role variable (lowercase a-z, 0-9 and '_', starting with a letter; not ansible_*, govcloud_* or one of Ansible's "
             f"magic variables) holding plain data without Jinja markers ({{{{ {{% {{#), at most {MAX_VARS_DEPTH} levels deep")


def unsafe_var(name: str, value: Any) -> str | None:
    """Why the ticket variable ``name: value`` must not reach Ansible, or None when it is plain role data.
    Validation refuses such a ticket; configuration leaves such a variable out of a ticket stored before."""
    if not VAR_NAME_RE.fullmatch(name) or name.startswith(RESERVED_VAR_PREFIXES) or name in MAGIC_VARS:
        return f"variable '{name}'"
    return _template_in(value, depth=0)


def _template_in(value: Any, *, depth: int) -> str | None:
    """What makes ``value`` unsafe to hand to Ansible, or None."""
    if depth > MAX_VARS_DEPTH:
        return f"nesting deeper than {MAX_VARS_DEPTH} levels"
    if isinstance(value, str):
        return f"template text {value[:60]!r}" if any(mark in value for mark in TEMPLATE_MARKS) else None
    if isinstance(value, dict):
        items: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return None
    return next((bad for bad in (_template_in(v, depth=depth + 1) for v in items) if bad is not None), None)


_NEEDS = {
    "create": ("vms",),
    "resize": ("vms", "target"),
    "delete": ("target",),
    "quota-change": ("quota",),
}


def _check_kind(ticket: Ticket, problems: list[Problem]) -> None:
    """Each kind has the keys it needs and not the keys of another kind."""
    present = {"vms": bool(ticket.vms), "target": ticket.target is not None, "quota": ticket.quota is not None}
    for key in _NEEDS[ticket.kind]:
        if not present[key] and key not in ticket.where.broken:
            problems.append(ticket.where.problem(key, found="nothing", expected=f"'{key}' for a {ticket.kind} ticket",
                                                 message=f"missing '{key}'"))
    for key, there in present.items():
        if there and key not in _NEEDS[ticket.kind]:
            problems.append(ticket.where.problem(key, found=f"'{key}'", expected=f"no '{key}' in a {ticket.kind} ticket",
                                                 message=f"'{key}' does not belong to kind {ticket.kind}"))
    if ticket.kind in ("create", "resize") and ticket.expires is None and "expires" not in ticket.where.broken:
        problems.append(ticket.where.problem("expires", found="nothing", expected="a lease end date (YYYY-MM-DD)",
                                             message="missing lease"))


def _check_vm(ticket: Ticket, vm: VmRequest, tenant: Tenant | None, topology: Topology, flavors: dict[str, Resources],
              parsed: Parsed, problems: list[Problem]) -> None:
    """Size given exactly one way; cloud and centre known and allowed; protection realisable."""
    explicit = [k for k in ("vcpus", "ram_mb", "disk_gb") if getattr(vm, k) is not None]
    if vm.flavor is not None and explicit:
        problems.append(vm.where.problem(explicit[0], found=f"flavor '{vm.flavor}' and {', '.join(explicit)}",
                                         expected="either a flavor or vcpus/ram_mb/disk_gb", message="size given twice"))
    elif vm.flavor is None and len(explicit) < 3:
        missing = [k for k in ("vcpus", "ram_mb", "disk_gb") if k not in explicit]
        problems.append(vm.where.problem("flavor", found="no flavor" + (f" and no {', '.join(missing)}" if explicit else ""),
                                         expected="a flavor, or all of vcpus, ram_mb and disk_gb", message="VM size missing"))
    elif vm.flavor is not None and vm.flavor not in flavors and not parsed.known("flavor", vm.flavor):
        problems.append(vm.where.problem("flavor", found=f"'{vm.flavor}'", expected="a flavor of inventory/topology.yaml: " + ", ".join(flavors),
                                         message="unknown flavor"))
    if vm.cloud == ANY:
        if vm.centre != ANY:
            problems.append(vm.where.problem("centre", found=f"'{vm.centre}' with cloud any", expected="a cloud when a centre is named",
                                             message="centre without a cloud"))
        return
    cloud = topology.cloud(vm.cloud)
    if not parsed.known("cloud", vm.cloud):
        problems.append(vm.where.problem("cloud", found=f"'{vm.cloud}'", expected="a cloud id of inventory/topology.yaml, or any",
                                         message="unknown cloud"))
    if cloud is None:  # unknown (reported above) or written but broken (reported in topology.yaml)
        return
    if tenant is not None and cloud.id not in tenant.clouds:
        problems.append(vm.where.problem("cloud", found=f"'{vm.cloud}'",
                                         expected=f"one of the clouds of tenant '{tenant.id}': " + ", ".join(tenant.clouds),
                                         message="cloud not allowed for this tenant"))
    if vm.centre != ANY and cloud.centre(vm.centre) is None:
        centres = ", ".join(c.id for c in cloud.centres)
        problems.append(vm.where.problem("centre", found=f"'{vm.centre}'", expected=f"a centre of '{cloud.id}': {centres}, or any",
                                         message="unknown centre"))
    written = [d for d in parsed.declared.get("centre", ()) if d.startswith(f"{cloud.id}/")]
    if len(written) > len(cloud.centres):
        return  # a centre of this cloud is broken (reported in topology.yaml): its roles are unknown
    protection = ticket.protection or _system_protection(ticket, tenant)
    roles = {c.role for c in cloud.centres}
    # ha in a single-centre cloud (most city clouds) degrades to host anti-affinity inside the centre,
    # which placement reports; dr without a dr centre has nowhere to fail over to and is refused.
    need = {"none": set(), "ha": set(), "dr": {"dr"}}[protection]
    if not need <= roles:
        problems.append(vm.where.problem("cloud", found=f"'{cloud.id}' with centres " + ", ".join(sorted(roles)),
                                         expected=f"a cloud with {', '.join(sorted(need))} centres for protection {protection}",
                                         message="protection not possible in this cloud"))


def _system_protection(ticket: Ticket, tenant: Tenant | None) -> str:
    system = tenant.system(ticket.system) if tenant else None
    return system.protection if system else "none"


def _check_demand(ticket: Ticket, tenant: Tenant, topology: Topology, flavors: dict[str, Resources], quotas: QuotaSet,
                  problems: list[Problem]) -> None:
    """A create ticket asking more than the tenant's quotas could ever give is refused outright.
    VMs in clouds that are unknown or broken are left out (their own problems are reported)."""
    per_cloud: dict[str, Resources] = {}
    for vm in ticket.vms:
        size = vm_size(vm, flavors)
        if size is not None and (vm.cloud == ANY or topology.cloud(vm.cloud) is not None):
            per_cloud[vm.cloud] = per_cloud.get(vm.cloud, Resources()) + size.scaled(vm.count)
    everything = sum(per_cloud.values(), Resources())
    for cloud_id, demand in sorted(per_cloud.items()):
        quota = quotas.of(tenant.id, cloud_id) if cloud_id != ANY else None
        if cloud_id != ANY and quota is None:
            problems.append(ticket.where.problem("vms", found=f"no quota for '{tenant.id}' in '{cloud_id}'",
                                                 expected="a quota in quotas/ for the tenant in that cloud", message="no quota"))
            continue
        if quota is not None:
            _over(ticket, demand, quota.limit, f"the limit of tenant '{tenant.id}' in cloud '{cloud_id}'", problems)
            sub = quota.systems.get(ticket.system)
            if sub is not None:
                _over(ticket, demand, sub, f"the sub-limit of system '{ticket.system}' in cloud '{cloud_id}'", problems)
    own = quotas.for_tenant(tenant.id)
    if ticket.kind == "create" and (ANY in per_cloud or len(own) > 1):
        best = sum((q.limit for q in own), Resources())
        _over(ticket, everything, best, f"the limits of tenant '{tenant.id}' summed over all its clouds", problems)
    if ticket.kind == "create" and tenant.id in quotas.totals:
        _over(ticket, everything, quotas.totals[tenant.id], f"the total limit of tenant '{tenant.id}' across clouds", problems)


def _over(ticket: Ticket, demand: Resources, limit: Resources, level: str, problems: list[Problem]) -> None:
    over = demand.exceeding(limit)
    if over:
        found = ", ".join(f"{n}={getattr(demand, n)}" for n in over)
        allowed = ", ".join(f"{n}={getattr(limit, n)}" for n in over)
        problems.append(ticket.where.problem("vms", found=found, expected=f"at most {level}: {allowed}",
                                             message="ticket exceeds what the tenant could ever get"))


def _check_quota_change(ticket: Ticket, tenant: Tenant | None, topology: Topology, quotas: QuotaSet, problems: list[Problem]) -> None:
    """A quota change names at least one limit, in one of the tenant's clouds, and all four when the
    tenant has no quota there yet (there is nothing to keep the others from)."""
    change = ticket.quota
    if change is None or topology.cloud(change.cloud) is None:  # none, or an unknown cloud (reported by the caller)
        return
    where = ticket.where.child("quota")
    missing = change.limits.missing()
    if len(missing) == 4:
        problems.append(where.problem("limits", found="no limit", expected="at least one of " + ", ".join(missing),
                                      message="quota change asks for nothing"))
    if tenant is None:
        return
    if change.cloud not in tenant.clouds:
        problems.append(where.problem("cloud", found=f"'{change.cloud}'",
                                      expected=f"one of the clouds of tenant '{tenant.id}': " + ", ".join(tenant.clouds),
                                      message="cloud not allowed for this tenant"))
    elif missing and len(missing) < 4 and quotas.of(tenant.id, change.cloud) is None:
        problems.append(where.problem("limits", found="no " + ", ".join(missing),
                                      expected=f"all of instances, vcpus, ram_mb, disk_gb: tenant '{tenant.id}' has no quota in "
                                               f"'{change.cloud}' yet", message="new quota incomplete"))


def _check_target(ticket: Ticket, checked: dict[str, Ticket], problems: list[Problem]) -> None:
    """A resize or delete whose target is among the files checked with it must name a create ticket of its
    own tenant (a target elsewhere is in the store, which ``submit`` checks in the same words)."""
    target = checked.get(ticket.target or "") if ticket.kind in ("resize", "delete") else None
    if target is not None and (target.kind != "create" or target.tenant != ticket.tenant):
        problems.append(ticket.where.problem("target", found=f"'{ticket.target}' (no create ticket of tenant '{ticket.tenant}' has this id)",
                                             expected="the id of a create ticket of the same tenant", message="unknown target"))


def _check_lease(ticket: Ticket, today: datetime.date | None, problems: list[Problem]) -> None:
    """A lease that has already ended is refused (``today``: the caller's clock; None checks no date)."""
    if today is not None and ticket.expires is not None and ticket.expires < today:
        problems.append(ticket.where.problem("expires", found=str(ticket.expires), expected=f"a date from today ({today}) on",
                                             message="lease already expired"))


def check_tickets(tickets: tuple[Ticket, ...], parsed: Parsed, topology: Topology | None, tenants: dict[str, Tenant],
                  quotas: QuotaSet, problems: list[Problem], *, today: datetime.date | None = None) -> None:
    """Every ticket: unique id, known tenant and system, kind-specific keys, VMs, demand within reach,
    a quota change that asks for something the tenant may have, a lease not yet over."""
    seen: dict[str, str] = {}
    flavors = {f.name: f.resources() for f in topology.flavors} if topology else {}
    for ticket in tickets:
        if ticket.id in seen:
            problems.append(ticket.where.problem("id", found=f"'{ticket.id}' again (first in {seen[ticket.id]})",
                                                 expected="a unique ticket id", message="duplicate ticket"))
        seen.setdefault(ticket.id, ticket.where.file)
        _check_kind(ticket, problems)
        _check_vars(ticket, problems)
        tenant = tenants.get(ticket.tenant)
        if not parsed.known("tenant", ticket.tenant):
            problems.append(ticket.where.problem("tenant", found=f"'{ticket.tenant}'", expected="a tenant id of tenants.yaml",
                                                 message="unknown tenant"))
        elif tenant is not None and tenant.system(ticket.system) is None and f"{tenant.id}/{ticket.system}" not in parsed.declared.get("system", ()):
            problems.append(ticket.where.problem("system", found=f"'{ticket.system}'",
                                                 expected=f"a business system of '{tenant.id}': {systems_of(tenant)}",
                                                 message="unknown business system"))
        if topology is not None:
            for vm in ticket.vms:
                _check_vm(ticket, vm, tenant, topology, flavors, parsed, problems)
            if ticket.quota is not None and topology.cloud(ticket.quota.cloud) is None:
                problems.append(ticket.where.problem("quota", found=f"cloud '{ticket.quota.cloud}'", expected="a cloud id of inventory/topology.yaml",
                                                     message="unknown cloud"))
            _check_quota_change(ticket, tenant, topology, quotas, problems)
        _check_lease(ticket, today, problems)
        _check_target(ticket, {t.id: t for t in tickets}, problems)
        if tenant is not None and topology is not None and ticket.kind in ("create", "resize"):
            _check_demand(ticket, tenant, topology, flavors, quotas, problems)
