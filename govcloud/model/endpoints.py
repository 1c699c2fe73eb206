"""Where each centre of the topology is reached: clouds.yaml entry, region, availability zone.

By default a centre is reached through its cloud's ``cloud`` entry and its region and AZ as
topology.yaml writes them. A *profile* can overlay this mapping — the devcloud profile
(``inventory/devcloud.yaml``, section ``clouds:``) points the 27 clouds of the sample topology at
one loopback keystone with two regions. A real deployment needs no profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from govcloud.errors import ConfigError, Problem
from govcloud.model import loading
from govcloud.model.schema import Converter
from govcloud.model.topology import TerraformTarget, Topology


@dataclass(frozen=True)
class CentreOverlay:
    region: str | None = None
    availability_zone: str | None = None


@dataclass(frozen=True)
class CloudOverlay:
    """Replacement entry/region/AZ for one cloud (or, under the key ``default``, for all others)."""

    cloud: str | None = None
    region: str | None = None
    availability_zone: str | None = None
    centres: dict[str, CentreOverlay] = field(default_factory=dict)
    terraform: TerraformTarget | None = None
    """Replaces the cloud's ``terraform:`` settings (endpoints, VPC, subnets, images of a test cloud)."""


@dataclass(frozen=True)
class Target:
    """How to reach one centre. ``zone`` is set only when a profile replaces the plan's AZ."""

    entry: str
    region: str
    zone: str | None = None


@dataclass(frozen=True)
class Endpoints:
    """The resolved mapping, (cloud id, centre id) → Target."""

    targets: dict[tuple[str, str], Target]
    profile: str = ""
    terraform: dict[str, TerraformTarget] = field(default_factory=dict)
    """Cloud id → rendering settings, for the clouds with ``driver: terraform`` that have them."""

    def of(self, cloud: str, centre: str) -> Target:
        return self.targets[(cloud, centre)]


def load_overlay(path: Path) -> dict[str, CloudOverlay]:
    """The ``clouds:`` section of a profile file; other sections belong to whoever owns the file."""
    doc = loading.read(path)
    if not isinstance(doc.data, dict) or "clouds" not in doc.data:
        raise ConfigError([Problem(file=doc.file, line=1, key="clouds", found="no 'clouds' section",
                                   expected="a mapping of cloud ids (or 'default') to cloud/region/availability_zone",
                                   message="not a profile")])
    converter = Converter(doc)
    result = converter.convert(dict[str, CloudOverlay], doc.data["clouds"], ("clouds",))
    if converter.problems:
        raise ConfigError(converter.problems)
    return dict(result)


def resolve(topology: Topology, overlay: dict[str, CloudOverlay] | None = None, *, profile: str = "") -> Endpoints:
    """Apply the overlay (if any) to every centre of the topology."""
    overlay = overlay or {}
    default = overlay.get("default")
    targets: dict[tuple[str, str], Target] = {}
    terraform: dict[str, TerraformTarget] = {}
    for cloud in topology.clouds:
        own = overlay.get(cloud.id)
        over = own if own is not None or cloud.driver == "terraform" else default  # ``default`` maps OpenStack clouds only
        settings = own.terraform if own is not None and own.terraform is not None else cloud.terraform
        if cloud.driver == "terraform" and settings is not None:
            terraform[cloud.id] = settings
        for centre in cloud.centres:
            entry, region, zone = cloud.cloud, cloud.region_of(centre), None
            if over is not None:
                entry = over.cloud or entry
                region = over.region or region
                zone = over.availability_zone or zone
                centre_over = over.centres.get(centre.id)
                if centre_over is not None:
                    region = centre_over.region or region
                    zone = centre_over.availability_zone or zone
            targets[(cloud.id, centre.id)] = Target(entry=entry, region=region, zone=zone)
    return Endpoints(targets=targets, profile=profile, terraform=terraform)
