"""What the engine asks of a compute driver, in plain data (no SDK objects cross this line)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from govcloud.model.resources import Resources

META_TICKET = "govcloud:ticket"
META_INDEX = "govcloud:index"
META_TENANT = "govcloud:tenant"
META_SYSTEM = "govcloud:system"


@dataclass(frozen=True)
class Endpoint:
    """Where one cloud's centre lives for the API: a clouds.yaml entry and a region."""

    cloud: str
    region: str


@dataclass(frozen=True)
class TenantSpec:
    """What onboarding ensures for a tenant in one endpoint."""

    tenant: str
    description: str
    limits: Resources
    network: str


@dataclass(frozen=True)
class ServerSpec:
    """One VM to create (or find) in a tenant's project."""

    name: str
    tenant: str
    zone: str
    flavor: str | None
    size: Resources
    image: str
    network: str
    metadata: Mapping[str, str]
    server_group: str | None = None


@dataclass(frozen=True)
class Server:
    """A VM as the cloud reports it."""

    id: str
    name: str
    status: str
    zone: str | None = None
    host: str | None = None
    address: str | None = None
    fault: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    created: str = ""
    project_id: str | None = None
    flavor: str | None = None
    size: Resources | None = None
    """The flavor's vCPU, RAM and disk as nova embeds them in the server (what adoption counts)."""


@dataclass(frozen=True)
class Image:
    """An image as glance reports it (replication's snapshots and their copies in the DR region)."""

    id: str
    name: str
    status: str
    size: int | None = None
    checksum: str | None = None
    """glance's ``checksum``: MD5 of the data, hex."""
    hash_algo: str | None = None
    hash_value: str | None = None
    """glance's multihash (``os_hash_algo``, ``os_hash_value``; sha512 by default)."""
    disk_format: str | None = None
    container_format: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)
    created: str = ""


class ImageData:
    """An image's bytes on their way out of glance: ``chunks`` read from the open response (nothing is
    held beyond one chunk). ``close()`` ends the response early (a copy that failed half-way)."""

    def __init__(self, chunks: Iterator[bytes], close: Callable[[], None] = lambda: None) -> None:
        self.chunks = chunks
        self._close = close

    def close(self) -> None:
        self._close()


@dataclass(frozen=True)
class Network:
    """A network with its one subnet, as a drill makes it (``create_isolated_network``)."""

    id: str
    name: str
    project_id: str | None = None
    subnet_id: str | None = None
    cidr: str | None = None


@dataclass(frozen=True)
class Tagged:
    """One resource found by its name's prefix (what a drill made, ``tagged``): ``kind`` is ``server``,
    ``port``, ``subnet``, ``network`` or ``image``."""

    kind: str
    id: str
    name: str
    project_id: str | None = None


TAGGED_KINDS = ("server", "port", "subnet", "network", "image")
"""The kinds ``tagged`` reports, in the order they are deleted (a network goes after its ports and subnet)."""


@dataclass(frozen=True)
class ComputeService:
    """One nova-compute service as nova reports it: ``state`` is nova's heartbeat verdict (up/down,
    after its ``service_down_time``); ``status`` is the operator's enabled/disabled switch."""

    host: str
    zone: str | None
    state: str
    status: str
    forced_down: bool = False
    updated_at: str = ""
    disabled_reason: str = ""
    """Why the service is disabled (nova's ``disabled_reason``): a planned migration's maintenance says so."""


@dataclass(frozen=True)
class OnboardResult:
    """What ``ensure_tenant`` found or changed (``changed`` empty: nothing to do)."""

    tenant: str
    project_id: str
    changed: tuple[str, ...] = ()


class ComputeDriver(Protocol):
    """One endpoint (cloud entry + region), openstacksdk-style names (STYLE habit 3)."""

    endpoint: Endpoint

    def ensure_tenant(self, spec: TenantSpec) -> OnboardResult: ...

    def find_servers(self, tenant: str, name: str) -> list[Server]: ...

    def servers(self, tenant: str | None = None) -> Iterator[Server]: ...

    def create_server(self, spec: ServerSpec) -> Server: ...

    def wait_for_server(self, tenant: str, server_id: str, *, timeout: float) -> Server: ...


    def delete_server(self, tenant: str, server_id: str, *, ignore_missing: bool = True) -> None: ...

    def delete_server_group(self, tenant: str, name: str) -> None: ...

    def resize_server(self, tenant: str, server_id: str, *, flavor: str | None, size: Resources, timeout: float) -> Server: ...

    def wait_for_delete(self, tenant: str, server_id: str, *, timeout: float) -> None: ...

    def get_compute_quota(self, tenant: str) -> Resources: ...

    def compute_services(self) -> list[ComputeService]: ...

    def evacuate_server(self, tenant: str, server_id: str, *, host: str, timeout: float) -> Server:
        """Move a server off a compute host nova reports down onto ``host`` (forced: the scheduler would
        keep it in its boot zone), wait until it runs ACTIVE there and return it. Already ACTIVE on
        ``host``: returned, nothing changed. Fails with PermanentError (nova's message or fault) or
        TemporaryError."""
        ...

    def force_down(self, host: str, *, forced: bool) -> ComputeService:
        """Set (``forced=True``) or clear nova's ``forced_down`` flag of ``host``'s nova-compute service
        (os-services, compute microversion >= 2.11) and return the service as nova reports it after. Only
        for a host that is fenced: nova then reports it down at once, so evacuation need not wait for its
        ``service_down_time``. Unknown host: PermanentError. Clearing it may be refused (409) while the
        restarted compute still cleans up evacuations: a TemporaryError."""
        ...

    def live_migrate_server(self, tenant: str, server_id: str, *, host: str, timeout: float) -> Server:
        """Live-migrate a running (ACTIVE or PAUSED) server to ``host``, forced (the scheduler would keep it
        in the zone of its request spec), wait until it runs there and return it. Already settled on
        ``host``: returned, nothing sent; on its way there: waited for. A migration nova refuses or
        abandons (the server still on its source once the task is over) is a PermanentError."""
        ...

    def migrate_server(self, tenant: str, server_id: str, *, host: str, timeout: float) -> Server:
        """Cold-migrate a server that does not run (nova live-migrates only ACTIVE or PAUSED ones) to
        ``host`` (the scheduler checks the host against the server's request spec: its zone), confirm the
        resize and return it settled there. Same idempotence and errors as ``live_migrate_server``."""
        ...

    def disable_service(self, host: str, *, reason: str) -> ComputeService:
        """Disable ``host``'s nova-compute (the scheduler places nothing new there) with ``reason``."""
        ...

    def enable_service(self, host: str) -> ComputeService:
        """Enable ``host``'s nova-compute again (its ``disabled_reason`` is cleared by nova)."""
        ...

    def set_power(self, tenant: str, server_id: str, *, on: bool, timeout: float) -> Server:
        """Stop (``on=False``: SHUTOFF) or start (``on=True``: ACTIVE) the tenant's server and wait until it
        is so; a server already so costs one GET (``dr return`` stops a DR copy before its snapshot)."""
        ...

    def set_server_meta(self, tenant: str, server_id: str, key: str, value: str | None) -> None:
        """Set one metadata key of the tenant's server (``value`` None: remove it; a key already so costs
        nothing). A mark a resumed run can read on the server itself (``failover/planned.py``)."""
        ...

    # -- images (replication to the DR region, issue 14) -----------------------------------------
    def snapshot_server(self, tenant: str, server_id: str, *, name: str, metadata: Mapping[str, str]) -> Image:
        """nova createImage of the tenant's server; returns the image as nova announced it (not yet
        ``active``: nova uploads in the background). ``metadata`` becomes the image's properties."""
        ...

    def wait_for_image(self, tenant: str, image_id: str, *, timeout: float) -> Image:
        """Until glance has the image ``active`` (with its size and checksum). ``killed`` or ``deleted``:
        PermanentError; not active by ``timeout``: TemporaryError."""
        ...

    def read_image(self, tenant: str, image_id: str, *, chunk_size: int) -> ImageData:
        """Open the image's data for streaming, ``chunk_size`` bytes at a time."""
        ...

    def upload_image(self, tenant: str, *, name: str, data: Iterable[bytes], size: int, disk_format: str, container_format: str,
                     properties: Mapping[str, str]) -> Image:
        """Create an image in the tenant's project and stream ``data`` (exactly ``size`` bytes) into it;
        returns it as glance has it afterwards. A failed upload deletes the half-made image."""
        ...

    def find_image(self, tenant: str, image_id: str) -> Image | None: ...

    def images(self, tenant: str, *, name: str) -> list[Image]:
        """The tenant's images with exactly this name (how a run that died before recording an image id
        finds what it made: replica images have names derived from their row)."""
        ...

    def delete_image(self, tenant: str, image_id: str, *, ignore_missing: bool = True) -> None: ...

    def projects(self) -> dict[str, str]: ...

    # -- isolated networks and tagged resources (drills, issue 14) -----------------------------
    def create_isolated_network(self, tenant: str, *, name: str, cidr: str, description: str) -> Network:
        """A network and one IPv4 subnet (``cidr``, no gateway), both named ``name``, in the tenant's
        project: not shared, not external, no router — nothing routes between it and any other network.
        A subnet that cannot be made deletes the network again."""
        ...

    def tagged(self, prefix: str) -> list[Tagged]:
        """Everything of this endpoint whose name starts with ``prefix``, in every project: servers,
        networks, subnets, images, and every port on such a network (nova's ports have no name: such a port
        is reported with its network's name)."""
        ...

    def delete_tagged(self, item: Tagged) -> None:
        """Delete one resource ``tagged`` found, as the admin; already gone: nothing to do. A server is
        only asked to go (``tagged`` shows it until nova has deleted it)."""
        ...


class FenceAgent(Protocol):
    """Powers one centre's compute hosts off and on (``drivers/ipmi.py``: their BMCs; ``drivers/fence_command.py``:
    an external fence agent such as the devcloud's). ``power_state`` is ``"on"`` or ``"off"`` as the agent
    sees it now; every failure is a DriverError naming the host, never the credentials."""

    method: str

    def power_off(self, host: str) -> None: ...

    def power_on(self, host: str) -> None: ...

    def power_state(self, host: str) -> str: ...
