"""The OpenStack driver: the only importer of openstacksdk (and keystoneauth1).

One ``OpenStackDriver`` per endpoint (clouds.yaml entry + region). It acts as govcloud's service user
(the clouds.yaml entry), scoped to each tenant's project for servers, so that nova's per-project
quota is a real second line of defence. Every SDK failure leaves this module as ``TemporaryError``
(worth retrying: timeouts, 5xx, 409 from a busy resource, connection errors) or ``PermanentError``
(bad request, forbidden, quota exceeded, missing image/flavor/network), raised ``from`` the original.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import keystoneauth1.exceptions as ks_exc
import openstack
import openstack.config
from openstack import exceptions as os_exc

from govcloud.drivers.base import ComputeService, Endpoint, Image, ImageData, Network, OnboardResult, Server, ServerSpec, Tagged, TenantSpec
from govcloud.drivers.server_watch import ServerChanges, SharedListing, next_tick
from govcloud.errors import PermanentError, TemporaryError
from govcloud.model.resources import Resources

T = TypeVar("T")
SECURITY_GROUP = "govcloud-default"
MEMBER_ROLE = "member"
EVACUATE_MICROVERSION = "2.67"
"""Nova accepts ``force`` on evacuate only from 2.29 to 2.67; the SDK would negotiate a newer version."""
LOOKUP_TTL = 300.0
"""Seconds an image, network or flavor id found by name is reused (the daemon keeps its drivers for days:
a flavor recreated under the same name is picked up within this time)."""
SETTLED = ("ACTIVE", "SHUTOFF")
"""Where an evacuated server arrives: ACTIVE up to 2.94, stopped (SHUTOFF) when evacuated at 2.95 or later."""
ABANDONED_CHECK = 5.0
"""Seconds between looks at the evacuate action of a server that is still being evacuated."""
EVACUATE_POLL = 0.5
"""Seconds between two looks at a server being evacuated: its recovery time is what a disaster is measured by,
and the look costs no request of its own (the endpoint's listing is shared by every evacuation in flight)."""


def translate(exc: Exception, doing: str) -> Exception:
    """Map an SDK/keystoneauth exception onto govcloud's two kinds of driver error."""
    if isinstance(exc, os_exc.ResourceTimeout):
        return TemporaryError(f"{doing}: timed out ({exc})", delay=5)
    if isinstance(exc, os_exc.HttpException):
        status = exc.status_code or 0
        detail = exc.details or exc.message or str(exc)
        if status >= 500 or status in (409, 429):
            return TemporaryError(f"{doing}: HTTP {status}: {detail}", delay=10 if status == 429 else 3)
        return PermanentError(f"{doing}: HTTP {status}: {detail}")
    if isinstance(exc, ks_exc.HttpError):  # keystoneauth's own: keystone answering the token request, before the SDK sees anything
        status = exc.http_status or 0
        if status >= 500 or status in (409, 429):
            return TemporaryError(f"{doing}: HTTP {status} from {exc.url or 'the identity service'}: {exc.message}", delay=3)
    if isinstance(exc, (ks_exc.ConnectFailure, ks_exc.ConnectTimeout, ks_exc.DiscoveryFailure, ks_exc.RetriableConnectionFailure,
                        ks_exc.UnknownConnectionError)):
        return TemporaryError(f"{doing}: cannot reach the cloud ({type(exc).__name__}: {exc})", delay=5)
    if isinstance(exc, ks_exc.Unauthorized):
        return PermanentError(f"{doing}: authentication failed ({exc})")
    if isinstance(exc, (os_exc.SDKException, ks_exc.ClientException)):
        return PermanentError(f"{doing}: {type(exc).__name__}: {exc}")
    return exc


def _call(doing: str, function: Callable[[], T]) -> T:
    try:
        return function()
    except (os_exc.SDKException, ks_exc.ClientException) as exc:
        raise translate(exc, doing) from exc


READ_TRIES = 3
"""Tries of one idempotent read (GET) inside the driver before its TemporaryError goes up to the engine."""


def _read(doing: str, function: Callable[[], T]) -> T:
    """A read, tried ``READ_TRIES`` times a second apart: a GET can always be repeated, and onboarding makes
    about nine of them in a row — retried only as a whole by the engine, one 503 anywhere restarts all nine
    (at 20 % API faults 1 - 0.8^9, 87 % of onboarding attempts, fail somewhere, and the engine's doubling
    backoff made a 30-VM apply of the fault suite take 242 s)."""
    for attempt in range(1, READ_TRIES + 1):
        try:
            return _call(doing, function)
        except TemporaryError:
            if attempt == READ_TRIES:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def _poll(doing: str, get: Callable[[], T], done: Callable[[T], bool], *, timeout: float, interval: float = 1.0) -> T:
    """``get()`` every ``interval`` s until ``done`` says so; TemporaryError at ``timeout``.

    One poll that fails with a temporary error is a missed poll, not a failed wait: a wait makes dozens of
    reads, and aborting it on the first 503 or reset makes a flaky API look much worse than it is (at 20 %
    faults almost no 20-second boot could be waited for). The last such error is named at the deadline."""
    deadline = time.monotonic() + timeout
    missed: TemporaryError | None = None
    while True:
        try:
            result = _call(doing, get)
            if done(result):
                return result
        except TemporaryError as exc:
            missed = exc
        if time.monotonic() >= deadline:
            raise TemporaryError(f"{doing}: not done after {timeout:g} s" + (f" (last poll: {missed})" if missed else ""), delay=5)
        time.sleep(interval)


POLL_INTERVAL = 1.0
"""Seconds between looks at a server being built or deleted (openstacksdk's and a hand-written script's too)."""


def _server(raw: Any) -> Server:
    addresses = raw.addresses or {}
    address = next((a.get("addr") for net in addresses.values() for a in net if a.get("version", 4) == 4), None)
    fault = raw.fault.get("message") if isinstance(raw.fault, dict) else None
    flavor = raw.flavor
    size = None
    if flavor is not None and getattr(flavor, "vcpus", None) is not None:
        size = Resources(instances=1, vcpus=int(flavor.vcpus), ram_mb=int(flavor.ram or 0), disk_gb=int(flavor.disk or 0))
    return Server(id=raw.id, name=raw.name, status=raw.status, zone=raw.availability_zone, host=raw.compute_host,
                  address=address, fault=fault, metadata=dict(raw.metadata or {}), created=raw.created_at or "",
                  project_id=raw.project_id, flavor=getattr(flavor, "original_name", None) or getattr(flavor, "name", None),
                  size=size)


def _service(s: Any) -> ComputeService:
    return ComputeService(host=s.host, zone=s.availability_zone, state=s.state, status=s.status, forced_down=bool(s.is_forced_down),
                          updated_at=s.updated_at or "", disabled_reason=s.disabled_reason or "")


def _image(raw: Any) -> Image:
    properties = {str(k): str(v) for k, v in (raw.properties or {}).items()}
    return Image(id=raw.id, name=raw.name or "", status=raw.status or "", size=raw.size, checksum=raw.checksum,
                 hash_algo=raw.hash_algo, hash_value=raw.hash_value, disk_format=raw.disk_format,
                 container_format=raw.container_format, properties=properties, created=raw.created_at or "")


IMAGE_FAILED = ("killed", "deleted", "pending_delete")
"""Glance states from which an image never becomes ``active``."""


class _Body:
    """A request body that requests streams with a Content-Length: an iterable (urllib3 sends each chunk as
    it comes, nothing is buffered) that knows its length. A bare generator would go out with
    ``Transfer-Encoding: chunked``, and glance under uWSGI refuses a chunked part of 1 MiB or more."""

    def __init__(self, chunks: Iterable[bytes], size: int) -> None:
        self._chunks = chunks
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)


class OpenStackDriver:
    """Compute and onboarding for one endpoint. Thread-safe: the engine shares it across workers."""

    def __init__(self, endpoint: Endpoint, *, config_file: Path | None = None, api_timeout: float = 60.0) -> None:
        self.endpoint = endpoint
        self._config_file = config_file
        self._api_timeout = api_timeout
        self._lock = threading.RLock()  # re-entrant: ``_as`` holds it while ``admin`` connects
        self._group_lock = threading.Lock()
        self._admin: Any = None
        self._projects: dict[str, Any] = {}
        self._project_ids: dict[str, str] = {}
        self._ids: dict[tuple[str, ...], tuple[str, float]] = {}
        """(kind, [tenant,] name) → (id, monotonic expiry): images, networks and flavors a create looks up."""
        self._watch: ServerChanges | None = None
        self._lookups: dict[tuple[str, ...], threading.Lock] = {}
        """One lock per such key: one thread looks a name up while the others wait for its answer."""
        self._building = SharedListing(lambda: _call("list servers in BUILD", lambda: self._server_ids(status="BUILD")))
        """Every server of the endpoint in BUILD (ids only): what waits for creates read."""
        self._deleting = SharedListing(lambda: _call("list servers being deleted", lambda: self._server_ids(task_state="deleting")))
        """Every server of the endpoint nova is deleting (ids only): what waits for deletes read."""

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> Any:
        files = [str(self._config_file)] if self._config_file else None
        # the file govcloud was given, exactly: the SDK would otherwise put $OS_CLIENT_CONFIG_FILE first
        config = openstack.config.OpenStackConfig(config_files=files, load_envvars=False) if files else openstack.config.OpenStackConfig()
        region = config.get_one(cloud=self.endpoint.cloud, region_name=self.endpoint.region)
        if region.config.get("api_timeout") is None:  # without one, an API that never answers hangs the run forever
            region.config["api_timeout"] = self._api_timeout
        return openstack.connection.Connection(config=region)

    @property
    def admin(self) -> Any:
        with self._lock:
            if self._admin is None:
                try:
                    self._admin = self._connect()
                except (os_exc.SDKException, ks_exc.ClientException) as exc:
                    raise translate(exc, f"connect to {self.endpoint.cloud}/{self.endpoint.region}") from exc
            return self._admin

    def project_id(self, tenant: str) -> str:
        """The keystone project of a tenant (named after its slug); PermanentError if not onboarded."""
        if tenant not in self._project_ids:
            project = _read(f"find project {tenant}", lambda: self.admin.identity.find_project(tenant, domain_id="default"))
            if project is None:
                raise PermanentError(f"tenant {tenant} has no project in {self.endpoint.cloud}/{self.endpoint.region}: "
                                     "run `govcloud tenants sync`")
            self._project_ids[tenant] = project.id
        return self._project_ids[tenant]

    def _as(self, tenant: str) -> Any:
        project_id = self.project_id(tenant)
        with self._lock:
            if tenant not in self._projects:
                # a dict: a plain string would be taken as the project *name*
                self._projects[tenant] = self.admin.connect_as_project({"id": project_id, "name": tenant, "domain_id": "default"})
            return self._projects[tenant]

    def _server_ids(self, **query: str) -> frozenset[str]:
        """Ids of every server of the endpoint (all projects) that nova lists for ``query``, read from its JSON
        page by page: openstacksdk builds a Resource per listed server, 0.1 s of CPU for 137 servers, and
        the shared listings are made every second."""
        params: dict[str, str] = {"all_tenants": "1", **query}
        ids: set[str] = set()
        while True:
            response = self.admin.compute.get("/servers", params=params)
            os_exc.raise_from_response(response)
            body = response.json()
            page = [str(s["id"]) for s in body.get("servers", [])]
            ids.update(page)
            if not page or not any(link.get("rel") == "next" for link in body.get("servers_links", [])):
                return frozenset(ids)
            params["marker"] = page[-1]

    # -- onboarding --------------------------------------------------------------------------
    def ensure_tenant(self, spec: TenantSpec) -> OnboardResult:
        """Project, govcloud's role in it, nova quotas, network access, security group — each only if missing."""
        conn, changed = self.admin, []
        project = _read("find project", lambda: conn.identity.find_project(spec.tenant, domain_id="default"))
        if project is None:
            project = _call("create project", lambda: conn.identity.create_project(
                name=spec.tenant, description=spec.description, domain_id="default", is_enabled=True))
            changed.append("project")
        elif project.description != spec.description:
            _call("update project", lambda: conn.identity.update_project(project, description=spec.description))
            changed.append("description")
        self._project_ids[spec.tenant] = project.id
        changed += self._ensure_role(project.id)
        changed += self._ensure_quota(project.id, spec.limits)
        changed += self._ensure_network_access(project.id, spec.network)
        changed += self._ensure_security_group(project.id)
        return OnboardResult(tenant=spec.tenant, project_id=project.id, changed=tuple(changed))

    def _ensure_role(self, project_id: str) -> list[str]:
        conn = self.admin
        role = _read("find role", lambda: conn.identity.find_role(MEMBER_ROLE))
        if role is None:
            raise PermanentError(f"keystone of {self.endpoint.cloud} has no role '{MEMBER_ROLE}'")
        user_id = conn.current_user_id
        has = _read("check role", lambda: conn.identity.validate_user_has_project_role(project_id, user_id, role.id))
        if has:
            return []
        _call("assign role", lambda: conn.identity.assign_project_role_to_user(project_id, user_id, role.id))
        return ["role"]

    def _ensure_quota(self, project_id: str, limits: Resources) -> list[str]:
        conn = self.admin
        current = _read("get nova quota", lambda: conn.compute.get_quota_set(project_id))
        # every HA ticket makes a server group per centre and group: allow as many as instances
        wanted = {"instances": limits.instances, "cores": limits.vcpus, "ram": limits.ram_mb,
                  "server_groups": limits.instances, "server_group_members": limits.instances}
        if all(getattr(current, key) == value for key, value in wanted.items()):
            return []
        _call("set nova quota", lambda: conn.compute.update_quota_set(project_id, **wanted))
        return ["quota"]

    def _ensure_network_access(self, project_id: str, network: str) -> list[str]:
        conn = self.admin
        net = _read("find network", lambda: conn.network.find_network(network))
        if net is None:
            raise PermanentError(f"network {network} does not exist in {self.endpoint.cloud}/{self.endpoint.region}")
        if net.is_shared:
            return []
        existing = _read("list rbac", lambda: list(conn.network.rbac_policies(object_id=net.id, target_project_id=project_id)))
        if existing:
            return []
        _call("share network", lambda: conn.network.create_rbac_policy(object_type="network", object_id=net.id,
                                                                       action="access_as_shared", target_project_id=project_id))
        return ["network"]

    def _ensure_security_group(self, project_id: str) -> list[str]:
        conn = self.admin
        group = _read("find security group", lambda: conn.network.find_security_group(SECURITY_GROUP, project_id=project_id))
        if group is not None:
            return []
        group = _call("create security group", lambda: conn.network.create_security_group(
            name=SECURITY_GROUP, description="govcloud: SSH and ICMP from the government network", project_id=project_id))
        for rule in ({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}, {"protocol": "icmp"}):
            _call("create security group rule", lambda rule=rule: conn.network.create_security_group_rule(  # type: ignore[misc]
                security_group_id=group.id, direction="ingress", ethertype="IPv4", remote_ip_prefix="0.0.0.0/0",
                project_id=project_id, **rule))
        return ["security-group"]

    def get_compute_quota(self, tenant: str) -> Resources:
        quota = _call("get nova quota", lambda: self.admin.compute.get_quota_set(self.project_id(tenant)))
        return Resources(instances=quota.instances, vcpus=quota.cores, ram_mb=quota.ram, disk_gb=0)

    # -- health ------------------------------------------------------------------------------
    def compute_services(self) -> list[ComputeService]:
        """Every nova-compute service of the region with its zone and nova's up/down verdict. The call
        itself is the API probe: a failure is a TemporaryError naming the endpoint."""
        raw = _call(f"list compute services of {self.endpoint.region}",
                    lambda: list(self.admin.compute.services(binary="nova-compute")))
        return [_service(s) for s in raw]

    def force_down(self, host: str, *, forced: bool) -> ComputeService:
        """Set or clear ``forced_down`` of ``host``'s nova-compute (admin). The SDK picks the call: from
        microversion 2.53 ``PUT /os-services/{id}``, before that ``PUT /os-services/force-down`` (2.11+)."""
        conn = self.admin
        found = _call(f"find compute service of {host}", lambda: list(conn.compute.services(binary="nova-compute", host=host)))
        if not found:
            raise PermanentError(f"force down {host}: no nova-compute service on that host in "
                                 f"{self.endpoint.cloud}/{self.endpoint.region}")
        service = found[0]
        doing = f"{'force down' if forced else 'clear forced_down of'} {host}"
        _call(doing, lambda: conn.compute.update_service_forced_down(service, host=host, binary="nova-compute", forced=forced))
        after = _call(f"get compute service of {host}", lambda: list(conn.compute.services(binary="nova-compute", host=host)))
        if not after:
            raise PermanentError(f"{doing}: the service vanished from nova")
        return _service(after[0])

    def disable_service(self, host: str, *, reason: str) -> ComputeService:
        """Disable ``host``'s nova-compute with ``reason`` (admin; from microversion 2.53 ``PUT /os-services/{id}``)."""
        conn = self.admin
        service = self._compute_service(host)
        _call(f"disable {host}", lambda: conn.compute.disable_service(service, host=host, binary="nova-compute", disabled_reason=reason))
        return _service(self._compute_service(host))

    def enable_service(self, host: str) -> ComputeService:
        conn = self.admin
        service = self._compute_service(host)
        _call(f"enable {host}", lambda: conn.compute.enable_service(service, host=host, binary="nova-compute"))
        return _service(self._compute_service(host))

    def _compute_service(self, host: str) -> Any:
        found = _call(f"find compute service of {host}", lambda: list(self.admin.compute.services(binary="nova-compute", host=host)))
        if not found:
            raise PermanentError(f"no nova-compute service on {host} in {self.endpoint.cloud}/{self.endpoint.region}")
        return found[0]

    def projects(self) -> dict[str, str]:
        """Project id → name: tenants' projects are named after the tenant slug."""
        raw = _call("list projects", lambda: list(self.admin.identity.projects()))
        return {p.id: p.name for p in raw}

    # -- servers -----------------------------------------------------------------------------
    def find_servers(self, tenant: str, name: str) -> list[Server]:
        """Servers of the tenant's project with exactly this name (nova filters by regex; we compare)."""
        conn = self._as(tenant)
        raw = _read(f"list servers {name}", lambda: list(conn.compute.servers(name=name)))
        return sorted((_server(s) for s in raw if s.name == name), key=lambda s: s.created)

    def servers(self, tenant: str | None = None) -> Iterator[Server]:
        conn = self._as(tenant) if tenant else self.admin
        query: dict[str, Any] = {} if tenant else {"all_projects": True}
        yield from (_server(s) for s in _read("list servers", lambda: list(conn.compute.servers(**query))))

    def create_server(self, spec: ServerSpec) -> Server:
        conn = self._as(spec.tenant)
        flavor_id = self._flavor_id(spec)
        image_id = self._cached(("image", spec.tenant, spec.image), lambda: _call("find image", lambda: conn.image.find_image(spec.image)))
        if image_id is None:
            raise PermanentError(f"image {spec.image} does not exist in {self.endpoint.cloud}/{self.endpoint.region}")
        network_id = self._cached(("network", spec.tenant, spec.network),
                                  lambda: _call("find network", lambda: conn.network.find_network(spec.network)))
        if network_id is None:
            raise PermanentError(f"network {spec.network} is not visible to {spec.tenant} in {self.endpoint.region}")
        attrs: dict[str, Any] = {"name": spec.name, "flavor_id": flavor_id, "image_id": image_id,
                                 "networks": [{"uuid": network_id}], "metadata": dict(spec.metadata),
                                 "security_groups": [{"name": SECURITY_GROUP}]}
        if spec.zone:  # never send availability_zone=None: nova answers 400
            attrs["availability_zone"] = spec.zone
        if spec.server_group:
            attrs["scheduler_hints"] = {"group": self._server_group(conn, spec.tenant, spec.server_group)}
        raw = _call(f"create server {spec.name}", lambda: conn.compute.create_server(**attrs))
        return _server(raw)

    def _cached(self, key: tuple[str, ...], find: Callable[[], Any]) -> str | None:
        """The id of what ``find()`` returns, remembered for ``LOOKUP_TTL`` s: a 100-VM apply would otherwise
        look the same image, network and flavor up 100 times, and each lookup (two calls, by id then by
        name) is one more call that can fail and fail the whole create with it."""
        with self._lock:
            hit = self._ids.get(key)
            lookup = self._lookups.setdefault(key, threading.Lock())
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        with lookup:  # the 16 creates an apply starts at once wait for one lookup instead of making 16 (issue 16)
            with self._lock:
                hit = self._ids.get(key)
            now = time.monotonic()
            if hit is not None and hit[1] > now:
                return hit[0]
            found = find()
            if found is None:
                return None
            with self._lock:
                self._ids[key] = (str(found.id), now + LOOKUP_TTL)
            return str(found.id)

    def _flavor_id(self, spec: ServerSpec) -> str:
        return self.flavor_id(spec.flavor, spec.size)

    def flavor_id(self, flavor: str | None, size: Resources) -> str:
        """The named flavor, or a public ``gc.custom-<v>c-<ram>m-<disk>g`` made once for explicit sizes."""
        conn = self.admin
        name = flavor or f"gc.custom-{size.vcpus}c-{size.ram_mb}m-{size.disk_gb}g"
        found = self._cached(("flavor", name), lambda: _call("find flavor", lambda: conn.compute.find_flavor(name, ignore_missing=True)))
        if found is not None:
            return found
        if flavor:
            raise PermanentError(f"flavor {flavor} does not exist in {self.endpoint.cloud}/{self.endpoint.region}")
        created = _call("create flavor", lambda: conn.compute.create_flavor(
            name=name, vcpus=size.vcpus, ram=size.ram_mb, disk=size.disk_gb, is_public=True))
        return str(created.id)

    def _server_group(self, conn: Any, tenant: str, name: str) -> str:
        """The group's id, looked up (or made) once and remembered like an image's. Under its own lock: two
        workers must not create the same group twice, and the driver's lock, which every call takes in
        ``_as``, must not wait for this listing (it did, and every create of the endpoint waited with it)."""
        key = ("server group", tenant, name)

        def find() -> Any:
            return next((g for g in _call("list server groups", lambda: list(conn.compute.server_groups())) if g.name == name), None)

        with self._group_lock:
            found = self._cached(key, find)
            if found is None:
                group = _call("create server group", lambda: conn.compute.create_server_group(name=name, policy="soft-anti-affinity"))
                with self._lock:
                    self._ids[key] = (str(group.id), time.monotonic() + LOOKUP_TTL)
                found = str(group.id)
            return found

    def resize_server(self, tenant: str, server_id: str, *, flavor: str | None, size: Resources, timeout: float) -> Server:
        """Resize to ``flavor`` (or ``size``) and confirm; idempotent (already resized: nothing to do,
        waiting for confirmation: confirmed)."""
        conn = self._as(tenant)
        flavor_id = self.flavor_id(flavor, size)
        target = _call("get flavor", lambda: conn.compute.get_flavor(flavor_id))
        server = _call("get server", lambda: conn.compute.get_server(server_id))
        current = getattr(server.flavor, "name", None) or getattr(server.flavor, "original_name", None)
        if server.status == "ACTIVE" and current == target.name:
            return _server(server)
        if server.status != "VERIFY_RESIZE":
            _call(f"resize {server.name}", lambda: conn.compute.resize_server(server, flavor_id))
            server = self._wait(conn, server, "VERIFY_RESIZE", timeout)
        _call(f"confirm resize of {server.name}", lambda: conn.compute.confirm_server_resize(server))
        return _server(self._wait(conn, server, "ACTIVE", timeout))

    def _wait(self, conn: Any, server: Any, status: str, timeout: float) -> Any:
        try:
            return conn.compute.wait_for_server(server, status=status, failures=["ERROR"], interval=1, wait=timeout)
        except os_exc.ResourceFailure as exc:
            fault = _server(conn.compute.get_server(server.id)).fault
            raise PermanentError(f"{server.name} went to ERROR waiting for {status}: {fault}") from exc
        except (os_exc.SDKException, ks_exc.ClientException) as exc:
            raise translate(exc, f"wait for {server.name} to be {status}") from exc

    def delete_server_group(self, tenant: str, name: str) -> None:
        """Remove a ticket's server group once its members are gone (missing: nothing to do)."""
        conn = self._as(tenant)
        with self._lock:
            self._ids.pop(("server group", tenant, name), None)
        for group in _call("list server groups", lambda: list(conn.compute.server_groups())):
            if group.name == name:
                _call(f"delete server group {name}", lambda g=group: conn.compute.delete_server_group(g, ignore_missing=True))  # type: ignore[misc]

    def wait_for_server(self, tenant: str, server_id: str, *, timeout: float) -> Server:
        """Until ACTIVE or ERROR (returned, with nova's fault); a timeout is a TemporaryError.

        While the server is building it is looked for in the endpoint's shared listing of servers in BUILD
        (``server_watch.SharedListing``: one listing a second for all the run's waits); once it is not there it is read
        (one GET), and returned if ACTIVE or ERROR, else (another state: a rebuild, a stop) read again each
        second as before."""
        conn = self._as(tenant)
        doing = f"wait for server {server_id}"

        def settled() -> Server | None:
            raw = _call(doing, lambda: conn.compute.get_server(server_id))
            return _server(raw) if raw.status in ("ACTIVE", "ERROR") else None

        return self._wait_off(self._building, server_id, doing, timeout, settled)

    def set_power(self, tenant: str, server_id: str, *, on: bool, timeout: float) -> Server:
        """nova's os-start / os-stop as the tenant, then waited for; idempotent (a server already ACTIVE or
        SHUTOFF as wanted, or already on its way there, is not asked again: nova answers 409 to that)."""
        conn = self._as(tenant)
        want = "ACTIVE" if on else "SHUTOFF"
        raw = _call(f"get server {server_id}", lambda: conn.compute.get_server(server_id))
        if raw.status == want:
            return _server(raw)
        if raw.task_state not in ("powering-on", "powering-off"):
            action = conn.compute.start_server if on else conn.compute.stop_server
            _call(f"{'start' if on else 'stop'} server {server_id}", lambda: action(raw))
        return _server(self._wait(conn, raw, want, timeout))

    def set_server_meta(self, tenant: str, server_id: str, key: str, value: str | None) -> None:
        """nova's server metadata API as the tenant: one key set, or removed (``value`` None; missing: nothing)."""
        conn = self._as(tenant)
        if value is None:
            current = _call(f"get metadata of server {server_id}", lambda: conn.compute.get_server_metadata(server_id))
            if key in (current.metadata or {}):
                _call(f"delete metadata {key} of server {server_id}", lambda: conn.compute.delete_server_metadata(server_id, [key]))
            return
        _call(f"set metadata {key} of server {server_id}", lambda: conn.compute.set_server_metadata(server_id, **{key: value}))

    def delete_server(self, tenant: str, server_id: str, *, ignore_missing: bool = True) -> None:
        conn = self._as(tenant)
        _call(f"delete server {server_id}", lambda: conn.compute.delete_server(server_id, ignore_missing=ignore_missing))

    def wait_for_delete(self, tenant: str, server_id: str, *, timeout: float) -> None:
        """Until nova has deleted the server and no longer lists it: it answers 404. A server nova shows
        ``DELETED`` is not yet gone — nova still lists it, and openstacksdk's own wait returns there (issue 16:
        "count and sweep only what is really gone"); a retirement that returned then left it in every
        listing an operator or a test makes right after (seen in CI: test_main_job's kill -9 test).

        While nova is deleting it (task state ``deleting``) the server is looked for in the endpoint's shared
        listing of servers being deleted (``server_watch.SharedListing``: one listing a second, ids only, for all
        the run's deletes), asked for after this wait began; once it is not there it is read (one GET). A
        server not gone then (``DELETED`` a moment longer, or nova could not delete it: ERROR) is read again
        each second until the timeout, a TemporaryError."""
        conn = self._as(tenant)
        self._wait_off(self._deleting, server_id, f"wait for deletion of {server_id}", timeout,
                       lambda: True if self._deleted(conn, server_id) else None,
                       first_look_after=POLL_INTERVAL)  # nova takes at least that long

    @staticmethod
    def _wait_off(listing: SharedListing[frozenset[str]], server_id: str, doing: str, timeout: float, settled: Callable[[], T | None],
                  *, first_look_after: float = 0.0) -> T:
        """What ``settled()`` returns once it returns something, asked only while the server is not in the
        endpoint's shared ``listing`` (servers building, resp. being deleted): one listing a poll for all the
        run's waits, a GET of a server only once it has left it. Looks are at the poll ticks (``next_tick``)
        after ``first_look_after``, each reading a listing asked for at that tick or later: never one that
        predates the server's own state, and one listing per tick for every wait. A TemporaryError of a look
        is a missed poll; at ``timeout`` a TemporaryError (naming the last one missed)."""
        started = time.monotonic()
        deadline = started + timeout
        missed: TemporaryError | None = None
        look = next_tick(started + first_look_after, POLL_INTERVAL)
        while True:
            time.sleep(max(0.0, look - time.monotonic()))
            try:
                if server_id not in listing.since(look):
                    found = settled()
                    if found is not None:
                        return found
            except TemporaryError as exc:
                missed = exc
            if time.monotonic() >= deadline:
                raise TemporaryError(f"{doing}: not done after {timeout:g} s" + (f" (last poll: {missed})" if missed else ""), delay=5)
            look = next_tick(max(look, time.monotonic()), POLL_INTERVAL)

    @staticmethod
    def _deleted(conn: Any, server_id: str) -> bool:
        """Nova answers 404 for the server: it no longer lists it either."""
        try:
            conn.compute.get_server(server_id)
        except os_exc.NotFoundException:
            return True
        except (os_exc.SDKException, ks_exc.ClientException) as exc:
            raise translate(exc, f"get server {server_id}") from exc
        return False

    # -- evacuation --------------------------------------------------------------------------
    def evacuate_server(self, tenant: str, server_id: str, *, host: str, timeout: float) -> Server:
        """Rebuild a server whose compute host nova reports down on ``host``, and wait until it runs there.

        As the admin: evacuate is admin-only in nova's default policy. Forced, because the scheduler keeps
        a server in the zone it was booted into (NoValidHost for the partner centre), and so at
        microversion 2.67, the last that takes ``force``. Idempotent: a server already ACTIVE on ``host``
        costs one GET; one already on its way there (or arrived stopped) is waited for (and started)."""
        conn, deadline = self.admin, time.monotonic() + timeout
        raw = self._server_of(tenant, server_id)
        if raw.compute_host == host and raw.status == "ACTIVE" and raw.task_state is None:
            return _server(raw)
        request = self._post_evacuate(raw, host) if raw.compute_host != host else None
        raw = self._wait_evacuated(raw, host, deadline, request)
        if raw.status == "SHUTOFF":
            _call(f"start {raw.name} on {host}", lambda: conn.compute.start_server(raw))
            raw = self._wait(conn, raw, "ACTIVE", max(1.0, deadline - time.monotonic()))
        return _server(raw)

    def _server_of(self, tenant: str, server_id: str) -> Any:
        """The server as the admin sees it (with its compute host), refused unless it is the tenant's."""
        raw = _call(f"get server {server_id}", lambda: self.admin.compute.get_server(server_id))
        if raw.project_id != self.project_id(tenant):
            raise PermanentError(f"server {server_id} ({raw.name}) is not in the project of tenant {tenant}")
        return raw

    def _post_evacuate(self, server: Any, host: str) -> str | None:
        """The raw action: the SDK's ``evacuate_server`` would send its negotiated microversion, which has no
        ``force``. Returns nova's request id: the instance action that records how the evacuation went."""
        body = {"evacuate": {"host": host, "force": True}}

        def post() -> str | None:
            response = self.admin.compute.post(f"/servers/{server.id}/action", json=body, microversion=EVACUATE_MICROVERSION)
            os_exc.raise_from_response(response)
            found = response.headers.get("x-openstack-request-id") or response.headers.get("x-compute-request-id")
            return str(found) if found else None

        request: str | None = _call(f"evacuate {server.name} from {server.compute_host} to {host}", post)
        return request

    @property
    def watch(self) -> ServerChanges:
        """The endpoint's shared listing of changed servers (``server_watch.py``): every evacuation in flight reads it."""
        with self._lock:
            if self._watch is None:
                self._watch = ServerChanges(self._servers_since,
                                            lambda sid: _call(f"get server {sid}", lambda: self.admin.compute.get_server(sid)))
            return self._watch

    def _servers_since(self, since: str | None) -> list[Any]:
        query: dict[str, Any] = {"all_projects": True, "details": True, **({"changes_since": since} if since else {})}
        return _read("list servers", lambda: list(self.admin.compute.servers(**query)))

    def _wait_evacuated(self, server: Any, host: str, deadline: float, request: str | None = None) -> Any:
        """Until nova has rebuilt the server on ``host`` with no task left. ERROR counts only once the task
        is over: an ERROR server being evacuated keeps that status while it is rebuilt. A server still
        ``rebuilding`` on its old host is checked against its evacuate action now and then: nova's
        conductor can fail before the compute is asked (a placement error) and leave the task set forever."""
        checked = started = time.monotonic()
        look = next_tick(started, EVACUATE_POLL)
        while True:
            time.sleep(max(0.0, look - time.monotonic()))
            # a listing asked for after the evacuation was sent, at this tick: shared by every wait
            raw = self.watch.fresh(server.id, after=look)
            if raw.status == "DELETED":
                raise PermanentError(f"evacuating {raw.name} to {host}: the server was deleted meanwhile")
            if raw.status == "ERROR" and raw.task_state is None:
                raise PermanentError(f"evacuating {raw.name} to {host}: ERROR on {raw.compute_host}: "
                                     f"{_server(raw).fault or 'nova recorded no fault'}")
            if raw.compute_host == host and raw.task_state is None and raw.status in SETTLED:
                return raw
            if request and raw.compute_host != host and time.monotonic() - checked >= ABANDONED_CHECK:
                checked = time.monotonic()
                self._raise_if_abandoned(raw, host, request)
            if time.monotonic() >= deadline:
                raise TemporaryError(f"evacuating {raw.name} to {host}: still {raw.status} on {raw.compute_host} "
                                     f"(task {raw.task_state}) at the deadline", delay=5)
            look = next_tick(max(look, time.monotonic()), EVACUATE_POLL)

    def _raise_if_abandoned(self, raw: Any, host: str, request: str) -> None:
        """An evacuation nova gave up on before any compute took it: its action's events are all over, one
        failed, and the server still carries the task on its old host. Its task is cleared with
        os-resetState (to ``error``, the state nova lets one evacuate from) and a TemporaryError asks the
        caller's retry to evacuate again — otherwise the move would wait until its deadline and then get a
        409 for the task nova never clears."""
        action = _call(f"get the evacuate action of {raw.name}",
                       lambda: self.admin.compute.get_server_action(request, raw.id, ignore_missing=True))
        events = list(getattr(action, "events", None) or []) if action is not None else []
        failed = [e for e in events if str(e.result).lower() == "error"]
        if not failed or any(e.finish_time is None for e in events):
            return
        _call(f"reset the state of {raw.name}", lambda: self.admin.compute.reset_server_state(raw.id, "error"))
        raise TemporaryError(f"evacuating {raw.name} to {host}: nova abandoned it in {failed[0].event} "
                             f"(task {raw.task_state} left on {raw.compute_host}); state reset, evacuating again", delay=1)

    # -- planned migration and failback -------------------------------------------------------
    def live_migrate_server(self, tenant: str, server_id: str, *, host: str, timeout: float) -> Server:
        """Live-migrate a running server to ``host`` of any zone of the region, and wait until it runs there.

        Forced: nova's scheduler checks a named host against the server's request spec, whose zone is the
        one the server was booted into (or the one the caller asked for at boot), so it refuses any other
        zone with NoValidHost (seen on the devcloud); ``force`` bypasses it. openstacksdk sends the action at
        microversion 2.30, inside the 2.30–2.67 range that takes ``force``, and nova answers only once its
        pre-checks (destination up, memory, the hypervisors' checks) passed: a refusal is an HTTP 400 here."""
        raw = self._server_of(tenant, server_id)
        if self._settled_on(raw, host):
            return _server(raw)
        if raw.task_state is None:
            _call(f"live-migrate {raw.name} from {raw.compute_host} to {host}",
                  lambda: self.admin.compute.live_migrate_server(raw, host=host, force=True, block_migration="auto"))
        return _server(self._wait_migrated(raw, host, time.monotonic() + timeout, "live migration"))

    def migrate_server(self, tenant: str, server_id: str, *, host: str, timeout: float) -> Server:
        """Cold-migrate a server to ``host`` (openstacksdk: microversion ≥ 2.56 for a named host), confirm
        the resize and wait until it is settled there. Cold migration has no ``force``: the scheduler
        checks the host against the request spec's zone, so it reaches only the zone the server was booted
        into — nova accepts the request and then leaves the server where it was (its task cleared): that
        is reported as a PermanentError naming nova's migration record."""
        conn, deadline = self.admin, time.monotonic() + timeout
        raw = self._server_of(tenant, server_id)
        if self._settled_on(raw, host):
            return _server(raw)
        if raw.task_state is None and raw.status != "VERIFY_RESIZE":
            _call(f"migrate {raw.name} from {raw.compute_host} to {host}", lambda: conn.compute.migrate_server(raw, host=host))
        raw = self._wait_migrated(raw, host, deadline, "cold migration")
        if raw.status == "VERIFY_RESIZE":
            _call(f"confirm the migration of {raw.name}", lambda: conn.compute.confirm_server_resize(raw))
            raw = _poll(f"wait for {raw.name} to be settled on {host}", lambda: conn.compute.get_server(raw.id),
                        lambda s: s.task_state is None and s.status in SETTLED, timeout=max(1.0, deadline - time.monotonic()))
        return _server(raw)

    @staticmethod
    def _settled_on(raw: Any, host: str) -> bool:
        return bool(raw.compute_host == host and raw.task_state is None and raw.status in SETTLED)

    def _wait_migrated(self, server: Any, host: str, deadline: float, what: str) -> Any:
        """Until the server is on ``host`` with no task left (or VERIFY_RESIZE there). Its task over and the
        server elsewhere means nova gave up (NoValidHost in the conductor, a failed pre-check on a compute)."""
        while True:
            raw = _call(f"get server {server.id}", lambda: self.admin.compute.get_server(server.id))
            if raw.compute_host == host and raw.task_state is None and raw.status in (*SETTLED, "VERIFY_RESIZE"):
                return raw
            if raw.task_state is None and raw.status != "VERIFY_RESIZE":
                raise PermanentError(f"{what} of {raw.name} to {host}: nova left it {raw.status} on {raw.compute_host}"
                                     f"{self._migration_note(raw.id)}" + (f": {_server(raw).fault}" if _server(raw).fault else ""))
            if time.monotonic() >= deadline:
                raise TemporaryError(f"{what} of {raw.name} to {host}: still {raw.status} on {raw.compute_host} "
                                     f"(task {raw.task_state}) at the deadline", delay=5)
            time.sleep(1)

    def _migration_note(self, server_id: str) -> str:
        """``(nova's migration N: status)`` of the server's newest migration record, best effort."""
        try:
            found = list(self.admin.compute.migrations(instance_uuid=server_id))
        except (os_exc.SDKException, ks_exc.ClientException):
            return ""
        if not found:
            return ""
        newest = max(found, key=lambda m: int(m.id or 0))
        return f" (nova's {newest.migration_type} {newest.id}: {newest.status})"

    # -- images (replication) ----------------------------------------------------------------
    def snapshot_server(self, tenant: str, server_id: str, *, name: str, metadata: Mapping[str, str]) -> Image:
        """nova createImage as the tenant (the snapshot belongs to its project). Nova answers at once with
        the image id and uploads in the background: ``wait_for_image`` waits for the data."""
        conn = self._as(tenant)
        raw = _call(f"snapshot server {server_id}", lambda: conn.compute.create_server_image(server_id, name, metadata=dict(metadata)))
        return _image(raw)

    def wait_for_image(self, tenant: str, image_id: str, *, timeout: float) -> Image:
        """glance polled until the image is ``active``; ``killed``/``deleted``: PermanentError."""
        conn = self._as(tenant)

        def done(image: Any) -> bool:
            if image.status in IMAGE_FAILED:
                raise PermanentError(f"image {image.name} ({image_id}) ended {image.status} in {self.endpoint.region}")
            return bool(image.status == "active")

        return _image(_poll(f"wait for image {image_id}", lambda: conn.image.get_image(image_id), done, timeout=timeout, interval=0.5))

    def read_image(self, tenant: str, image_id: str, *, chunk_size: int) -> ImageData:
        """``download_image(stream=True)``: the SDK looks the image up and returns the open response; its
        ``iter_content`` reads one chunk at a time (an image that is not active answers with an HTTP
        error). A connection that breaks mid-stream (requests' errors are OSErrors) is a TemporaryError."""
        conn = self._as(tenant)
        response = _call(f"download image {image_id}", lambda: conn.image.download_image(image_id, stream=True, chunk_size=chunk_size))

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.iter_content(chunk_size=chunk_size)
            except OSError as exc:
                raise TemporaryError(f"download of image {image_id} from {self.endpoint.region} broke off: {exc}", delay=3) from exc
            finally:
                response.close()

        return ImageData(chunks(), response.close)

    def upload_image(self, tenant: str, *, name: str, data: Iterable[bytes], size: int, disk_format: str, container_format: str,
                     properties: Mapping[str, str]) -> Image:
        """The image record (``create_image`` without data: one POST), then its data PUT as a stream of
        known length (``Image.upload``, the call the SDK's own ``create_image`` makes). Whatever fails
        after the record exists deletes it again, so a failed copy leaves nothing behind."""
        conn = self._as(tenant)
        raw = _call(f"create image {name}", lambda: conn.image.create_image(
            name, disk_format=disk_format, container_format=container_format, allow_duplicates=True,
            disable_vendor_agent=False, visibility="private", meta=dict(properties)))

        def put() -> None:
            response = raw.upload(conn.image, data=_Body(data, size), size=size)
            os_exc.raise_from_response(response)

        try:
            _call(f"upload image {name} to {self.endpoint.region}", put)
            return _image(_read(f"get image {name}", lambda: conn.image.get_image(raw.id)))
        except BaseException:
            self._delete_quietly(conn, raw.id)
            raise

    def _delete_quietly(self, conn: Any, image_id: str) -> None:
        # the caller's error is the one worth reporting; an image left behind is named in it
        with contextlib.suppress(os_exc.SDKException, ks_exc.ClientException):
            conn.image.delete_image(image_id, ignore_missing=True)

    def find_image(self, tenant: str, image_id: str) -> Image | None:
        conn = self._as(tenant)
        raw = _read(f"find image {image_id}", lambda: conn.image.find_image(image_id, ignore_missing=True))
        return None if raw is None else _image(raw)

    def images(self, tenant: str, *, name: str) -> list[Image]:
        """glance filters by name; only the tenant's own images (an admin would see every project's)."""
        conn = self._as(tenant)
        project_id = self.project_id(tenant)
        raw = _read(f"list images {name}", lambda: list(conn.image.images(name=name, owner=project_id)))
        return [_image(i) for i in raw if i.name == name]

    def delete_image(self, tenant: str, image_id: str, *, ignore_missing: bool = True) -> None:
        conn = self._as(tenant)
        _call(f"delete image {image_id} in {self.endpoint.region}", lambda: conn.image.delete_image(image_id, ignore_missing=ignore_missing))

    # -- isolated networks and tagged resources (drills) --------------------------------------
    def create_isolated_network(self, tenant: str, *, name: str, cidr: str, description: str) -> Network:
        """As the admin, in the tenant's project: a network that is neither shared nor external and a subnet
        with no gateway (``gateway_ip`` null); no router is made, so nothing routes to other networks."""
        conn, project_id = self.admin, self.project_id(tenant)
        net = _call(f"create network {name}", lambda: conn.network.create_network(
            name=name, project_id=project_id, description=description, is_shared=False))
        try:
            subnet = _call(f"create subnet {name}", lambda: conn.network.create_subnet(
                name=name, network_id=net.id, project_id=project_id, ip_version=4, cidr=cidr, gateway_ip=None,
                description=description))
        except BaseException:
            with contextlib.suppress(os_exc.SDKException, ks_exc.ClientException):
                conn.network.delete_network(net.id, ignore_missing=True)
            raise
        return Network(id=net.id, name=net.name, project_id=project_id, subnet_id=subnet.id, cidr=subnet.cidr)

    def tagged(self, prefix: str) -> list[Tagged]:
        conn = self.admin
        found = [Tagged("server", s.id, s.name, s.project_id) for s in _read(
            f"list servers {prefix}*", lambda: list(conn.compute.servers(all_projects=True, name=f"^{prefix}"))) if s.name.startswith(prefix)]
        networks = [n for n in _read("list networks", lambda: list(conn.network.networks())) if (n.name or "").startswith(prefix)]
        # a port is named after its network when it has no name of its own (nova's have none): it is that drill's
        ports = {p.id: Tagged("port", p.id, p.name or n.name, p.project_id) for n in networks
                 for p in _read(f"list ports of {n.name}", lambda n=n: list(conn.network.ports(network_id=n.id)))}  # type: ignore[misc]
        ports.update({p.id: Tagged("port", p.id, p.name, p.project_id) for p in _read("list ports", lambda: list(conn.network.ports()))
                      if (p.name or "").startswith(prefix)})
        found += list(ports.values())
        found += [Tagged("subnet", s.id, s.name, s.project_id) for s in _read("list subnets", lambda: list(conn.network.subnets()))
                  if (s.name or "").startswith(prefix)]
        found += [Tagged("network", n.id, n.name, n.project_id) for n in networks]
        found += [Tagged("image", i.id, i.name, i.owner) for i in _read("list images", lambda: list(conn.image.images()))
                  if (i.name or "").startswith(prefix)]
        return found

    def delete_tagged(self, item: Tagged) -> None:
        conn = self.admin
        delete = {"server": conn.compute.delete_server, "port": conn.network.delete_port, "subnet": conn.network.delete_subnet,
                  "network": conn.network.delete_network, "image": conn.image.delete_image}[item.kind]
        _call(f"delete {item.kind} {item.name or item.id} in {self.endpoint.region}", lambda: delete(item.id, ignore_missing=True))
