"""The OpenStack provisioning path: approved plans become nova servers, retired tickets lose them.

Idempotent by construction: every server is named ``<tenant>-<system>-<ticket>-<n>`` and carries
``govcloud:*`` metadata, and every step starts by *finding* what exists. A run killed at any point
(``kill -9`` included) is finished by the next ``apply``: the ticket is still ``provisioning`` (or
``retiring``), the servers it created are found by their metadata, none is created twice, and the ledger
is committed or released exactly once, in the same transaction as the state change.

The first run of a ticket looks too (one listing per endpoint): the store may have been reset, restored
from a backup or pointed at a new file while the ticket's servers still run, and the same request then
comes back under the same id. Servers whose ``govcloud:ticket/index/tenant/system`` metadata all match
are adopted (and, being older than this run, never deleted by its rollback); a server that carries the
ticket's id or one of its names but other metadata is another request's, and the ticket is refused
(:class:`ForeignServers`) before anything is created.

One of the two :class:`~govcloud.engine.ticket_base.ProvisioningPath` implementations (the other is
terraform_path.py); engine/provision.py picks the path of each ticket and calls it.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence, Set
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Generic, TypeVar

from govcloud.drivers.base import META_INDEX, META_SYSTEM, META_TENANT, META_TICKET, ComputeDriver, Endpoint, Server, ServerSpec
from govcloud.engine.context import EngineContext
from govcloud.engine.create import create_once
from govcloud.engine.onboard import ensure_tenant_for
from govcloud.engine.plans import placements
from govcloud.engine.retry import retrying
from govcloud.engine.ticket_base import Outcome, endpoint_of, fail_ticket, ticket_of
from govcloud.engine.workqueue import WorkQueue, results, work_queue
from govcloud.errors import PermanentError
from govcloud.planner.placement import VmPlacement
from govcloud.store import tickets as rows
from govcloud.store.tickets import TicketRow, VmRow

GONE = "DELETED"
"""A server nova still lists after openstacksdk's ``wait_for_delete`` returned on this status: it is gone
already, so it is neither deleted again, nor counted again, nor swept as a duplicate (issue 16)."""


class ForeignServers(PermanentError):
    """Servers that carry a ticket's id or one of its VM names but another request's metadata (a ticket
    id used again by a different request after the store was reset): never adopted, never duplicated."""


class _Run:
    """One ticket's provisioning: its VMs through the run's work queue, and the store updates."""

    def __init__(self, ctx: EngineContext, row: TicketRow, queue: WorkQueue, *, prune: bool = False) -> None:
        self.ctx = ctx
        self.row = row
        self.queue = queue
        self.prune = prune
        """Delete a VM's duplicates: a resumed ticket's are late creates of the killed run, an active
        ticket's (converge) are not the server its record names."""
        self.existing: dict[int, list[Server]] = {}
        """The ticket's servers found at the start (by metadata, one listing per endpoint), per VM index."""
        self.foreign: list[tuple[Endpoint, Server]] = []
        """Servers with the ticket's id or one of its VM names whose metadata is not this request's."""

    def owns(self, server: Server) -> bool:
        """The server carries this request's metadata: the ticket id, tenant and system (the index
        says which of its VMs)."""
        meta = server.metadata
        return (meta.get(META_TICKET), meta.get(META_TENANT), meta.get(META_SYSTEM)) == (self.row.id, self.row.tenant, self.row.system)

    def endpoint(self, vm: VmPlacement) -> Endpoint:
        return endpoint_of(self.ctx, vm)

    def zone(self, vm: VmPlacement) -> str:
        return self.ctx.endpoints.of(vm.cloud, vm.centre).zone or vm.zone

    def ensure_all(self, vms: Sequence[VmPlacement]) -> list[Server]:
        """Every VM through the work queue; their servers in ``vms`` order (the first error is raised once
        all of them ended).

        Members of one (soft) anti-affinity server group are created one after another: nova's scheduler
        weighs a host by the group members it knows to be there, and it learns of a member only once its
        build has finished — a member queued as soon as the previous one merely had a host
        landed on the same host on the devcloud (a CI run, both gz-main members on gz-main-2). So the next
        member is queued once the previous one is ACTIVE (or has failed); other tickets' and groups' VMs
        fill the queue meanwhile."""
        futures: dict[int, Future[Server]] = {}
        groups: dict[str, list[VmPlacement]] = {}
        for vm in vms:
            if vm.server_group is None:
                futures[vm.index] = self.queue.submit(self.endpoint(vm), self.zone(vm), functools.partial(self.ensure_vm, vm))
            else:
                groups.setdefault(vm.server_group, []).append(vm)
        for members in groups.values():
            chain: list[Future[Server]] = [Future() for _ in members]
            futures.update((vm.index, f) for vm, f in zip(members, chain, strict=True))
            self._chain(members, chain, 0)
        return results([futures[vm.index] for vm in vms])

    def _chain(self, members: Sequence[VmPlacement], chain: Sequence[Future[Server]], at: int) -> None:
        """Queue member ``at`` of a group; the next follows once it is placed (or failed)."""
        vm, handed_on = members[at], threading.Event()

        def next_member() -> None:
            if at + 1 < len(members) and not handed_on.is_set():
                handed_on.set()
                self._chain(members, chain, at + 1)

        def work() -> Server:
            try:
                return self.ensure_vm(vm, placed=next_member)
            finally:
                next_member()

        done = self.queue.submit(self.endpoint(vm), self.zone(vm), work, urgent=at > 0)  # a chain is the run's longest path
        done.add_done_callback(lambda f: _hand_over(f, chain[at]))

    def record(self, vm: VmPlacement, status: str, server: Server | None = None, fault: str | None = None) -> None:
        row = VmRow(ticket=self.row.id, idx=vm.index, name=vm.name, tenant=self.row.tenant, system=self.row.system,
                    cloud=vm.cloud, region=self.endpoint(vm).region, centre=vm.centre, zone=self.zone(vm), flavor=vm.flavor,
                    vcpus=vm.size.vcpus, ram_mb=vm.size.ram_mb, disk_gb=vm.size.disk_gb, status=status,
                    updated_at=self.ctx.now(), server_id=server.id if server else None,
                    address=server.address if server else None, fault=fault)
        with self.ctx.store.transaction() as conn:
            rows.upsert_vm(conn, row)
        self.ctx.progress("vm", {"ticket": self.row.id, "name": vm.name, "status": status, "centre": vm.centre,
                                 "zone": row.zone, "region": row.region, "address": row.address})

    def spec(self, vm: VmPlacement) -> ServerSpec:
        meta = {META_TICKET: self.row.id, META_INDEX: str(vm.index), META_TENANT: self.row.tenant, META_SYSTEM: self.row.system}
        return ServerSpec(name=vm.name, tenant=self.row.tenant, zone=self.zone(vm), flavor=vm.flavor, size=vm.size,
                          image=vm.image, network=vm.network, metadata=meta, server_group=vm.server_group)

    def ensure_vm(self, vm: VmPlacement, *, placed: Callable[[], None] = lambda: None) -> Server:
        """Find or create one server and wait until ACTIVE; ERROR servers are deleted and created again.
        ``placed`` is called once the server is ACTIVE (group members: the next may be created)."""
        endpoint = self.endpoint(vm)
        driver = self.ctx.driver(endpoint)
        settings = self.ctx.settings.engine
        fault = ""
        for attempt in range(1, settings.boot_attempts + 1):
            server = self._adopt(driver, vm) if attempt == 1 else None
            if server is None:
                server = create_once(self.ctx, driver, self.spec(vm))  # a lost answer never makes a second server
                self.record(vm, "BUILD", server)
            if server.status != "ACTIVE":
                server = retrying(self.ctx, f"wait for {vm.name}", driver.wait_for_server, self.row.tenant, server.id,
                                  timeout=settings.boot_timeout)
            if server.status == "ACTIVE":
                placed()
                self.record(vm, "ACTIVE", server)
                return server
            fault = server.fault or f"status {server.status}"
            self.record(vm, "ERROR", server, fault=f"attempt {attempt}: {fault}")
            retrying(self.ctx, f"delete broken {vm.name}", driver.delete_server, self.row.tenant, server.id)
            retrying(self.ctx, f"wait for deletion of {vm.name}", driver.wait_for_delete, self.row.tenant, server.id,
                     timeout=settings.delete_timeout)
        raise PermanentError(f"{vm.name} went to ERROR {settings.boot_attempts} times in {vm.cloud}/{vm.centre}; nova says: {fault}")

    def look_around(self, vms: Sequence[VmPlacement], lister: Lister | None = None) -> None:
        """Learn which of the ticket's servers exist, in one listing per endpoint (``lister``'s, else one
        made now): a server is a VM's when its four metadata keys match it and it is in the VM's endpoint.
        Any other server with the ticket's id or a VM's name goes to ``foreign``."""
        self.existing, self.foreign = {}, []
        planned = {vm.index: vm for vm in vms}
        names = {vm.name for vm in vms}
        for endpoint, server in _listing(self.ctx, self, vms, lister):
            index = server.metadata.get(META_INDEX, "")
            vm = planned.get(int(index)) if self.owns(server) and index.isdigit() else None
            if vm is not None and self.endpoint(vm) == endpoint:
                self.existing.setdefault(vm.index, []).append(server)
            elif server.metadata.get(META_TICKET) == self.row.id or server.name in names:
                self.foreign.append((endpoint, server))

    def refuse_foreign(self) -> None:
        """Before the first create: another request's servers under this ticket's id or names stop the ticket."""
        if not self.foreign:
            return
        meta = (META_TICKET, META_INDEX, META_TENANT, META_SYSTEM)
        listed = "; ".join(f"{s.name} ({s.id}) in {e.cloud}/{e.region}: " + ", ".join(f"{k}={s.metadata.get(k, '-')}" for k in meta)
                           for e, s in sorted(self.foreign, key=lambda pair: (pair[1].name, pair[1].id)))
        raise ForeignServers(
            f"ticket {self.row.id} ({self.row.tenant}/{self.row.system}) was not provisioned: tenant {self.row.tenant}'s project "
            f"already has server(s) with this ticket's id or names that belong to another request ({listed}). They were "
            "neither adopted nor touched, and nothing was created. A ticket id names one request: submit this request under "
            "a new id, or retire the other request's servers first")

    def adopted(self) -> set[str]:
        """Ids of the servers found before this run created anything."""
        return {s.id for found in self.existing.values() for s in found}

    def _adopt(self, driver: ComputeDriver, vm: VmPlacement) -> Server | None:
        """The server this VM already has. Extra ones are deleted when ``prune`` is on; on a first run
        they predate it (made by a run whose record was lost) and are left for reconcile to report as
        duplicates: which of them a department uses is not ours to guess."""
        ours = sorted(self.existing.get(vm.index, []), key=lambda s: s.created)
        if not ours:
            return None
        keep = next((s for s in ours if s.status == "ACTIVE"), ours[0])
        for extra in ours:
            if extra.id != keep.id and self.prune:
                self.ctx.progress("vm", {"ticket": self.row.id, "name": vm.name, "status": "DUPLICATE-DELETED", "centre": vm.centre})
                retrying(self.ctx, f"delete duplicate {vm.name}", driver.delete_server, self.row.tenant, extra.id)
        return keep


Lister = Callable[[Endpoint, str], list[Server]]
"""Every server of a tenant's project behind an endpoint."""


def list_now(ctx: EngineContext) -> Lister:
    """A listing made now (what must see the servers this run created, or what is left)."""
    return lambda endpoint, tenant: retrying(ctx, f"list servers of {tenant}", lambda: list(ctx.driver(endpoint).servers(tenant)))


def _listing(ctx: EngineContext, run: _Run, vms: Sequence[VmPlacement], lister: Lister | None = None) -> list[tuple[Endpoint, Server]]:
    """Every server of the tenant's project in the endpoints where the ticket's VMs are planned: one
    listing per endpoint (nova cannot filter by metadata, so the engine does); ``lister``: made now
    unless the caller shares one."""
    lister = lister or list_now(ctx)
    found = []
    for endpoint in sorted({run.endpoint(vm) for vm in vms}, key=lambda e: (e.cloud, e.region)):
        found += [(endpoint, s) for s in lister(endpoint, run.row.tenant) if s.status != GONE]
    return found


def _ticket_servers(ctx: EngineContext, run: _Run, vms: Sequence[VmPlacement]) -> list[tuple[Endpoint, Server]]:
    """Every server carrying this request's metadata, wherever its VMs are planned."""
    return [(e, s) for e, s in _listing(ctx, run, vms) if run.owns(s)]


def _settle(ctx: EngineContext, run: _Run, vms: Sequence[VmPlacement]) -> None:
    """Resuming after a killed run: creates it had in flight may still land in nova. Wait until the
    ticket's servers stop changing, so they are found and adopted instead of created again."""
    settings = ctx.settings.engine
    deadline = time.monotonic() + settings.settle_timeout
    previous: set[str] | None = None
    while time.monotonic() < deadline:
        current = {s.id for _, s in _ticket_servers(ctx, run, vms)}
        if current == previous:
            return
        previous = current
        time.sleep(settings.settle_interval)


def _sweep(ctx: EngineContext, run: _Run, vms: Sequence[VmPlacement], keep: set[str], actor: str) -> list[str]:
    """Delete the ticket's servers that are not ``keep`` (duplicates from a create that landed late)."""
    extra = [(e, s) for e, s in _ticket_servers(ctx, run, vms) if s.id not in keep]
    for endpoint, server in extra:
        driver = ctx.driver(endpoint)
        retrying(ctx, f"delete extra {server.name}", driver.delete_server, run.row.tenant, server.id)
        retrying(ctx, f"wait for deletion of {server.name}", driver.wait_for_delete, run.row.tenant, server.id,
                 timeout=ctx.settings.engine.delete_timeout)
        ctx.progress("vm", {"ticket": run.row.id, "name": server.name, "status": "DUPLICATE-DELETED", "centre": ""})
    if extra:
        ctx.store.audit.append(actor, "ticket.sweep", f"ticket:{run.row.id}", {"deleted": sorted(f"{s.name} {s.id}" for _, s in extra)})
    return [s.name for _, s in extra]


def _provision(ctx: EngineContext, row: TicketRow, actor: str, *, configure: bool, queue: WorkQueue,
               onboard: Callable[[str, Endpoint], object], lister: Lister | None = None) -> Outcome:
    """Provision one ticket. ``lister``: the run's listing of each tenant's servers, shared by its tickets
    provisioned for the first time (a resumed ticket lists anew, after its settle)."""
    resumed = row.state == "provisioning"
    if row.state == "approved":
        with ctx.store.transaction() as conn:
            rows.move(conn, row.id, "approved", "provisioning", now=ctx.now(), attempts=row.attempts + 1, provision_started_at=ctx.now())
            ctx.store.audit.append(actor, "ticket.provision", f"ticket:{row.id}", {"attempt": row.attempts + 1}, connection=conn)
    run = _Run(ctx, row, queue, prune=resumed)
    vms = placements(row)
    ctx.progress("ticket", {"ticket": row.id, "state": "provisioning", "total": len(vms)})
    try:
        for endpoint in sorted({run.endpoint(vm) for vm in vms}, key=lambda e: (e.cloud, e.region)):
            onboard(row.tenant, endpoint)
        if resumed:
            _settle(ctx, run, vms)
        # a first run too: a reset or restored store does not mean nothing exists
        run.look_around(vms, None if resumed else lister)
        run.refuse_foreign()
        servers = run.ensure_all(vms)
        if resumed:
            _sweep(ctx, run, vms, {s.id for s in servers}, actor)
    except ForeignServers as exc:
        return fail_ticket(ctx, row, actor, str(exc), cleanup=lambda: None, cleaned="no server was created or deleted")
    except PermanentError as exc:
        return _fail(ctx, row, actor, str(exc), vms, queue, keep=set() if resumed else run.adopted())
    roles = ticket_of(row).roles
    state = "configuring" if roles and configure else "active"
    with ctx.store.transaction() as conn:
        rows.commit(conn, row.id, now=ctx.now())
        rows.move(conn, row.id, "provisioning", state, now=ctx.now(), reason=None, provisioned_at=ctx.now(),
                  **({"active_at": ctx.now()} if state == "active" else {}))
        ctx.store.audit.append(actor, "ticket.provisioned", f"ticket:{row.id}",
                               {"servers": {s.name: {"id": s.id, "zone": s.zone, "host": s.host, "address": s.address} for s in servers},
                                "configuration": "next" if state == "configuring" else ("skipped" if roles else "no roles")},
                               connection=conn)
    ctx.progress("ticket", {"ticket": row.id, "state": state})
    return Outcome(row.id, state, f"{len(servers)} server(s) ACTIVE" + ("" if state == "configuring" or not roles else ", configuration skipped"))


def converge(ctx: EngineContext, row: TicketRow, actor: str, queue: WorkQueue | None = None) -> Outcome:
    """An active ticket named to ``apply``, or reconcile's correction: make sure every server is there and
    ACTIVE (found, not created, when nothing drifted; a server deleted behind govcloud's back is created
    again). ``queue``: the run's (None: one of its own)."""
    if queue is None:
        with run_queue(ctx) as own:
            return converge(ctx, row, actor, own)
    run = _Run(ctx, row, queue, prune=True)
    vms = placements(row)
    run.look_around(vms)
    with ctx.store.transaction() as conn:
        known = {vm.name: vm.server_id for vm in rows.vms_of(conn, row.id)}
    servers = run.ensure_all(vms)
    replaced = sorted(s.name for s in servers if known.get(s.name) != s.id)
    if replaced:
        ctx.store.audit.append(actor, "ticket.converge", f"ticket:{row.id}", {"replaced": replaced})
    return Outcome(row.id, "active", f"{len(servers)} server(s) in place" + (f", replaced {', '.join(replaced)}" if replaced else ""))


def _elsewhere(ctx: EngineContext, row: TicketRow, vms: Sequence[VmPlacement]) -> list[VmPlacement]:
    """A copy of each VM whose row says it runs behind another endpoint than planned (a DR activation rebuilt
    it in the DR centre, another region): retirement looks for its server there too, and still where it was
    planned (the lost original may be back). The copy has no server group: that stays where it was made."""
    with ctx.store.transaction() as conn:
        now = {v.idx: v for v in rows.vms_of(conn, row.id)}
    moved = []
    for vm in vms:
        there = now.get(vm.index)
        if there is None or there.centre == vm.centre:
            continue
        copy = dataclasses.replace(vm, centre=there.centre, region=there.region, zone=there.zone, server_group=None)
        if endpoint_of(ctx, copy) != endpoint_of(ctx, vm):
            moved.append(copy)
    return moved


def _delete_all(ctx: EngineContext, row: TicketRow, vms: Sequence[VmPlacement], queue: WorkQueue, *,
                keep: Set[str] = frozenset(), lister: Lister | None = None) -> set[str]:
    """Delete every server of the ticket (found by name, in one listing of the project per endpoint:
    ``lister``'s, else one made now) but those in ``keep`` and its server groups, each VM a job of the
    run's work queue; forget the VM rows. Returns the ids of the servers deleted (one listed as DELETED is
    gone already)."""
    run = _Run(ctx, row, queue)
    timeout = ctx.settings.engine.delete_timeout
    names = {vm.name for vm in vms}
    named: dict[tuple[Endpoint, str], list[Server]] = {}
    for endpoint, server in _listing(ctx, run, vms, lister):  # one listing per endpoint, not one lookup per VM
        if server.name in names and server.id not in keep:
            named.setdefault((endpoint, server.name), []).append(server)

    def delete(vm: VmPlacement) -> set[str]:
        driver = ctx.driver(run.endpoint(vm))
        found = named.get((run.endpoint(vm), vm.name), [])
        for server in found:
            retrying(ctx, f"delete {vm.name}", driver.delete_server, row.tenant, server.id)
            retrying(ctx, f"wait for deletion of {vm.name}", driver.wait_for_delete, row.tenant, server.id, timeout=timeout)
        with ctx.store.transaction() as conn:
            rows.delete_vm(conn, row.id, vm.index)
        ctx.progress("vm", {"ticket": row.id, "name": vm.name, "status": "DELETED", "centre": vm.centre})
        return {s.id for s in found}

    deleted = set().union(*results([queue.submit(run.endpoint(vm), run.zone(vm), functools.partial(delete, vm)) for vm in vms]))
    for endpoint, group in sorted({(run.endpoint(vm), vm.server_group) for vm in vms if vm.server_group},
                                  key=lambda pair: (pair[0].region, pair[1] or "")):
        retrying(ctx, f"delete server group {group}", ctx.driver(endpoint).delete_server_group, row.tenant, group)
    return deleted


def _fail(ctx: EngineContext, row: TicketRow, actor: str, reason: str, vms: Sequence[VmPlacement], queue: WorkQueue, *,
          keep: Set[str]) -> Outcome:
    """Roll back what was created (not the servers in ``keep``: found running before this run, they may
    be in use), give the quota back, and say what to do."""
    cleaned = "its servers were deleted" + (f" except {len(keep)} that existed before this run" if keep else "")
    return fail_ticket(ctx, row, actor, reason, cleanup=lambda: _delete_all(ctx, row, vms, queue, keep=keep), cleaned=cleaned)


def _hand_over(done: Future[Server], to: Future[Server]) -> None:
    exc = done.exception()
    if exc is not None:
        to.set_exception(exc)
    else:
        to.set_result(done.result())


@contextmanager
def run_queue(ctx: EngineContext) -> Iterator[WorkQueue]:
    """A work queue for one run, its host counts from nova's compute services of each endpoint."""
    with work_queue(ctx.settings.engine, lambda endpoint: ctx.driver(endpoint).compute_services()) as queue:
        yield queue


V = TypeVar("V")


class _OncePerKey(Generic[V]):
    """What ``make()`` returns, made once per key for one run: the threads asking for a key at the same time
    wait for the one making it (other keys go on); a ``make()`` that raises leaves the key to the next one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[tuple[str, Endpoint], threading.Lock] = {}
        self._made: dict[tuple[str, Endpoint], V] = {}

    def get(self, key: tuple[str, Endpoint], make: Callable[[], V]) -> V:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._made:
                self._made[key] = make()
            return self._made[key]


class OpenStackPath:
    """The :class:`ProvisioningPath` of clouds with ``driver: openstack`` (every cloud Terraform's does not
    take). One per run: its tickets share ``queue``, and a tenant is onboarded once per endpoint however
    many of its tickets the run provisions (at the same time)."""

    name = "openstack"

    def __init__(self, queue: WorkQueue) -> None:
        self.queue = queue
        self._onboarded: _OncePerKey[object] = _OncePerKey()
        self._listings: _OncePerKey[list[Server]] = _OncePerKey()

    def handles(self, ctx: EngineContext, row: TicketRow) -> bool:
        return True  # the default path: provision.path_for asks the Terraform path first

    def provision(self, ctx: EngineContext, row: TicketRow, actor: str, *, configure: bool) -> Outcome:
        return _provision(ctx, row, actor, configure=configure, queue=self.queue, onboard=lambda t, e: self._onboard(ctx, t, e),
                          lister=functools.partial(self._listed, ctx))

    def converge(self, ctx: EngineContext, row: TicketRow, actor: str) -> Outcome:
        return converge(ctx, row, actor, self.queue)

    def remove(self, ctx: EngineContext, row: TicketRow, actor: str) -> int:
        """Delete every server of the ticket and its server groups, then anything else still carrying its metadata."""
        planned = placements(row)
        vms = planned + _elsewhere(ctx, row, planned)
        # the run's one listing per tenant and endpoint finds what to delete; the sweep lists anew (what is left)
        deleted = _delete_all(ctx, row, vms, self.queue, lister=functools.partial(self._listed, ctx))
        return len(deleted) + len(_sweep(ctx, _Run(ctx, row, self.queue), vms, deleted, actor))  # a server gone is not counted twice

    def _listed(self, ctx: EngineContext, endpoint: Endpoint, tenant: str) -> list[Server]:
        """The tenant's servers behind ``endpoint``, listed once per run for all the tickets it provisions
        for the first time or retires: a 25-ticket day made 25 listings with details of four projects at
        once before its first create, and again before its first delete, on the API its creates and deletes
        then wait for (issue 16). What such a ticket finds or deletes was created before this run (the run
        creates servers of a ticket only after that ticket's own look, and none for a ticket it retires), so
        the run's listing holds it; a resumed ticket lists anew after its settle, and a late server of
        another process is found by the sweep's own listing, made after the deletes."""
        return self._listings.get((tenant, endpoint), lambda: list_now(ctx)(endpoint, tenant))

    def _onboard(self, ctx: EngineContext, tenant: str, endpoint: Endpoint) -> None:
        """``ensure_tenant_for`` once per tenant and endpoint in this run; two tickets of one tenant never
        create its project twice at once."""
        self._onboarded.get((tenant, endpoint), lambda: ensure_tenant_for(ctx, tenant, endpoint))
