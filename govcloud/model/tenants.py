"""Tenants (departments, cities, party / NPC / CPPCC units) and their business systems."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from govcloud.model.schema import NOWHERE, NonEmpty, OneLine, Slug, SshPublicKey, Where

Id = Annotated[str, Slug()]
Name = Annotated[str, NonEmpty()]
TenantKind = Literal["department", "city", "party", "npc", "cppcc", "other"]
Protection = Literal["none", "ha", "dr"]


@dataclass(frozen=True)
class Contact:
    """A person the operator calls; ``ssh_key`` becomes an admin login on the tenant's VMs."""

    name: Name
    email: Annotated[str, OneLine()] | None = None
    phone: Annotated[str, OneLine()] | None = None
    ssh_key: Annotated[str, SshPublicKey()] | None = None


@dataclass(frozen=True)
class BusinessSystem:
    """An application of a tenant (户籍管理系统); VMs always belong to one."""

    id: Id
    name: Name
    protection: Protection
    owner: Name
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Tenant:
    """A unit with quotas in one or more clouds."""

    id: Id
    name: Name
    kind: TenantKind
    contacts: Annotated[tuple[Contact, ...], NonEmpty()]
    clouds: Annotated[tuple[Id, ...], NonEmpty()]
    systems: tuple[BusinessSystem, ...] = ()
    parent: Id | None = None
    where: Where = field(default=NOWHERE, compare=False, repr=False)

    def system(self, system_id: str) -> BusinessSystem | None:
        return next((s for s in self.systems if s.id == system_id), None)


@dataclass(frozen=True)
class Tenants:
    """``tenants.yaml``."""

    version: Literal[1]
    tenants: tuple[Tenant, ...]
    where: Where = field(default=NOWHERE, compare=False, repr=False)
