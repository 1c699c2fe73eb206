"""Merge the quota files, apply tiers, and check quotas against tenants, clouds and each other.

Levels checked here (the ledger enforces the same levels at run time):
system sub-limit ≤ tenant's limit in the cloud ≤ what the cloud can give (capacity × overcommit),
and — with ``policy.hierarchy: strict`` — a child's limit ≤ its parent's limit in the same cloud.
"""

from __future__ import annotations

from govcloud.errors import Problem
from govcloud.model.parsed import Parsed
from govcloud.model.quotas import Policy, Quota, QuotaFile, QuotaSet, ResolvedQuota, Total
from govcloud.model.resources import Resources
from govcloud.model.schema import Where
from govcloud.model.tenants import Tenant
from govcloud.model.topology import Topology


def _numbers(resources: Resources, names: list[str]) -> str:
    return ", ".join(f"{n}={getattr(resources, n)}" for n in names)


def _limit_key(where: Where) -> str:
    """Point a 'limit too high' problem at ``limits`` when written, else at the ``tier`` it came from."""
    return "limits" if where.has("limits") else "tier"


def systems_of(tenant: Tenant) -> str:
    """The tenant's system ids, for 'expected …' texts."""
    return ", ".join(s.id for s in tenant.systems) or "(none)"


def _merge(files: list[QuotaFile], problems: list[Problem]) -> tuple[Policy, dict[str, Resources]]:
    """The single policy and the union of tiers; a second policy or a repeated tier is an error."""
    policy: Policy | None = None
    policy_file = ""
    tiers: dict[str, Resources] = {}
    tier_file: dict[str, str] = {}
    for quota_file in files:
        if quota_file.policy is not None:
            if policy is not None:
                problems.append(quota_file.where.problem("policy", found=f"a second policy (first in {policy_file})",
                                                         expected="one policy across all quota files",
                                                         message="duplicate policy"))
            else:
                policy, policy_file = quota_file.policy, quota_file.where.file
        for name, tier in quota_file.tiers.items():
            if name in tiers:
                problems.append(quota_file.where.problem("tiers", found=f"tier '{name}' again (first in {tier_file[name]})",
                                                         expected="each tier defined once", message="duplicate tier"))
                continue
            tiers[name], tier_file[name] = tier.resources(), quota_file.where.file
    return policy or Policy(), tiers


def _limit(entry: Quota | Total, tiers: dict[str, Resources], parsed: Parsed, problems: list[Problem]) -> Resources | None:
    """Tier values overridden by explicit limits; a problem when a resource is given by neither."""
    base = None
    if entry.tier is not None:
        base = tiers.get(entry.tier)
        if base is None and parsed.known("tier", entry.tier):
            return None  # the tier is written but broken: its own problem says why
        if base is None:
            problems.append(entry.where.problem("tier", found=f"'{entry.tier}'",
                                                expected="one of the tiers: " + (", ".join(sorted(tiers)) or "(none defined)"),
                                                message="unknown tier"))
            return None
    limit = entry.limits.over(base)
    if limit is None:
        problems.append(entry.where.problem("limits", found="limits without " + ", ".join(entry.limits.missing()),
                                            expected="a tier, or limits for instances, vcpus, ram_mb and disk_gb",
                                            message="incomplete quota"))
    return limit


def _check_reference(quota: Quota, parsed: Parsed, tenants: dict[str, Tenant], problems: list[Problem]) -> bool:
    """The quota names a known tenant and one of that tenant's clouds."""
    ok = True
    if not parsed.known("tenant", quota.tenant):
        problems.append(quota.where.problem("tenant", found=f"'{quota.tenant}'", expected="a tenant id of tenants.yaml",
                                            message="unknown tenant"))
        ok = False
    if not parsed.known("cloud", quota.cloud):
        problems.append(quota.where.problem("cloud", found=f"'{quota.cloud}'", expected="a cloud id of inventory/topology.yaml",
                                            message="unknown cloud"))
        ok = False
    tenant = tenants.get(quota.tenant)
    if ok and tenant is not None and quota.cloud not in tenant.clouds:
        problems.append(quota.where.problem("cloud", found=f"'{quota.cloud}'",
                                            expected=f"one of the clouds of tenant '{tenant.id}': " + ", ".join(tenant.clouds),
                                            message="cloud not allowed for this tenant"))
        ok = False
    return ok


def _check_systems(quota: Quota, limit: Resources, tenant: Tenant | None, parsed: Parsed,
                   problems: list[Problem]) -> dict[str, Resources]:
    """Each system sub-limit names a system of the tenant and fits inside the tenant's limit."""
    result: dict[str, Resources] = {}
    for system_id, sub in quota.systems.items():
        where = quota.where.child("systems", system_id)
        if tenant is not None and tenant.system(system_id) is None and f"{tenant.id}/{system_id}" not in parsed.declared.get("system", ()):
            problems.append(where.problem(found=f"'{system_id}'", expected=f"a business system of tenant '{tenant.id}': {systems_of(tenant)}",
                                          message="unknown business system"))
            continue
        resources = sub.resources()
        over = resources.exceeding(limit)
        if over:
            problems.append(where.problem(found=_numbers(resources, over),
                                          expected=f"at most the tenant's limit in {quota.cloud}: {_numbers(limit, over)}",
                                          message="system sub-limit exceeds the tenant's quota"))
        result[system_id] = resources
    return result


def _check_capacity(quota: ResolvedQuota, topology: Topology | None, problems: list[Problem]) -> None:
    cloud = topology.cloud(quota.cloud) if topology else None
    if cloud is None:
        return
    can_give = cloud.allocatable()
    over = quota.limit.exceeding(can_give)
    if over:
        problems.append(quota.where.problem(_limit_key(quota.where), found=_numbers(quota.limit, over),
                                            expected=f"at most what cloud '{cloud.id}' can give (capacity × overcommit): {_numbers(can_give, over)}",
                                            message="quota exceeds the cloud's capacity"))


def _check_hierarchy(quotas: dict[tuple[str, str], ResolvedQuota], tenants: dict[str, Tenant], parsed: Parsed,
                     problems: list[Problem]) -> None:
    """Strict policy: a child's limit in a cloud fits inside its parent's limit in that cloud."""
    for (tenant_id, cloud_id), quota in sorted(quotas.items()):
        parent_id = tenants[tenant_id].parent if tenant_id in tenants else None
        if parent_id is None or parent_id not in tenants:
            continue
        parent_quota = quotas.get((parent_id, cloud_id))
        if parent_quota is None and f"{parent_id}/{cloud_id}" in parsed.declared.get("quota", ()):
            continue  # written but broken: reported where it is written
        if parent_quota is None:
            problems.append(quota.where.problem("cloud", found=f"no quota for parent '{parent_id}' in '{cloud_id}'",
                                                expected="the parent to have a quota in every cloud its children use (policy hierarchy: strict)",
                                                message="child quota without a parent quota"))
            continue
        over = quota.limit.exceeding(parent_quota.limit)
        if over:
            allowed = _numbers(parent_quota.limit, over)
            problems.append(quota.where.problem(_limit_key(quota.where), found=_numbers(quota.limit, over),
                                                expected=f"at most the limit of parent '{parent_id}' in cloud '{cloud_id}': {allowed} "
                                                         "(policy hierarchy: strict)",
                                                message="quota exceeds the parent's quota"))


def _resolve_totals(files: list[QuotaFile], tiers: dict[str, Resources], parsed: Parsed, problems: list[Problem]) -> dict[str, Resources]:
    totals: dict[str, Resources] = {}
    for quota_file in files:
        for total in quota_file.totals:
            if not parsed.known("tenant", total.tenant):
                problems.append(total.where.problem("tenant", found=f"'{total.tenant}'", expected="a tenant id of tenants.yaml",
                                                    message="unknown tenant"))
                continue
            if total.tenant in totals:
                problems.append(total.where.problem("tenant", found=f"a second total for '{total.tenant}'",
                                                    expected="one total per tenant", message="duplicate total"))
                continue
            limit = _limit(total, tiers, parsed, problems)
            if limit is not None:
                totals[total.tenant] = limit
    return totals


def resolve_quotas(parsed: Parsed, topology: Topology | None, tenants: dict[str, Tenant], problems: list[Problem]) -> QuotaSet:
    """Merge, resolve and check every quota file."""
    policy, tiers = _merge(parsed.quota_files, problems)
    quotas: dict[tuple[str, str], ResolvedQuota] = {}
    for quota_file in parsed.quota_files:
        for quota in quota_file.quotas:
            if not _check_reference(quota, parsed, tenants, problems):
                continue
            key = (quota.tenant, quota.cloud)
            if key in quotas:
                first = quotas[key].where
                problems.append(quota.where.problem("cloud",
                                                    found=f"a second quota for '{quota.tenant}' in '{quota.cloud}' "
                                                          f"(first at {first.file}:{first.line})",
                                                    expected="one quota per tenant and cloud", message="duplicate quota"))
                continue
            limit = _limit(quota, tiers, parsed, problems)
            if limit is None:
                continue
            systems = _check_systems(quota, limit, tenants.get(quota.tenant), parsed, problems)
            resolved = ResolvedQuota(tenant=quota.tenant, cloud=quota.cloud, limit=limit,
                                     warn_at=quota.warn_at if quota.warn_at is not None else policy.warn_at,
                                     systems=systems, where=quota.where)
            _check_capacity(resolved, topology, problems)
            quotas[key] = resolved
    if policy.hierarchy == "strict":
        _check_hierarchy(quotas, tenants, parsed, problems)
    totals = _resolve_totals(parsed.quota_files, tiers, parsed, problems)
    return QuotaSet(policy=policy, tiers=tiers, quotas=quotas, totals=totals)
