"""What the engine asks of a compute driver, in plain data (no SDK objects cross this line)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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
class ComputeService:
    """One nova-compute service as nova reports it: ``state`` is nova's heartbeat verdict (up/down,
    after its ``service_down_time``); ``status`` is the operator's enabled/disabled switch."""

    host: str
    zone: str | None
    state: str
    status: str
    forced_down: bool = False
    updated_at: str = ""


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

    def wait_for_host(self, tenant: str, server_id: str, *, timeout: float) -> Server:
        """Until nova has put the server on a compute host (or it left BUILD): what the scheduler sees of
        it when it places the next member of its server group."""
        ...

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

    def projects(self) -> dict[str, str]: ...
