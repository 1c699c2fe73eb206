"""The devcloud profile (``inventory/devcloud.yaml``): regions, centres = AZs, hosts, ports, content.

Owns the only YAML read of the devcloud (``read_yaml``) and turns the document into frozen dataclasses,
so every other module works with typed data and a bad file fails once, here, naming file and key.
The CLI calls ``load_profile``; ``up`` stores the resolved profile as JSON in the state directory so
that ``status``/``down``/``fail-centre`` act on the cloud that is running, not on an edited file.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from govcloud.errors import ConfigError, Problem

ROLES = ("main", "secondary", "dr")
REGION_SERVICES = ("nova", "placement", "glance", "neutron")


@dataclass(frozen=True)
class Centre:
    """A data centre = one availability zone (host aggregate) of a region."""

    id: str
    name: str
    role: str
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class Subnet:
    """The provider subnet of ``gov-shared`` in one region; test hosts reuse these addresses."""

    cidr: str
    gateway: str
    pool_start: str
    pool_end: str


@dataclass(frozen=True)
class Region:
    """One OpenStack region: its own nova, placement, glance and neutron, one shared keystone."""

    id: str
    name: str
    ports: Mapping[str, int]
    subnet: Subnet
    centres: tuple[Centre, ...]

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every compute host of the region, centre by centre."""
        return tuple(h for c in self.centres for h in c.hosts)


@dataclass(frozen=True)
class Flavor:
    """A public flavor created in every region."""

    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int


@dataclass(frozen=True)
class CloudTarget:
    """Where a cloud (or one of its centres) of the sample topology lands in the devcloud."""

    cloud: str
    region: str
    availability_zone: str


@dataclass(frozen=True)
class Profile:
    """Everything ``up`` needs to know about the shape of the cloud."""

    regions: tuple[Region, ...]
    flavors: tuple[Flavor, ...]
    keystone_port: int = 5000
    rabbit_port: int = 5672
    rabbit_dist_port: int = 25672
    epmd_port: int = 4369
    image_name: str = "debian-12"
    network_name: str = "gov-shared"
    physical_network: str = "gov"
    report_interval: int = 5
    """Seconds between nova-compute heartbeats."""
    service_down_time: int = 25
    """Seconds without heartbeat before nova reports a compute ``down`` (fail-centre waits this long)."""
    clouds: Mapping[str, Any] = field(default_factory=dict)
    """The ``clouds:`` overlay: ``default`` rule plus per-cloud mappings (see ``cloud_target``)."""

    @property
    def centres(self) -> dict[str, tuple[Region, Centre]]:
        """Centre id → (its region, the centre)."""
        return {c.id: (r, c) for r in self.regions for c in r.centres}

    def tcp_ports(self) -> dict[int, str]:
        """Every TCP port the devcloud binds on 127.0.0.1, with the service that binds it."""
        ports = {self.keystone_port: "keystone", self.rabbit_port: "rabbitmq", self.rabbit_dist_port: "rabbitmq-dist"}
        for region in self.regions:
            for service, port in region.ports.items():
                ports[port] = f"{service}-{region.id}"
        return ports

    def to_json(self) -> str:
        """Serialised form stored by ``up`` (read back with ``profile_from_json``)."""
        return json.dumps(asdict(self), indent=1, ensure_ascii=False)

    def cloud_target(self, cloud_id: str, centre_id: str = "") -> CloudTarget:
        """Map a cloud of the sample topology (and optionally one of its centres) onto the devcloud.

        A cloud listed by id wins (its ``centres`` map, else its own target); anything else gets the
        ``default`` rule, so new sector and city clouds need no edit here.
        """
        rule = self.clouds.get(cloud_id) or self.clouds.get("default") or {}
        centre_rule = (rule.get("centres") or {}).get(centre_id) if centre_id else None
        chosen = {**rule, **(centre_rule or {})}
        return CloudTarget(
            cloud=str(chosen.get("cloud", "devcloud-admin")),
            region=str(chosen.get("region", self.regions[0].id)),
            availability_zone=str(chosen.get("availability_zone", self.regions[0].centres[0].id)),
        )


def read_yaml(path: Path) -> Any:
    """The devcloud's single YAML read (``yaml.safe_load``); errors name the file and the position."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(str(path), 0, "", f"unreadable ({exc.strerror})", "a readable YAML file")]) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        raise ConfigError([Problem(str(path), line, "", "invalid YAML", "a YAML mapping", message=str(exc).splitlines()[0])]) from exc


class _Reader:
    """Pulls typed values out of the raw document and records a ``Problem`` per bad key."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def bad(self, key: str, found: object, expected: str) -> None:
        self.problems.append(Problem(self.file, 0, key, repr(found), expected))

    def mapping(self, data: Any, key: str) -> dict[str, Any]:
        if isinstance(data, dict):
            return data
        self.bad(key, data, "a mapping")
        return {}

    def integer(self, data: Mapping[str, Any], key: str, path: str, default: int | None = None) -> int:
        value = data.get(key, default)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        self.bad(f"{path}.{key}" if path else key, value, "a positive integer")
        return default or 1

    def text(self, data: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
        value = data.get(key, default)
        if isinstance(value, str) and value:
            return value
        self.bad(f"{path}.{key}" if path else key, value, "a non-empty string")
        return default or ""


def _subnet(r: _Reader, raw: Any, path: str) -> Subnet:
    data = r.mapping(raw, path)
    subnet = Subnet(*(r.text(data, k, path) for k in ("cidr", "gateway", "pool_start", "pool_end")))
    try:
        net = ipaddress.ip_network(subnet.cidr)
        for key in ("gateway", "pool_start", "pool_end"):
            if ipaddress.ip_address(getattr(subnet, key)) not in net:
                r.bad(f"{path}.{key}", getattr(subnet, key), f"an address inside {subnet.cidr}")
    except ValueError as exc:
        r.bad(path, asdict(subnet), f"valid IPv4 addresses ({exc})")
    return subnet


def _centre(r: _Reader, cid: str, raw: Any, path: str) -> Centre:
    data = r.mapping(raw, path)
    hosts = data.get("hosts")
    if not (isinstance(hosts, list) and hosts and all(isinstance(h, str) and h for h in hosts)):
        r.bad(f"{path}.hosts", hosts, "a non-empty list of host names")
        hosts = []
    role = r.text(data, "role", path)
    if role not in ROLES:
        r.bad(f"{path}.role", role, " | ".join(ROLES))
    return Centre(id=cid, name=r.text(data, "name", path, cid), role=role, hosts=tuple(hosts))


def _region(r: _Reader, rid: str, raw: Any) -> Region:
    path = f"regions.{rid}"
    data = r.mapping(raw, path)
    ports_raw = r.mapping(data.get("ports"), f"{path}.ports")
    ports = {s: r.integer(ports_raw, s, f"{path}.ports") for s in REGION_SERVICES}
    centres_raw = r.mapping(data.get("centres"), f"{path}.centres")
    centres = tuple(_centre(r, cid, c, f"{path}.centres.{cid}") for cid, c in centres_raw.items())
    if not centres:
        r.bad(f"{path}.centres", centres_raw, "at least one centre")
    return Region(rid, r.text(data, "name", path, rid), ports, _subnet(r, data.get("subnet"), f"{path}.subnet"), centres)


def _check_unique(r: _Reader, regions: tuple[Region, ...], ports: list[int]) -> None:
    """Hosts and centres must be unique across regions, ports across all services."""
    hosts = [h for reg in regions for h in reg.hosts]
    for host in sorted({h for h in hosts if hosts.count(h) > 1}):
        r.bad("regions.*.centres.*.hosts", host, "each host name once")
    for port in sorted({p for p in ports if ports.count(p) > 1}):
        r.bad("ports", port, "each port once")


def profile_from_data(data: Any, file: str) -> Profile:
    """Validate the raw document; raise one ``ConfigError`` listing every problem."""
    r = _Reader(file)
    doc = r.mapping(data, "")
    regions = tuple(_region(r, rid, raw) for rid, raw in r.mapping(doc.get("regions"), "regions").items())
    flavors: list[Flavor] = []
    for name, raw in r.mapping(doc.get("flavors"), "flavors").items():
        fl = r.mapping(raw, f"flavors.{name}")
        flavors.append(Flavor(name, *(r.integer(fl, k, f"flavors.{name}") for k in ("vcpus", "ram_mb", "disk_gb"))))
    ks = r.mapping(doc.get("keystone", {}), "keystone")
    rabbit = r.mapping(doc.get("rabbitmq", {}), "rabbitmq")
    nova = r.mapping(doc.get("nova", {}), "nova")
    image = r.mapping(doc.get("image", {}), "image")
    network = r.mapping(doc.get("network", {}), "network")
    profile = Profile(
        regions=regions,
        flavors=tuple(flavors),
        keystone_port=r.integer(ks, "port", "keystone", 5000),
        rabbit_port=r.integer(rabbit, "port", "rabbitmq", 5672),
        rabbit_dist_port=r.integer(rabbit, "dist_port", "rabbitmq", 25672),
        epmd_port=r.integer(rabbit, "epmd_port", "rabbitmq", 4369),
        image_name=r.text(image, "name", "image", "debian-12"),
        network_name=r.text(network, "name", "network", "gov-shared"),
        physical_network=r.text(network, "physical_network", "network", "gov"),
        report_interval=r.integer(nova, "report_interval", "nova", 5),
        service_down_time=r.integer(nova, "service_down_time", "nova", 25),
        clouds=r.mapping(doc.get("clouds", {}), "clouds"),
    )
    if not regions:
        r.bad("regions", doc.get("regions"), "at least one region")
    all_ports = [profile.keystone_port, profile.rabbit_port, profile.rabbit_dist_port]
    all_ports += [p for reg in regions for p in reg.ports.values()]
    _check_unique(r, regions, all_ports)
    if r.problems:
        raise ConfigError(r.problems)
    return profile


def load_profile(path: Path) -> Profile:
    """Read and validate ``inventory/devcloud.yaml`` (or another profile file)."""
    return profile_from_data(read_yaml(path), str(path))


def profile_from_json(text: str) -> Profile:
    """Inverse of ``Profile.to_json`` (the copy ``up`` keeps in the state directory)."""
    raw = json.loads(text)
    regions = tuple(
        Region(
            id=reg["id"],
            name=reg["name"],
            ports=dict(reg["ports"]),
            subnet=Subnet(**reg["subnet"]),
            centres=tuple(Centre(c["id"], c["name"], c["role"], tuple(c["hosts"])) for c in reg["centres"]),
        )
        for reg in raw.pop("regions")
    )
    flavors = tuple(Flavor(**f) for f in raw.pop("flavors"))
    return Profile(regions=regions, flavors=flavors, **raw)
