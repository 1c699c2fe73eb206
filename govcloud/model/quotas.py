"""Quota files: a policy, named tiers, per tenant × cloud limits, system sub-limits and totals."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Literal

from govcloud.model.resources import FullResources, PartialResources, Resources
from govcloud.model.schema import NOWHERE, Range, Slug, Where

Id = Annotated[str, Slug()]
Fraction = Annotated[float, Range(minimum=0.0, maximum=1.0)]


@dataclass(frozen=True)
class Policy:
    """How strictly the hierarchy of tenants is enforced, and the default warning threshold."""

    hierarchy: Literal["strict", "loose"] = "strict"
    warn_at: Fraction = 0.8


@dataclass(frozen=True)
class Quota:
    """A tenant's limit in one cloud: a tier, explicit limits, or a tier with overrides."""

    tenant: Id
    cloud: Id
    tier: Id | None = None
    limits: PartialResources = field(default_factory=PartialResources)
    warn_at: Fraction | None = None
    systems: dict[str, FullResources] = field(default_factory=dict)
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Total:
    """A tenant's limit summed over all its clouds."""

    tenant: Id
    tier: Id | None = None
    limits: PartialResources = field(default_factory=PartialResources)
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class QuotaFile:
    """One ``quotas/*.yaml`` file; files are merged into a ``QuotaSet``."""

    version: Literal[1]
    policy: Policy | None = None
    tiers: dict[str, FullResources] = field(default_factory=dict)
    quotas: tuple[Quota, ...] = ()
    totals: tuple[Total, ...] = ()
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class ResolvedQuota:
    """A quota with its tier applied: the numbers the ledger enforces."""

    tenant: str
    cloud: str
    limit: Resources
    warn_at: float
    systems: dict[str, Resources]
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class QuotaSet:
    """All quota files merged and resolved."""

    policy: Policy
    tiers: dict[str, Resources]
    quotas: dict[tuple[str, str], ResolvedQuota]
    totals: dict[str, Resources]

    def of(self, tenant: str, cloud: str) -> ResolvedQuota | None:
        return self.quotas.get((tenant, cloud))

    def for_tenant(self, tenant: str) -> list[ResolvedQuota]:
        return [q for (t, _), q in sorted(self.quotas.items()) if t == tenant]


def overridden(quotas: QuotaSet, overrides: dict[tuple[str, str], Resources]) -> QuotaSet:
    """The quota set with approved quota changes applied on top of the files (new pairs included)."""
    merged = dict(quotas.quotas)
    for (tenant, cloud), limit in overrides.items():
        base = merged.get((tenant, cloud))
        merged[(tenant, cloud)] = (dataclasses.replace(base, limit=limit) if base is not None else
                                   ResolvedQuota(tenant=tenant, cloud=cloud, limit=limit, warn_at=quotas.policy.warn_at, systems={}))
    return dataclasses.replace(quotas, quotas=merged)
