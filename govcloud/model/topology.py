"""The clouds of the 1+N+M government cloud and the data centres that realise them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from govcloud.model.resources import Count, Resources
from govcloud.model.schema import NOWHERE, NonEmpty, Range, Slug, Where

Id = Annotated[str, Slug()]
Name = Annotated[str, NonEmpty()]
CloudKind = Literal["provincial", "sector", "city", "third-party"]
DriverName = Literal["openstack", "terraform"]
CentreRole = Literal["main", "secondary", "dr"]
Ratio = Annotated[float, Range(minimum=0.1, maximum=64.0)]


@dataclass(frozen=True)
class Flavor:
    """A size every cloud offers under the same name (``gc.medium``)."""

    name: Name
    vcpus: Annotated[int, Range(minimum=1)]
    ram_mb: Annotated[int, Range(minimum=64)]
    disk_gb: Count
    where: Where = field(default=NOWHERE, compare=False, repr=False)

    def resources(self) -> Resources:
        """One VM of this flavor as a quota vector."""
        return Resources(instances=1, vcpus=self.vcpus, ram_mb=self.ram_mb, disk_gb=self.disk_gb)


@dataclass(frozen=True)
class Capacity:
    """Physical capacity of a centre (before overcommit)."""

    vcpus: Count
    ram_mb: Count
    disk_gb: Count


@dataclass(frozen=True)
class Overcommit:
    """Allocation ratios, as nova's ``cpu_allocation_ratio`` and friends."""

    cpu: Ratio = 1.0
    ram: Ratio = 1.0
    disk: Ratio = 1.0


@dataclass(frozen=True)
class Centre:
    """A data centre of a cloud: main, same-city secondary, or remote disaster recovery."""

    id: Id
    name: Name
    role: CentreRole
    site: Name
    availability_zones: Annotated[tuple[Annotated[str, NonEmpty()], ...], NonEmpty()]
    capacity: Capacity
    region: str | None = None
    overcommit: Overcommit = field(default_factory=Overcommit)
    where: Where = field(default=NOWHERE, compare=False, repr=False)

    def allocatable(self) -> Resources:
        """Capacity × overcommit: what quotas and placement may hand out. Instances are unbounded."""
        return Resources(
            instances=2**31 - 1,
            vcpus=int(self.capacity.vcpus * self.overcommit.cpu),
            ram_mb=int(self.capacity.ram_mb * self.overcommit.ram),
            disk_gb=int(self.capacity.disk_gb * self.overcommit.disk),
        )


@dataclass(frozen=True)
class TerraformNetwork:
    """A ticket's ``network`` name in a Terraform cloud: the subnet it means, and optionally the range
    govcloud assigns fixed addresses from (``cidr``, from host number ``first``), so that addresses are
    known before the cloud answers and stay the same across re-plans."""

    subnet: Annotated[str, NonEmpty()]
    cidr: str | None = None
    first: Annotated[int, Range(minimum=1)] = 10


@dataclass(frozen=True)
class TerraformTarget:
    """How govcloud renders a Terraform cloud's root modules (``terraform:`` of a cloud with ``driver:
    terraform``, in topology.yaml or replaced by a profile). Names only, never secrets: ``credentials``
    maps the variables terraform's provider reads (``AWS_ACCESS_KEY_ID``…) to the environment
    variables of govcloud's process that hold them."""

    module: Literal["ec2", "openstack"] = "ec2"
    region: str | None = None
    """The provider's region; default: the centre's region (after the profile's overlay)."""
    vpc_id: str = ""
    """ec2: the tenant VPC the security group lives in; openstack: the network id of the ports."""
    endpoints: dict[str, str] = field(default_factory=dict)
    """ec2: service → URL (ec2, sts, iam) for EC2-compatible clouds that are not AWS."""
    skip_checks: bool = False
    """ec2: the provider's ``skip_*`` flags (account id, credentials, region validation) such clouds need."""
    instance_types: dict[str, str] = field(default_factory=dict)
    """govcloud flavor → the cloud's instance type (ec2) or flavor name (openstack)."""
    images: dict[str, str] = field(default_factory=dict)
    """Ticket image name → AMI id (ec2) or image name (openstack)."""
    networks: dict[str, TerraformNetwork] = field(default_factory=dict)
    ssh_cidrs: tuple[str, ...] = ("10.0.0.0/8",)
    ssh_public_key: str | None = None
    key_name: str | None = None
    security_group_ids: tuple[str, ...] = ()
    credentials: dict[str, str] = field(default_factory=dict)
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Cloud:
    """One OpenStack (or Terraform-driven) cloud: the provincial cloud, a sector cloud or a city cloud."""

    id: Id
    name: Name
    kind: CloudKind
    driver: DriverName
    cloud: Annotated[str, NonEmpty()]
    region: Annotated[str, NonEmpty()]
    centres: Annotated[tuple[Centre, ...], NonEmpty()]
    terraform: TerraformTarget | None = None
    """Rendering settings of a ``driver: terraform`` cloud (a profile may replace them)."""
    where: Where = field(default=NOWHERE, compare=False, repr=False)

    def centre(self, centre_id: str) -> Centre | None:
        return next((c for c in self.centres if c.id == centre_id), None)

    def region_of(self, centre: Centre) -> str:
        return centre.region or self.region

    def allocatable(self) -> Resources:
        """Sum of the centres' allocatable resources: the most one tenant could ever get here."""
        total = Resources()
        for centre in self.centres:
            total = total + centre.allocatable()
        return Resources(2**31 - 1, total.vcpus, total.ram_mb, total.disk_gb)


@dataclass(frozen=True)
class Topology:
    """``inventory/topology.yaml``."""

    version: Literal[1]
    clouds: Annotated[tuple[Cloud, ...], NonEmpty()]
    flavors: tuple[Flavor, ...] = ()
    where: Where = field(default=NOWHERE, compare=False, repr=False)

    def cloud(self, cloud_id: str) -> Cloud | None:
        return next((c for c in self.clouds if c.id == cloud_id), None)

    def flavor(self, name: str) -> Flavor | None:
        return next((f for f in self.flavors if f.name == name), None)
