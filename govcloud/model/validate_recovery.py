"""Cross-checks of the recovery plans (``recovery/*.yaml``, ``model/recovery.py``).

Every problem names file, line and key, like the rest of the data: a plan for an unknown cloud or a
cloud named by two files, a system that is not in tenants.yaml (or is in no cloud of the plan's, or
in two groups), a group name used twice, ``depends_on`` naming an unknown group or closing a cycle,
a hook role that ``playbooks/roles`` does not have, hook variables Ansible would read as settings
(``ansible_*``, magic variables, Jinja) — plans are operator data, but the hook's variables reach
Ansible the same way a ticket's do, so the same rule keeps them plain role data.
"""

from __future__ import annotations

from collections.abc import Collection

from govcloud.errors import Problem
from govcloud.model.parsed import Parsed
from govcloud.model.recovery import Emergency, ProtectionGroup, RecoveryPlanFile, RecoveryPlans, recovery_order
from govcloud.model.schema import Where
from govcloud.model.tenants import Tenant
from govcloud.model.users import Users
from govcloud.model.validate_tickets import SAFE_VARS, unsafe_var


def check_recovery(files: list[RecoveryPlanFile], parsed: Parsed, tenants: dict[str, Tenant], roles: Collection[str] | None,
                   problems: list[Problem], users: Users | None = None) -> RecoveryPlans:
    """Check every plan file; the plans of the clouds whose file is sound, in recovery order.
    ``roles``: the role names of ``playbooks/roles`` (None: no such directory, hook roles are not checked).
    ``users``: users.yaml, which must name the approver of an emergency rule (None: not checked)."""
    first_file: dict[str, str] = {}
    plans: dict[str, tuple[ProtectionGroup, ...]] = {}
    emergency: dict[str, Emergency] = {}
    for plan in files:
        if not parsed.known("cloud", plan.cloud):
            problems.append(plan.where.problem("cloud", found=f"'{plan.cloud}'", expected="a cloud id of inventory/topology.yaml",
                                               message="unknown cloud"))
            continue
        if plan.cloud in first_file:
            problems.append(plan.where.problem("cloud", found=f"a second plan for '{plan.cloud}' (first in {first_file[plan.cloud]})",
                                               expected="one recovery plan per cloud", message="duplicate recovery plan"))
            continue
        first_file[plan.cloud] = plan.where.file
        before = len(problems)
        _check_groups(plan, parsed, tenants, roles, problems)
        if plan.emergency is not None and users is not None:
            _check_emergency(plan.emergency, users, problems)
        if len(problems) == before:
            plans[plan.cloud] = recovery_order(plan.groups)
            if plan.emergency is not None:
                emergency[plan.cloud] = plan.emergency
    return RecoveryPlans(plans, emergency)


def _check_emergency(rule: Emergency, users: Users, problems: list[Problem]) -> None:
    """The rule stands for the e-government office's approval: it must name one of its approvers."""
    approvers = sorted(u.id for u in users.users if u.role == "approver")
    user = users.get(rule.approver)
    if user is None or user.role != "approver":
        found = f"'{rule.approver}'" + (f" (role {user.role})" if user is not None else " (not in users.yaml)")
        problems.append(rule.where.problem("approver", found=found, expected="a user of users.yaml with role approver: "
                                           + (", ".join(approvers) or "none defined"), message="emergency rule not written by an approver"))


def _check_groups(plan: RecoveryPlanFile, parsed: Parsed, tenants: dict[str, Tenant], roles: Collection[str] | None,
                  problems: list[Problem]) -> None:
    names: set[str] = set()
    owner: dict[str, str] = {}
    for n, group in enumerate(plan.groups):
        where = plan.where.child("groups", n)
        if group.name in names:
            problems.append(where.problem("name", found=f"'{group.name}' again", expected="each group name once per plan",
                                          message="duplicate group"))
        names.add(group.name)
        for i, ref in enumerate(group.systems):
            _check_system(plan.cloud, ref, group, owner, parsed, tenants, problems, where.child("systems", i))
        if group.hook is not None:
            _check_hook(group, roles, problems)
    for n, group in enumerate(plan.groups):
        for i, dep in enumerate(group.depends_on):
            key = plan.where.child("groups", n, "depends_on", i)
            if dep not in names:
                problems.append(key.problem(found=f"'{dep}'", expected="a group of this plan: " + ", ".join(g.name for g in plan.groups),
                                            message="unknown group"))
            elif dep == group.name:
                problems.append(key.problem(found=f"'{dep}'", expected="another group", message="group depends on itself"))
    cycle = _cycle(plan.groups)
    if cycle:
        n = next(i for i, g in enumerate(plan.groups) if g.name == cycle[0])
        problems.append(plan.where.child("groups", n).problem("depends_on", found=" → ".join([*cycle, cycle[0]]),
                                                              expected="groups that depend on each other without a cycle",
                                                              message="depends_on cycle"))


def _check_system(cloud: str, ref: str, group: ProtectionGroup, owner: dict[str, str], parsed: Parsed, tenants: dict[str, Tenant],
                  problems: list[Problem], where: Where) -> None:
    tenant_id = ref.split("/")[0]
    if not parsed.known("system", ref):
        tenant = tenants.get(tenant_id)
        expected = (f"a business system of tenant '{tenant_id}': " + ", ".join(s.id for s in tenant.systems)) if tenant else \
            "tenant/system naming a tenant of tenants.yaml and one of its systems"
        problems.append(where.problem(found=f"'{ref}'", expected=expected, message="unknown business system"))
        return
    tenant = tenants.get(tenant_id)
    if tenant is not None and cloud not in tenant.clouds:
        problems.append(where.problem(found=f"'{ref}' (tenant in {', '.join(tenant.clouds)})",
                                      expected=f"a system of a tenant with a quota in cloud '{cloud}'", message="system not in this cloud"))
    if ref in owner:
        problems.append(where.problem(found=f"'{ref}' (already in group '{owner[ref]}')", expected="each system in one group",
                                      message="system in two groups"))
    owner.setdefault(ref, group.name)


def _check_hook(group: ProtectionGroup, roles: Collection[str] | None, problems: list[Problem]) -> None:
    hook = group.hook
    assert hook is not None
    if roles is not None and hook.role not in roles:
        problems.append(hook.where.problem("role", found=f"'{hook.role}'", expected="a role of playbooks/roles: " + ", ".join(sorted(roles)),
                                           message="unknown role"))
    for name, value in hook.vars.items():
        found = unsafe_var(str(name), value)
        if found is not None:
            problems.append(hook.where.child("vars").problem(str(name), found=found, expected=SAFE_VARS,
                                                             message="variable not allowed in a hook"))


def _cycle(groups: tuple[ProtectionGroup, ...]) -> list[str]:
    """One depends_on cycle (group names in order), or [] when there is none."""
    edges = {g.name: [d for d in g.depends_on if d != g.name] for g in groups}
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str]:
        colour[name] = 1
        stack.append(name)
        for dep in edges.get(name, []):
            if dep not in edges:
                continue
            if colour.get(dep) == 1:
                return stack[stack.index(dep):]
            if dep not in colour:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        colour[name] = 2
        return []

    for g in groups:
        if g.name not in colour:
            found = visit(g.name)
            if found:
                return found
    return []
