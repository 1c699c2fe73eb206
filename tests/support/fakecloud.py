"""An in-memory compute driver for unit tests of the engine, reconcile and the daemon.

It follows the ``ComputeDriver`` protocol (govcloud/drivers/base.py) closely enough for the engine's
find-or-create logic: servers become ACTIVE at once, names are not unique (nova's aren't), and tests
can break things behind govcloud's back (``vanish``, ``break_server``, ``add_foreign``) or take a
region's API or compute services down (``api_down``, ``services``), or make the next calls of one
method fail (``faults``: method name → the errors its next calls raise, first first; ``create_server:done``
raises after the server was made, as a process killed before it heard nova's answer). ``force_down`` sets nova's flag
(recorded in ``force_calls``). ``evacuate_server`` moves a server at
once, with nova's refusals where the fake knows enough (``services`` of the endpoint): the server's host
still up, an unknown target host. ``live_migrate_server`` (forced) moves a running server whose host is
up to a host that is up, in any zone; ``migrate_server`` (cold) only within the zone the server was
created in (``spec_zone``: nova's request spec, which neither evacuation nor a forced live migration
changes). Both record ``(server id, kind, target host)`` in ``migrations``. ``disable_service`` /
``enable_service`` set a service's status and reason.

Images (replication, issue 14): ``snapshot_server`` makes an active image in the server's endpoint whose
bytes derive from the server id and a counter (as the devcloud's fake hypervisor does), ``read_image``
streams them in chunks (a snapshot carries glance's own ``stores`` property, which an upload may not
name: glance's 403), ``upload_image`` consumes the stream and stores what arrived (``corrupt``: the
next uploads store one byte changed, as a copy garbled on the way); ``snapshot_server:done`` and
``upload_image:done`` faults raise after the image was made (a process killed before it heard). ``images`` holds every image with
its endpoint, tenant and bytes.

Networks (drills, issue 14): ``create_isolated_network`` records a network and its subnet in ``networks``
(no router exists in the fake: ``routers`` stays empty unless a test adds one); a server created on such a
network (``ServerSpec.network`` = its id) gets a port there (``ports``) and an address from its CIDR, and
loses the port when deleted, as nova's ports go with their server. ``tagged`` / ``delete_tagged`` find and
delete by name prefix like the real driver; ``create_isolated_network:done`` raises after the network was made.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from govcloud.drivers.base import ComputeService, Endpoint, Image, ImageData, Network, OnboardResult, Server, ServerSpec, Tagged, TenantSpec
from govcloud.errors import NotFound, PermanentError, TemporaryError
from govcloud.model.resources import Resources


@dataclass
class FakeCloud:
    """Shared by every endpoint's driver, like one keystone in front of several regions."""

    servers: dict[str, tuple[Endpoint, Server]] = field(default_factory=dict)
    projects: dict[str, str] = field(default_factory=dict)
    services: dict[Endpoint, list[ComputeService]] = field(default_factory=dict)
    api_down: set[Endpoint] = field(default_factory=set)
    faults: dict[str, list[BaseException]] = field(default_factory=dict)
    creates: int = 0
    powered_off: set[str] = field(default_factory=set)
    """Hosts a fake fence agent has powered off (their service stays ``down`` when ``forced_down`` is cleared)."""
    force_calls: list[tuple[str, bool]] = field(default_factory=list)
    """Every successful ``force_down`` call, in order: (host, forced)."""
    images: dict[str, tuple[Endpoint, str, Image, bytes]] = field(default_factory=dict)
    """image id → (endpoint, tenant, image, data)."""
    deleted_images: dict[str, tuple[Endpoint, str, Image, bytes]] = field(default_factory=dict)
    """What ``delete_image`` removed from ``images`` (a test compares the bytes of images gone since)."""
    power_calls: list[tuple[str, bool]] = field(default_factory=list)
    """Every ``set_power`` call: (server id, on)."""
    booted_from: dict[str, str] = field(default_factory=dict)
    """Server id → the image it was created from (``ServerSpec.image``)."""
    corrupt: int = 0
    """The next this many uploads store their data with one byte changed."""
    linger: int = 0
    """Listings in which a deleted server still appears, status DELETED (nova lists a server for a while
    after openstacksdk's ``wait_for_delete`` has returned on that status)."""
    _lingering: dict[str, int] = field(default_factory=dict)
    schedule: bool = False
    """Model nova's scheduler: a create comes back BUILD with no host; its host is chosen at create among
    the zone's hosts (``services``) with the fewest members of its server group *already on a host*, and
    set at its first ``wait_for_server``. Members created together therefore land on one host, as in nova,
    unless each waits for the previous one."""
    create_latency: float = 0.0
    """Seconds a create takes (outside any lock): concurrent creates overlap, and ``in_flight`` sees it."""
    in_flight: dict[tuple[Endpoint, str], int] = field(default_factory=dict)
    peak: dict[tuple[Endpoint, str], int] = field(default_factory=dict)
    """Most creates in flight at once per (endpoint, zone); ``peak_endpoint`` per endpoint."""
    peak_endpoint: dict[Endpoint, int] = field(default_factory=dict)
    group_of: dict[str, str] = field(default_factory=dict)
    """Server id → the server group it was created in."""
    spec_zone: dict[str, str] = field(default_factory=dict)
    """Server id → the zone it was created in (nova's request spec: what a cold migration is held to)."""
    migrations: list[tuple[str, str, str]] = field(default_factory=list)
    """Every live or cold migration done: (server id, ``live`` | ``cold``, target host)."""
    networks: dict[str, tuple[Endpoint, Network]] = field(default_factory=dict)
    """network id → (endpoint, network with its subnet): the isolated networks drills made."""
    ports: dict[str, tuple[Endpoint, str, str, str]] = field(default_factory=dict)
    """port id → (endpoint, network id, server id, project id)."""
    routers: dict[str, tuple[Endpoint, set[str]]] = field(default_factory=dict)
    """router id → (endpoint, network ids it joins): none unless a test makes one."""
    _scheduled: dict[str, str] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def driver(self, endpoint: Endpoint) -> FakeDriver:
        return FakeDriver(self, endpoint)

    def project(self, tenant: str) -> str:
        with self._lock:
            for pid, name in self.projects.items():
                if name == tenant:
                    return pid
            pid = f"p-{tenant}"
            self.projects[pid] = tenant
            return pid

    def in_region(self, endpoint: Endpoint) -> list[Server]:
        found = [s for e, s in self.servers.values() if e == endpoint]
        with self._lock:
            for server in found:
                if server.id in self._lingering:
                    self._lingering[server.id] -= 1
                    if self._lingering[server.id] <= 0:
                        del self._lingering[server.id]
                        self.servers.pop(server.id, None)
        return found

    def gone(self, server_id: str) -> None:
        """A deleted server: removed, or still listed as DELETED for ``linger`` listings."""
        with self._lock:
            if self.linger and server_id in self.servers:
                endpoint, server = self.servers[server_id]
                self.servers[server_id] = (endpoint, replace(server, status="DELETED"))
                self._lingering[server_id] = self.linger
            else:
                self.servers.pop(server_id, None)

    def vanish(self, server_id: str) -> None:
        del self.servers[server_id]

    def break_server(self, server_id: str, status: str = "ERROR") -> None:
        endpoint, server = self.servers[server_id]
        self.servers[server_id] = (endpoint, replace(server, status=status, fault="broken by a test"))

    def add_foreign(self, endpoint: Endpoint, *, name: str, tenant: str, zone: str, metadata: dict[str, str] | None = None) -> str:
        server_id = f"s-{next(self._ids)}"
        self.servers[server_id] = (endpoint, Server(id=server_id, name=name, status="ACTIVE", zone=zone, metadata=metadata or {},
                                                    project_id=self.project(tenant), created=f"{next(self._ids):08d}"))
        return server_id


    def images_in(self, endpoint: Endpoint) -> list[Image]:
        return [image for e, _, image, _ in self.images.values() if e == endpoint]

    def data_of(self, image_id: str) -> bytes:
        return self.images[image_id][3]


GLANCE_OWN = {"stores": "file"}
"""Properties glance sets on an image itself (a snapshot read back has them); an upload that names one is refused."""


def _made(image_id: str, name: str, data: bytes, *, disk_format: str, container_format: str, properties: Mapping[str, str],
          number: int) -> Image:
    return Image(id=image_id, name=name, status="active", size=len(data), checksum=hashlib.md5(data, usedforsecurity=False).hexdigest(),
                 hash_algo="sha512", hash_value=hashlib.sha512(data).hexdigest(), disk_format=disk_format,
                 container_format=container_format, properties=dict(properties), created=f"{number:08d}")


class FakeDriver:
    """One endpoint's view of the fake cloud."""

    def __init__(self, cloud: FakeCloud, endpoint: Endpoint) -> None:
        self.cloud = cloud
        self.endpoint = endpoint

    def _api(self, method: str = "") -> None:
        if self.endpoint in self.cloud.api_down:
            raise TemporaryError(f"cannot reach {self.endpoint.cloud}/{self.endpoint.region} (fake outage)", delay=0)
        pending = self.cloud.faults.get(method)
        if pending:
            raise pending.pop(0)

    def ensure_tenant(self, spec: TenantSpec) -> OnboardResult:
        self._api()
        return OnboardResult(tenant=spec.tenant, project_id=self.cloud.project(spec.tenant))

    def find_servers(self, tenant: str, name: str) -> list[Server]:
        self._api()
        pid = self.cloud.project(tenant)
        return sorted((s for s in self.cloud.in_region(self.endpoint) if s.name == name and s.project_id == pid), key=lambda s: s.created)

    def servers(self, tenant: str | None = None) -> Iterator[Server]:
        self._api()
        pid = self.cloud.project(tenant) if tenant else None
        yield from [s for s in self.cloud.in_region(self.endpoint) if pid is None or s.project_id == pid]

    def create_server(self, spec: ServerSpec) -> Server:
        self._api("create_server")
        cloud, key = self.cloud, (self.endpoint, spec.zone)
        with cloud._lock:
            cloud.creates += 1
            number = next(cloud._ids)
            cloud.in_flight[key] = cloud.in_flight.get(key, 0) + 1
            cloud.peak[key] = max(cloud.peak.get(key, 0), cloud.in_flight[key])
            at_endpoint = sum(n for (e, _), n in cloud.in_flight.items() if e == self.endpoint)
            cloud.peak_endpoint[self.endpoint] = max(cloud.peak_endpoint.get(self.endpoint, 0), at_endpoint)
        try:
            if cloud.create_latency:
                time.sleep(cloud.create_latency)
            address = f"10.250.{number // 250}.{number % 250 + 2}"
            network = cloud.networks.get(spec.network)
            if network is not None:
                if network[0] != self.endpoint or network[1].project_id != cloud.project(spec.tenant):
                    raise PermanentError(f"network {spec.network} is not visible to {spec.tenant} in {self.endpoint.region}")
                address = f"{(network[1].cidr or '0.0.0.0/24').rsplit('.', 1)[0]}.{number % 250 + 2}"
                cloud.ports[f"port-{number}"] = (self.endpoint, spec.network, f"s-{number}", cloud.project(spec.tenant))
            server = Server(id=f"s-{number}", name=spec.name, status="ACTIVE", zone=spec.zone, host=f"{spec.zone}-1",
                            address=address, metadata=dict(spec.metadata), project_id=cloud.project(spec.tenant), created=f"{number:08d}")
            cloud.spec_zone[server.id] = spec.zone
            cloud.booted_from[server.id] = spec.image
            if spec.server_group:
                cloud.group_of[server.id] = spec.server_group
            if cloud.schedule:
                with cloud._lock:
                    cloud._scheduled[server.id] = self._least_loaded(spec)
                server = replace(server, status="BUILD", host=None)
            cloud.servers[server.id] = (self.endpoint, server)
        finally:
            with cloud._lock:
                cloud.in_flight[key] -= 1
        self._api("create_server:done")
        return server

    def _least_loaded(self, spec: ServerSpec) -> str:
        """The zone's host with the fewest members of the server group already on a host (first on a tie)."""
        hosts = [s.host for s in self.cloud.services.get(self.endpoint, []) if s.zone == spec.zone] or [f"{spec.zone}-1"]
        members = [s.host for _, s in self.cloud.servers.values()
                   if spec.server_group and self.cloud.group_of.get(s.id) == spec.server_group and s.host]
        return min(hosts, key=lambda h: (members.count(h), hosts.index(h)))

    def _place(self, server_id: str, status: str) -> Server:
        with self.cloud._lock:
            endpoint, server = self.cloud.servers[server_id]
            host = self.cloud._scheduled.pop(server_id, None)
            if host is not None:
                server = replace(server, host=host, status=status)
                self.cloud.servers[server_id] = (endpoint, server)
            return server

    def wait_for_server(self, tenant: str, server_id: str, *, timeout: float) -> Server:
        self._api("wait_for_server")
        if server_id not in self.cloud.servers:
            raise NotFound(f"server {server_id}")
        return self._place(server_id, "ACTIVE")

    def set_power(self, tenant: str, server_id: str, *, on: bool, timeout: float) -> Server:
        self._api("set_power")
        if server_id not in self.cloud.servers:
            raise NotFound(f"server {server_id}")
        with self.cloud._lock:
            endpoint, server = self.cloud.servers[server_id]
            server = replace(server, status="ACTIVE" if on else "SHUTOFF")
            self.cloud.servers[server_id] = (endpoint, server)
            self.cloud.power_calls.append((server_id, on))
        return server

    def delete_server(self, tenant: str, server_id: str, *, ignore_missing: bool = True) -> None:
        self._api("delete_server")
        self.cloud.gone(server_id)
        self._unplug(server_id)

    def _unplug(self, server_id: str) -> None:
        for port_id in [p for p, (_, _, s, _) in self.cloud.ports.items() if s == server_id]:
            del self.cloud.ports[port_id]

    def delete_server_group(self, tenant: str, name: str) -> None:
        self._api()

    def resize_server(self, tenant: str, server_id: str, *, flavor: str | None, size: Resources, timeout: float) -> Server:
        return self.cloud.servers[server_id][1]

    def wait_for_delete(self, tenant: str, server_id: str, *, timeout: float) -> None:
        self._api()

    def get_compute_quota(self, tenant: str) -> Resources:
        return Resources(1000, 1000, 10**7, 10**6)

    def compute_services(self) -> list[ComputeService]:
        self._api()
        return list(self.cloud.services.get(self.endpoint, []))

    def evacuate_server(self, tenant: str, server_id: str, *, host: str, timeout: float) -> Server:
        self._api("evacuate_server")
        if server_id not in self.cloud.servers or self.cloud.servers[server_id][1].project_id != self.cloud.project(tenant):
            raise PermanentError(f"evacuate {server_id}: HTTP 404: Instance {server_id} could not be found.")
        server = self.cloud.servers[server_id][1]
        if server.host == host and server.status == "ACTIVE":
            return server
        services = {s.host: s for s in self.cloud.services.get(self.endpoint, [])}
        if services and host not in services:
            raise PermanentError(f"evacuate {server.name}: HTTP 404: Compute host {host} could not be found.")
        source = services.get(server.host or "")
        if source is not None and source.state == "up" and not source.forced_down:
            raise PermanentError(f"evacuate {server.name}: HTTP 400: Compute service of {server.host} is still in use.")
        zone = services[host].zone if host in services else server.zone
        moved = replace(server, host=host, zone=zone, status="ACTIVE", fault=None)
        self.cloud.servers[server_id] = (self.endpoint, moved)
        return moved

    def force_down(self, host: str, *, forced: bool) -> ComputeService:
        """nova's flag on the service; a forced-down service reports ``down`` (nova's servicegroup does)."""
        self._api("force_down")
        with self.cloud._lock:
            listing = self.cloud.services.get(self.endpoint, [])
            for i, service in enumerate(listing):
                if service.host == host:
                    state = "down" if forced else ("up" if host not in self.cloud.powered_off else "down")
                    listing[i] = replace(service, forced_down=forced, state=state)
                    self.cloud.force_calls.append((host, forced))
                    return listing[i]
        raise PermanentError(f"force down {host}: HTTP 404: Host '{host}' is not a nova-compute service")

    def set_server_meta(self, tenant: str, server_id: str, key: str, value: str | None) -> None:
        self._api("set_server_meta")
        project = self.cloud.project(tenant)
        with self.cloud._lock:
            found = self.cloud.servers.get(server_id)
            if found is None or found[1].project_id != project:
                raise PermanentError(f"set metadata of {server_id}: HTTP 404: Instance {server_id} could not be found.")
            metadata = {k: v for k, v in found[1].metadata.items() if k != key} | ({key: value} if value is not None else {})
            self.cloud.servers[server_id] = (found[0], replace(found[1], metadata=metadata))

    def live_migrate_server(self, tenant: str, server_id: str, *, host: str, timeout: float) -> Server:
        self._api("live_migrate_server")
        server, target = self._movable(tenant, server_id, host)
        if server.host == host and server.status in ("ACTIVE", "SHUTOFF"):
            return server
        if server.status not in ("ACTIVE", "PAUSED"):
            raise TemporaryError(f"live-migrate {server.name}: HTTP 409: Cannot 'os-migrateLive' instance {server_id} while it is in "
                                 f"vm_state {server.status.lower()}", delay=0)
        return self._migrated(server, target, "live")

    def migrate_server(self, tenant: str, server_id: str, *, host: str, timeout: float) -> Server:
        self._api("migrate_server")
        server, target = self._movable(tenant, server_id, host)
        if server.host == host and server.status in ("ACTIVE", "SHUTOFF"):
            return server
        if target.zone != self.cloud.spec_zone.get(server_id, server.zone):
            raise PermanentError(f"cold migration of {server.name} to {host}: nova left it {server.status} on {server.host} "
                                 "(nova's migration: error): No valid host was found.")
        return self._migrated(server, target, "cold")

    def _movable(self, tenant: str, server_id: str, host: str) -> tuple[Server, ComputeService]:
        """The server and the target's service, with nova's refusals: unknown server or host, either host not up."""
        found = self.cloud.servers.get(server_id)
        if found is None or found[1].project_id != self.cloud.project(tenant):
            raise PermanentError(f"migrate {server_id}: HTTP 404: Instance {server_id} could not be found.")
        server = found[1]
        services = {s.host: s for s in self.cloud.services.get(self.endpoint, [])}
        if host not in services:
            raise PermanentError(f"migrate {server.name}: HTTP 400: Compute host {host} could not be found.")
        for end in (services.get(server.host or ""), services[host]):
            if end is not None and (end.state != "up" or end.forced_down) and not (end.host == host == server.host):
                raise PermanentError(f"migrate {server.name}: HTTP 400: Compute service of {end.host} is unavailable at this time.")
        return server, services[host]

    def _migrated(self, server: Server, target: ComputeService, kind: str) -> Server:
        moved = replace(server, host=target.host, zone=target.zone)
        with self.cloud._lock:
            self.cloud.servers[server.id] = (self.endpoint, moved)
            self.cloud.migrations.append((server.id, kind, target.host))
        return moved

    def disable_service(self, host: str, *, reason: str) -> ComputeService:
        self._api("disable_service")
        return self._set_status(host, "disabled", reason)

    def enable_service(self, host: str) -> ComputeService:
        self._api("enable_service")
        return self._set_status(host, "enabled", "")

    def _set_status(self, host: str, status: str, reason: str) -> ComputeService:
        with self.cloud._lock:
            listing = self.cloud.services.get(self.endpoint, [])
            for i, service in enumerate(listing):
                if service.host == host:
                    listing[i] = replace(service, status=status, disabled_reason=reason)
                    return listing[i]
        raise PermanentError(f"no nova-compute service on {host} in {self.endpoint.cloud}/{self.endpoint.region}")

    def projects(self) -> dict[str, str]:
        self._api()
        return dict(self.cloud.projects)

    # -- images ------------------------------------------------------------------------------
    def snapshot_server(self, tenant: str, server_id: str, *, name: str, metadata: Mapping[str, str]) -> Image:
        self._api("snapshot_server")
        found = self.cloud.servers.get(server_id)
        if found is None or found[0] != self.endpoint or found[1].project_id != self.cloud.project(tenant):
            raise PermanentError(f"snapshot server {server_id}: HTTP 404: Instance {server_id} could not be found.")
        number = next(self.cloud._ids)
        data = f"fake-disk server={server_id} snapshot={number}\n".encode() * 200
        image = _made(f"i-{number}", name, data, disk_format="raw", container_format="bare", properties={**metadata, **GLANCE_OWN},
                      number=number)
        self.cloud.images[image.id] = (self.endpoint, tenant, image, data)
        self._api("snapshot_server:done")
        return image

    def wait_for_image(self, tenant: str, image_id: str, *, timeout: float) -> Image:
        self._api("wait_for_image")
        own = self._own(tenant, image_id)
        if own is None:
            raise PermanentError(f"image {image_id} ended deleted in {self.endpoint.region}")
        return own[0]

    def _own(self, tenant: str, image_id: str) -> tuple[Image, bytes] | None:
        found = self.cloud.images.get(image_id)
        if found is None or found[0] != self.endpoint or found[1] != tenant:
            return None
        return found[2], found[3]

    def read_image(self, tenant: str, image_id: str, *, chunk_size: int) -> ImageData:
        self._api("read_image")
        own = self._own(tenant, image_id)
        if own is None:
            raise PermanentError(f"get image {image_id}: HTTP 404: No image found with ID {image_id}")
        _, data = own
        return ImageData(data[i:i + chunk_size] for i in range(0, len(data), chunk_size))

    def upload_image(self, tenant: str, *, name: str, data: Iterable[bytes], size: int, disk_format: str, container_format: str,
                     properties: Mapping[str, str]) -> Image:
        self._api("upload_image")
        if set(properties) & set(GLANCE_OWN):
            raise PermanentError(f"create image {name}: HTTP 403: 403 Forbidden: Attribute '{min(set(properties) & set(GLANCE_OWN))}' is "
                                 "read-only.")
        received = b"".join(data)  # the fake keeps the bytes; the real driver streams them on
        if self.cloud.corrupt > 0 and received:
            self.cloud.corrupt -= 1
            received = bytes([received[0] ^ 0xFF]) + received[1:]
        number = next(self.cloud._ids)
        image = _made(f"i-{number}", name, received, disk_format=disk_format, container_format=container_format,
                      properties=properties, number=number)
        self.cloud.images[image.id] = (self.endpoint, tenant, image, received)
        self._api("upload_image:done")
        return image

    def find_image(self, tenant: str, image_id: str) -> Image | None:
        self._api("find_image")
        own = self._own(tenant, image_id)
        return None if own is None else own[0]

    def images(self, tenant: str, *, name: str) -> list[Image]:
        self._api("images")
        return [i for e, owner, i, _ in self.cloud.images.values() if e == self.endpoint and owner == tenant and i.name == name]

    def delete_image(self, tenant: str, image_id: str, *, ignore_missing: bool = True) -> None:
        self._api("delete_image")
        if self._own(tenant, image_id) is None:
            if not ignore_missing:
                raise NotFound(f"image {image_id}")
            return
        self.cloud.deleted_images[image_id] = self.cloud.images.pop(image_id)

    # -- isolated networks and tagged resources ---------------------------------------------------
    def create_isolated_network(self, tenant: str, *, name: str, cidr: str, description: str) -> Network:
        self._api("create_isolated_network")
        number = next(self.cloud._ids)
        network = Network(id=f"net-{number}", name=name, project_id=self.cloud.project(tenant), subnet_id=f"subnet-{number}", cidr=cidr)
        self.cloud.networks[network.id] = (self.endpoint, network)
        self._api("create_isolated_network:done")
        return network

    def tagged(self, prefix: str) -> list[Tagged]:
        self._api("tagged")
        cloud, here = self.cloud, self.endpoint
        found = [Tagged("server", s.id, s.name, s.project_id) for e, s in list(cloud.servers.values())
                 if e == here and s.name.startswith(prefix) and s.status != "DELETED"]
        nets = {i: n for i, (e, n) in cloud.networks.items() if e == here and n.name.startswith(prefix)}
        found += [Tagged("port", p, nets[n].name, pid) for p, (e, n, _, pid) in cloud.ports.items() if e == here and n in nets]
        found += [Tagged("subnet", n.subnet_id, n.name, n.project_id) for n in nets.values() if n.subnet_id]
        found += [Tagged("network", n.id, n.name, n.project_id) for n in nets.values()]
        found += [Tagged("image", i.id, i.name) for e, _, i, _ in cloud.images.values() if e == here and i.name.startswith(prefix)]
        return found

    def delete_tagged(self, item: Tagged) -> None:
        self._api(f"delete_tagged:{item.kind}")
        cloud = self.cloud
        if item.kind == "server":
            if item.id in cloud.servers and cloud.servers[item.id][0] == self.endpoint:
                cloud.gone(item.id)
                self._unplug(item.id)
        elif item.kind == "port":
            cloud.ports.pop(item.id, None)
        elif item.kind == "subnet":
            for net_id, (e, n) in list(cloud.networks.items()):
                if e == self.endpoint and n.subnet_id == item.id:
                    cloud.networks[net_id] = (e, replace(n, subnet_id=None))
        elif item.kind == "network":
            if any(n == item.id for _, n, _, _ in cloud.ports.values()):
                raise TemporaryError(f"delete network {item.id}: HTTP 409: Unable to complete operation on network {item.id}. "
                                     "There are one or more ports still in use on the network.", delay=0)
            cloud.networks.pop(item.id, None)
        elif item.kind == "image":
            cloud.images.pop(item.id, None)


GZ = Endpoint("devcloud-admin", "gd-gz")
SG = Endpoint("devcloud-admin", "gd-sg")
"""The devcloud's two regions, as the sample data's endpoints profile reaches them."""


def services(zone: str, *states: str) -> list[ComputeService]:
    """Compute services ``<zone>-1``, ``<zone>-2``… of one zone with the given states (``up`` / ``down``)."""
    return [ComputeService(host=f"{zone}-{i}", zone=zone, state=s, status="enabled") for i, s in enumerate(states, 1)]


def three_centres() -> FakeCloud:
    """The devcloud's shape: two hosts up in each of gz-main, gz-backup (region gd-gz) and sg-dr (gd-sg)."""
    fake = FakeCloud()
    fake.services[GZ] = services("gz-main", "up", "up") + services("gz-backup", "up", "up")
    fake.services[SG] = services("sg-dr", "up", "up")
    return fake

