"""Ticket YAML: a department's request for VMs, a change to them, or a quota change."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from govcloud.model.resources import Count, PartialResources, Resources
from govcloud.model.schema import NOWHERE, NonEmpty, Range, Slug, Where

Id = Annotated[str, Slug()]
TicketKind = Literal["create", "resize", "delete", "quota-change"]
Protection = Literal["none", "ha", "dr"]
ANY = "any"


@dataclass(frozen=True)
class VmRequest:
    """A group of identical VMs: ``count`` of one size in one cloud (or ``any``)."""

    name: Id
    count: Annotated[int, Range(minimum=1, maximum=1000)]
    image: Annotated[str, NonEmpty()]
    network: Annotated[str, NonEmpty()]
    flavor: str | None = None
    vcpus: Annotated[int, Range(minimum=1)] | None = None
    ram_mb: Annotated[int, Range(minimum=64)] | None = None
    disk_gb: Count | None = None
    cloud: str = ANY
    centre: str = ANY
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class QuotaChange:
    """New limits for the ticket's tenant in one cloud (``kind: quota-change``)."""

    cloud: Id
    limits: PartialResources


@dataclass(frozen=True)
class Ticket:
    """One ticket file."""

    id: Id
    tenant: Id
    system: Id
    requester: Annotated[str, NonEmpty()]
    kind: TicketKind
    reason: Annotated[str, NonEmpty()]
    version: Literal[1] = 1
    protection: Protection | None = None
    expires: datetime.date | None = None
    roles: tuple[Annotated[str, NonEmpty()], ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)
    vms: tuple[VmRequest, ...] = ()
    target: Id | None = None
    quota: QuotaChange | None = None
    where: Where = field(default=NOWHERE, compare=False, repr=False)


def vm_size(request: VmRequest, flavors: dict[str, Resources]) -> Resources | None:
    """One VM of ``request`` as a vector: its flavor's, or its explicit vcpus/ram/disk."""
    if request.flavor is not None:
        return flavors.get(request.flavor)
    if request.vcpus is None or request.ram_mb is None or request.disk_gb is None:
        return None
    return Resources(instances=1, vcpus=request.vcpus, ram_mb=request.ram_mb, disk_gb=request.disk_gb)
