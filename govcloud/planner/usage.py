"""A snapshot of what is reserved and committed, as the quota check needs it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from govcloud.model.ledger import LedgerLine
from govcloud.model.resources import Resources

K = TypeVar("K")


@dataclass(frozen=True)
class Usage:
    """Sums of ledger lines at every level the quota check looks at."""

    tenant_cloud: Mapping[tuple[str, str], Resources] = field(default_factory=dict)
    system_cloud: Mapping[tuple[str, str, str], Resources] = field(default_factory=dict)
    centre: Mapping[tuple[str, str], Resources] = field(default_factory=dict)
    reserved: Mapping[tuple[str, str], Resources] = field(default_factory=dict)
    committed: Mapping[tuple[str, str], Resources] = field(default_factory=dict)

    @classmethod
    def from_lines(cls, lines: Iterable[LedgerLine]) -> Usage:
        """Aggregate ledger lines; DR lines count against the centre, not the tenant's quota."""
        tenant_cloud: dict[tuple[str, str], Resources] = {}
        system_cloud: dict[tuple[str, str, str], Resources] = {}
        centre: dict[tuple[str, str], Resources] = {}
        reserved: dict[tuple[str, str], Resources] = {}
        committed: dict[tuple[str, str], Resources] = {}
        for line in lines:
            _add(centre, (line.cloud, line.centre), line.resources)
            if line.kind == "dr":
                continue
            _add(tenant_cloud, (line.tenant, line.cloud), line.resources)
            _add(system_cloud, (line.tenant, line.cloud, line.system), line.resources)
            _add(reserved if line.state == "reserved" else committed, (line.tenant, line.cloud), line.resources)
        return cls(tenant_cloud, system_cloud, centre, reserved, committed)

    def of_tenant(self, tenant: str, cloud: str) -> Resources:
        return self.tenant_cloud.get((tenant, cloud), Resources())

    def of_system(self, tenant: str, cloud: str, system: str) -> Resources:
        return self.system_cloud.get((tenant, cloud, system), Resources())

    def of_centre(self, cloud: str, centre: str) -> Resources:
        return self.centre.get((cloud, centre), Resources())

    def of_tenant_total(self, tenant: str) -> Resources:
        return sum((r for (t, _), r in self.tenant_cloud.items() if t == tenant), Resources())


def _add(target: dict[K, Resources], key: K, value: Resources) -> None:
    target[key] = target.get(key, Resources()) + value
