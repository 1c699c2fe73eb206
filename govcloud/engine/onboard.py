"""Tenant onboarding: per tenant and endpoint, the project, govcloud's role, nova quotas, network
access and a security group — ensured idempotently (``govcloud tenants sync``, and before every
provisioning run).

The nova quota is the tenant's limit from quotas/ — a second line of defence behind the ledger.
Where several clouds of the topology share one endpoint (the devcloud maps all 27 onto two regions),
the tenant's limits in those clouds are added up.
"""

from __future__ import annotations

from collections.abc import Sequence

from govcloud.drivers.base import Endpoint, OnboardResult, TenantSpec
from govcloud.engine.context import EngineContext
from govcloud.engine.retry import retrying
from govcloud.errors import NotFound
from govcloud.model.access import acting_user, require
from govcloud.model.resources import Resources

DEFAULT_NETWORK = "gov-shared"


def endpoints_of(ctx: EngineContext, tenant: str) -> dict[Endpoint, Resources]:
    """Every endpoint the tenant's quotas reach, with the nova quota it should have there."""
    result: dict[Endpoint, Resources] = {}
    for quota in ctx.state.quotas.for_tenant(tenant):
        cloud = ctx.state.topology.cloud(quota.cloud)
        if cloud is None or cloud.driver != "openstack":
            continue
        reached = {Endpoint(t.entry, t.region) for t in (ctx.endpoints.of(cloud.id, c.id) for c in cloud.centres)}
        for endpoint in reached:
            result[endpoint] = result.get(endpoint, Resources()) + quota.limit
    return result


def ensure_tenant_for(ctx: EngineContext, tenant: str, endpoint: Endpoint) -> OnboardResult:
    """Onboard one tenant in one endpoint (no-op when everything is already in place)."""
    limits = endpoints_of(ctx, tenant).get(endpoint)
    if limits is None:
        raise NotFound(f"tenant {tenant} has no quota reaching {endpoint.cloud}/{endpoint.region}")
    info = ctx.state.tenants[tenant]
    spec = TenantSpec(tenant=tenant, description=f"{info.name} (govcloud tenant {tenant}, {info.kind})",
                      limits=limits, network=DEFAULT_NETWORK)
    result = retrying(ctx, f"onboard {tenant} in {endpoint.region}", ctx.driver(endpoint).ensure_tenant, spec)
    if result.changed:
        ctx.store.audit.append(ctx.settings.user or "system", "tenant.onboard", f"tenant:{tenant}",
                               {"cloud": endpoint.cloud, "region": endpoint.region, "project": result.project_id,
                                "changed": list(result.changed)})
    ctx.progress("onboard", {"tenant": tenant, "region": endpoint.region, "changed": list(result.changed)})
    return result


def sync(ctx: EngineContext, tenants: Sequence[str] = ()) -> list[tuple[Endpoint, OnboardResult]]:
    """``govcloud tenants sync [TENANT…]``: onboard tenants everywhere their quotas reach."""
    user = acting_user(ctx.state.users, ctx.settings.user)
    require(user, "onboard")
    unknown = [t for t in tenants if t not in ctx.state.tenants]
    if unknown:
        raise NotFound(f"unknown tenant(s): {', '.join(unknown)} (see `govcloud tenants list`)")
    results = []
    for tenant in tenants or list(ctx.state.tenants):
        for endpoint in sorted(endpoints_of(ctx, tenant), key=lambda e: (e.cloud, e.region)):
            results.append((endpoint, ensure_tenant_for(ctx, tenant, endpoint)))
    return results
