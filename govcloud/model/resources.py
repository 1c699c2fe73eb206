"""Resource vectors: the four things a quota limits and a centre provides."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Annotated

from govcloud.model.schema import Range

Count = Annotated[int, Range(minimum=0)]

RESOURCE_NAMES = ("instances", "vcpus", "ram_mb", "disk_gb")


@dataclass(frozen=True)
class Resources:
    """A complete vector. Units: instances and vcpus are counts, ram in MiB (as nova counts), disk in GiB."""

    instances: int = 0
    vcpus: int = 0
    ram_mb: int = 0
    disk_gb: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(*(getattr(self, n) + getattr(other, n) for n in RESOURCE_NAMES))

    def __sub__(self, other: Resources) -> Resources:
        return Resources(*(getattr(self, n) - getattr(other, n) for n in RESOURCE_NAMES))

    def scaled(self, factor: int) -> Resources:
        """``factor`` copies of this vector (``count`` VMs of one size)."""
        return Resources(*(getattr(self, n) * factor for n in RESOURCE_NAMES))

    def clamped(self) -> Resources:
        """Negative components set to zero."""
        return Resources(*(max(0, getattr(self, n)) for n in RESOURCE_NAMES))

    def exceeding(self, limit: Resources) -> list[str]:
        """Names of the resources where ``self`` is above ``limit``."""
        return [n for n in RESOURCE_NAMES if getattr(self, n) > getattr(limit, n)]

    def as_dict(self) -> dict[str, int]:
        return {n: getattr(self, n) for n in RESOURCE_NAMES}


@dataclass(frozen=True)
class PartialResources:
    """Some of the four resources, as written in a quota's ``limits`` or a tier override."""

    instances: Count | None = None
    vcpus: Count | None = None
    ram_mb: Count | None = None
    disk_gb: Count | None = None

    def over(self, base: Resources | None) -> Resources | None:
        """These values on top of ``base``; None when a resource is given by neither."""
        values = {}
        for f in fields(self):
            mine = getattr(self, f.name)
            value = mine if mine is not None else (getattr(base, f.name) if base else None)
            if value is None:
                return None
            values[f.name] = value
        return Resources(**values)

    def missing(self) -> list[str]:
        """Resources this partial vector does not name."""
        return [f.name for f in fields(self) if getattr(self, f.name) is None]


@dataclass(frozen=True)
class FullResources:
    """All four resources must be written (tiers, sub-limits)."""

    instances: Count
    vcpus: Count
    ram_mb: Count
    disk_gb: Count

    def resources(self) -> Resources:
        return Resources(self.instances, self.vcpus, self.ram_mb, self.disk_gb)
