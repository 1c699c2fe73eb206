"""The quota check at every level, with the numbers an approver needs to decide.

Levels, from narrowest to widest:
``system``   the business system's sub-limit in a cloud (when quotas/ defines one)
``tenant``   the tenant's limit in a cloud
``parent``   with a strict hierarchy, each ancestor's limit in that cloud covers the ancestor and all
             its descendants together (as keystone's strict-two-level unified limits do)
``total``    the tenant's limit summed over all clouds (when quotas/ defines ``totals``)
``centre``   a centre's capacity × overcommit, shared by every tenant, DR reservations included
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from govcloud.model.parsed import DesiredState
from govcloud.model.resources import RESOURCE_NAMES, Resources
from govcloud.planner.usage import Usage


@dataclass(frozen=True)
class LevelCheck:
    """One limit looked at: ``before`` is reserved + committed now, ``after`` adds this ticket."""

    level: str
    scope: str
    cloud: str
    limit: Resources
    before: Resources
    after: Resources

    @property
    def exceeded(self) -> list[str]:
        return self.after.exceeding(self.limit)

    @property
    def ok(self) -> bool:
        return not self.exceeded

    def explain(self) -> str:
        """``tenant gd-gat in gd-prov: vcpus 780 + 40 = 820 > 800``, one clause per exceeded resource."""
        parts = []
        for name in self.exceeded or list(RESOURCE_NAMES):
            before, after, limit = getattr(self.before, name), getattr(self.after, name), getattr(self.limit, name)
            parts.append(f"{name} {before} + {after - before} = {after} {'>' if after > limit else '≤'} {limit}")
        return f"{self.level} limit of {self.scope}: " + "; ".join(parts)

    def free(self) -> Resources:
        """What is left under this limit before the ticket (never negative)."""
        left = self.limit - self.before
        return Resources(*(max(0, getattr(left, n)) for n in RESOURCE_NAMES))


def fits(free: Resources, size: Resources) -> int:
    """How many VMs of ``size`` fit into ``free``."""
    counts = [getattr(free, n) // getattr(size, n) for n in RESOURCE_NAMES if getattr(size, n) > 0]
    return min(counts) if counts else 0


def _ancestors(state: DesiredState, tenant: str) -> list[str]:
    chain, current = [], state.tenants[tenant].parent
    while current is not None and current in state.tenants and current not in chain:
        chain.append(current)
        current = state.tenants[current].parent
    return chain


def _subtree_usage(state: DesiredState, usage: Usage, root: str, cloud: str) -> Resources:
    """Usage of ``root`` and every tenant below it in ``cloud``."""
    total = Resources()
    for tenant_id in state.tenants:
        if tenant_id == root or root in _ancestors(state, tenant_id):
            total = total + usage.of_tenant(tenant_id, cloud)
    return total


def check_levels(state: DesiredState, usage: Usage, *, tenant: str, system: str,
                 per_cloud: Mapping[str, Resources], per_centre: Mapping[tuple[str, str], Resources]) -> list[LevelCheck]:
    """Every limit the demand touches, in the order an approver reads them."""
    checks: list[LevelCheck] = []
    for cloud, demand in sorted(per_cloud.items()):
        quota = state.quotas.of(tenant, cloud)
        limit = quota.limit if quota else Resources()
        sub = quota.systems.get(system) if quota else None
        if sub is not None:
            before = usage.of_system(tenant, cloud, system)
            checks.append(LevelCheck("system", f"system {system} of {tenant} in {cloud}", cloud, sub, before, before + demand))
        before = usage.of_tenant(tenant, cloud)
        checks.append(LevelCheck("tenant", f"tenant {tenant} in {cloud}", cloud, limit, before, before + demand))
        if state.quotas.policy.hierarchy == "strict":
            for ancestor in _ancestors(state, tenant):
                parent_quota = state.quotas.of(ancestor, cloud)
                if parent_quota is not None:
                    before = _subtree_usage(state, usage, ancestor, cloud)
                    checks.append(LevelCheck("parent", f"parent {ancestor} (with its children) in {cloud}", cloud,
                                             parent_quota.limit, before, before + demand))
    total_limit = state.quotas.totals.get(tenant)
    if total_limit is not None and per_cloud:
        before = usage.of_tenant_total(tenant)
        demand = sum(per_cloud.values(), Resources())
        checks.append(LevelCheck("total", f"tenant {tenant} across all clouds", "*", total_limit, before, before + demand))
    for (cloud, centre_id), demand in sorted(per_centre.items()):
        found = state.topology.cloud(cloud)
        centre = found.centre(centre_id) if found else None
        if centre is not None:
            before = usage.of_centre(cloud, centre_id)
            checks.append(LevelCheck("centre", f"centre {centre_id} of {cloud} (capacity × overcommit)", cloud,
                                     centre.allocatable(), before, before + demand))
    return checks
