"""``rates.yaml``: what an hour of a resource costs, what an hour of failover room costs, the service
levels the operator is assessed against, and what "idle" means — the terms of the assessment reports.

It lives beside tenants.yaml, not in quotas/: every ``quotas/*.yaml`` is merged as a quota file, and a
rate card is not one. Prices are per resource-hour (an instance, a vCPU, a GiB of RAM, a GiB of disk),
by default and per cloud; DR reservations (failover room held in another centre) have their own card,
because room that is only reserved costs the province less than a running VM. Loaded like every data
file (model/loading.py): a problem names file, line and key, and the CLI exits 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from govcloud.errors import ConfigError, Problem
from govcloud.model.parsed import Parsed
from govcloud.model.resources import Resources
from govcloud.model.schema import NOWHERE, NonEmpty, Range, Where
from govcloud.model.state import read_as
from govcloud.model.topology import Topology

Price = Annotated[float, Range(minimum=0.0)]
Hours = Annotated[float, Range(minimum=0.0)]
Percent = Annotated[float, Range(minimum=0.0, maximum=100.0)]
Days = Annotated[int, Range(minimum=1, maximum=366)]


@dataclass(frozen=True)
class RateCard:
    """Prices per hour of one instance, one vCPU, one GiB of RAM, one GiB of disk."""

    instance_hour: Price = 0.0
    vcpu_hour: Price = 0.0
    ram_gb_hour: Price = 0.0
    disk_gb_hour: Price = 0.0
    where: Where = field(default=NOWHERE, compare=False, repr=False)

    def cost(self, hours: Resources | ResourceHours) -> float:
        """The price of ``hours`` resource-hours (RAM in MiB-hours, as the ledger counts it)."""
        return (hours.instances * self.instance_hour + hours.vcpus * self.vcpu_hour + hours.ram_mb / 1024 * self.ram_gb_hour
                + hours.disk_gb * self.disk_gb_hour)


@dataclass(frozen=True)
class ResourceHours:
    """Resource-hours: instance-hours, vCPU-hours, MiB-hours of RAM, GiB-hours of disk (floats: pro-rated)."""

    instances: float = 0.0
    vcpus: float = 0.0
    ram_mb: float = 0.0
    disk_gb: float = 0.0

    def __add__(self, other: ResourceHours) -> ResourceHours:
        return ResourceHours(self.instances + other.instances, self.vcpus + other.vcpus, self.ram_mb + other.ram_mb,
                             self.disk_gb + other.disk_gb)


@dataclass(frozen=True)
class DrRates:
    """The card for DR reservations, by default and per cloud."""

    default: RateCard = field(default_factory=RateCard)
    clouds: dict[str, RateCard] = field(default_factory=dict)
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Sla:
    """Hours the operator has for each stretch of a ticket's life (the service report counts misses)."""

    approve_hours: Hours = 24.0
    """submitted → approved (the office's own part: approvers are the office, not the operator)."""
    provision_hours: Hours = 8.0
    """approved → active (the operator's part)."""
    total_hours: Hours = 48.0
    """submitted → active (what the department waited)."""
    availability_percent: Percent = 99.9
    """Share of the month a centre must not be recorded ``down``."""
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class IdleRule:
    """A VM is idle on a day when its CPU and its memory use both stay below these; listed when idle ``days``."""

    cpu_percent: Percent = 5.0
    memory_percent: Percent = 30.0
    days: Days = 7
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Rates:
    """The whole file."""

    version: Literal[1]
    currency: Annotated[str, NonEmpty()] = "CNY"
    default: RateCard = field(default_factory=RateCard)
    clouds: dict[str, RateCard] = field(default_factory=dict)
    dr: DrRates = field(default_factory=DrRates)
    sla: Sla = field(default_factory=Sla)
    idle: IdleRule = field(default_factory=IdleRule)
    where: Where = field(default=NOWHERE, compare=False, repr=False)

    def card(self, cloud: str, kind: str = "vm") -> RateCard:
        """The card that prices ``kind`` (``vm`` or ``dr``) in ``cloud``."""
        if kind == "dr":
            return self.dr.clouds.get(cloud, self.dr.default)
        return self.clouds.get(cloud, self.default)


def _unknown_clouds(rates: Rates, topology: Topology) -> list[Problem]:
    known = {c.id for c in topology.clouds}
    problems = []
    for owner, path in ((rates.clouds, ("clouds",)), (rates.dr.clouds, ("dr", "clouds"))):
        for cloud in owner:
            if cloud not in known:
                problems.append(rates.where.child(*path).problem(cloud, found=repr(cloud), expected="a cloud of inventory/topology.yaml",
                                                                 message="unknown cloud"))
    return problems


def load_rates(path: Path, *, root: Path, topology: Topology) -> Rates:
    """Read and check ``path``; a ConfigError names file, line and key of every problem (a missing file
    included: the cost reports cannot be made without it)."""
    parsed = Parsed()
    rates, _ = read_as(Rates, path, root, parsed)
    problems = list(parsed.problems)
    if rates is not None and not problems:
        problems = _unknown_clouds(rates, topology)
    if problems or rates is None:
        raise ConfigError(problems or [Problem(file=str(path), line=0, key="", found="nothing usable", expected="a rates file",
                                               message="cannot load")])
    return rates
