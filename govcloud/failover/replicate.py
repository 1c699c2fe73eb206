"""Replication of ``dr`` VMs into their cloud's DR region (issue 14, part 1): snapshot, copy, keep K.

A ``dr`` VM is a VM of a live, managed ticket whose placement chose protection ``dr`` (the planner
reserved its resources in the cloud's DR centre). For each, when its newest ready replica is older than
its RPO (or it has none), :class:`Replicator`:

1. records a replica row ``taking`` (``store/replicas.py``) — before anything is made, so that a run
   that dies leaves a row naming what it may have made;
2. asks nova for a snapshot of the server (``createImage``, as the tenant: the image is its project's),
   records the image id (``copying``) and waits until glance has it ``active``;
3. streams the snapshot's bytes from the VM's region's glance into the DR region's glance (one chunk in
   memory at a time), hashing them on the way, and checks size and MD5 three ways: what was read, the
   snapshot's own checksum, and what the DR glance computed of what it received. A mismatch deletes the
   copy and counts as a temporary error (the copy is tried again);
4. records it ``ready`` with both image ids, size and checksum, and appends ``dr.replica`` to the audit;
5. prunes: ready replicas beyond the newest K (``DrSettings.keep``), and failed or abandoned ones, lose
   their images in BOTH regions, then their rows (a deletion that fails leaves the row ``pruning`` with
   the error; the next pass tries again).

Temporary errors (``TemporaryError``: timeouts, 5xx, a broken download) are retried with backoff
(``common/retry.py``); what still fails, or fails permanently, is recorded on the row (``failed``, with
the error) and audited (``dr.replica.failed``), and the images it made are deleted. One VM failing never
stops the others.

The RPO target comes through a seam, :data:`RpoOf` — ``rpo_of(cloud, tenant, system)`` → timedelta. By
default it is :func:`plan_rpo`: the ``rpo:`` of the recovery plan's protection group that names
``tenant/system`` in ``cloud`` (``recovery/*.yaml``, issue 13), else ``settings.dr.rpo``.

``govcloud dr replicate`` and the daemon (its ``dr`` timer, leader only) call :meth:`Replicator.run`;
``govcloud dr replicas`` calls :func:`replica_listing`, filtered by the acting user's tenants.
"""

from __future__ import annotations

import datetime
import hashlib
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from govcloud.common.retry import retry
from govcloud.drivers.base import ComputeDriver, Endpoint, Image
from govcloud.errors import DriverError, InputError, TemporaryError
from govcloud.model.access import require, visible_tenants
from govcloud.model.endpoints import Endpoints
from govcloud.model.parsed import DesiredState
from govcloud.model.recovery import RecoveryPlans, duration_seconds
from govcloud.model.states import MOVABLE
from govcloud.model.users import User
from govcloud.planner.stored import decode
from govcloud.settings import DrSettings
from govcloud.store import Store, replicas, tickets
from govcloud.store.replicas import ReplicaRow
from govcloud.store.tickets import TicketRow, VmRow

RpoOf = Callable[[str, str, str], datetime.timedelta]
"""``rpo_of(cloud, tenant, system)``: the replication lag allowed for that business system's ``dr`` VMs."""

PROPERTY = "govcloud:replica"
"""Image property naming the replica row (both regions' images carry it, with ``govcloud:vm``)."""


def plan_rpo(plans: RecoveryPlans, default_seconds: float) -> RpoOf:
    """Each system's RPO from its protection group's ``rpo:``; ``default_seconds`` where no group names it
    or the group gives none."""
    default = datetime.timedelta(seconds=default_seconds)
    found = {(cloud, ref): datetime.timedelta(seconds=duration_seconds(group.rpo))
             for cloud, groups in plans.groups.items() for group in groups if group.rpo for ref in group.systems}
    return lambda cloud, tenant, system: found.get((cloud, f"{tenant}/{system}"), default)


@dataclass(frozen=True)
class DrVm:
    """A ``dr`` VM and where its replicas go."""

    ticket: str
    idx: int
    name: str
    tenant: str
    system: str
    cloud: str
    server_id: str
    source: Endpoint
    dr: Endpoint


def dr_vms(state: DesiredState, endpoints: Endpoints, live: Iterable[TicketRow], rows: Iterable[VmRow]) -> list[DrVm]:
    """The VMs of live, managed tickets placed with protection ``dr`` that have a server, in a cloud that
    has a DR centre; sorted by name."""
    owners = {t.id: t for t in live if t.mode == "managed" and decode(t.plan).protection == "dr"}
    found = []
    for row in rows:
        cloud = state.topology.cloud(row.cloud)
        if row.ticket not in owners or not row.server_id or cloud is None:
            continue
        dr_centre = next((c for c in cloud.centres if c.role == "dr"), None)
        if dr_centre is None:
            continue
        source, target = endpoints.of(row.cloud, row.centre), endpoints.of(row.cloud, dr_centre.id)
        found.append(DrVm(row.ticket, row.idx, row.name, row.tenant, row.system, row.cloud, row.server_id,
                          Endpoint(source.entry, source.region), Endpoint(target.entry, target.region)))
    return sorted(found, key=lambda v: v.name)


def is_due(newest: datetime.datetime | None, now: datetime.datetime, rpo: datetime.timedelta) -> bool:
    """Due when there is no ready replica, or the newest is at least ``rpo`` old."""
    return newest is None or now - newest >= rpo


def to_prune(rows: Sequence[ReplicaRow], *, keep: int, now: datetime.datetime, stale_after: datetime.timedelta) -> list[ReplicaRow]:
    """One VM's replicas whose images go (both regions) and whose rows follow: ready ones beyond the newest
    ``keep``; failed ones that still name an image (the others are kept, ``keep`` of them, as history);
    ``taking``/``copying`` ones older than ``stale_after`` (their run died); ``pruning`` ones (a deletion
    that failed before)."""
    ready = sorted((r for r in rows if r.state == "ready"), key=lambda r: (r.taken_at, r.id), reverse=True)
    failed = sorted((r for r in rows if r.state == "failed"), key=lambda r: (r.taken_at, r.id), reverse=True)
    stale = [r for r in rows if r.state in ("taking", "copying") and now - _time(r.taken_at) >= stale_after]
    pruning = [r for r in rows if r.state == "pruning"]
    old_failed = [r for i, r in enumerate(failed) if r.source_image or r.dr_image or i >= keep]
    return ready[max(keep, 0):] + old_failed + stale + pruning


def image_name(row: ReplicaRow) -> str:
    """The name of a replica's images in both regions, derived from its row: a run that died before it
    recorded an image id leaves an image the next run finds by this name (``Replicator._delete_images``)."""
    return f"{row.vm}-dr-{_time(row.taken_at).astimezone(datetime.UTC):%Y%m%dT%H%M%S}-{row.id[:8]}"


def _time(iso: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(iso)


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds")


@dataclass
class Result:
    """What one VM's turn did: ``replica`` made (or failed), and how many old ones were pruned."""

    vm: DrVm
    replica: ReplicaRow | None = None
    pruned: int = 0
    errors: list[str] = field(default_factory=list)
    gone: bool = False
    """The VM is no longer a ``dr`` VM: its replicas were pruned, none was taken."""

    @property
    def ok(self) -> bool:
        return not self.errors and (self.replica is None or self.replica.state == "ready")

    def as_dict(self) -> dict[str, Any]:
        made = self.replica
        return {"vm": self.vm.name, "tenant": self.vm.tenant, "system": self.vm.system, "ok": self.ok,
                "replica": made.id if made else None, "state": made.state if made else ("no longer dr: pruned" if self.gone else "not due"),
                "source_image": made.source_image if made else None, "dr_image": made.dr_image if made else None,
                "size": made.size if made else None, "checksum": made.checksum if made else None,
                "pruned": self.pruned, "errors": self.errors}


class CopyMismatch(TemporaryError):
    """The bytes that reached the DR region are not the snapshot's (size or checksum)."""


class Replicator:
    """Replicates ``dr`` VMs and prunes their old replicas; collaborators are passed in (STYLE habit 7)."""

    def __init__(self, *, store: Store, state: DesiredState, endpoints: Endpoints, driver: Callable[[Endpoint], ComputeDriver],
                 clock: Callable[[], datetime.datetime], actor: User, settings: DrSettings, rpo_of: RpoOf | None = None,
                 tries: int = 6, on_retry: Callable[[dict[str, object]], None] = lambda _event: None,
                 sleep: Callable[[float], None] | None = None) -> None:
        require(actor, "replicate")  # the CLI and the daemon build a Replicator: the check is here, once for both
        self.store = store
        self.state = state
        self.endpoints = endpoints
        self.driver = driver
        self.clock = clock
        self.actor = actor.id
        self.settings = settings
        self.rpo_of = rpo_of or plan_rpo(state.recovery, settings.rpo)
        self.tries = tries
        self.on_retry = on_retry
        self._retry_options: dict[str, Any] = {} if sleep is None else {"sleep": sleep}

    # -- what to do --------------------------------------------------------------------------
    def candidates(self, *, system: str | None = None, tenant: str | None = None) -> list[DrVm]:
        """The ``dr`` VMs, narrowed to a business system (any tenant's, or ``tenant``'s) when given."""
        with self.store.transaction() as conn:
            found = dr_vms(self.state, self.endpoints, tickets.listing(conn, states=MOVABLE), tickets.vms_of(conn))
        if system is not None and not any(v.system == system for v in found):
            known = sorted({v.system for v in found})
            raise InputError(f"no dr VM of business system '{system}'" + (f" (systems with dr VMs: {', '.join(known)})" if known
                                                                           else ": no VM is placed with protection dr"))
        return [v for v in found if (system is None or v.system == system) and (tenant is None or v.tenant == tenant)]

    def due(self, vm: DrVm, now: datetime.datetime) -> bool:
        with self.store.transaction() as conn:
            ready = [r for r in replicas.of_vm(conn, vm.ticket, vm.idx) if r.state == "ready"]
        newest = max((_time(r.taken_at) for r in ready), default=None)
        return is_due(newest, now, self.rpo_of(vm.cloud, vm.tenant, vm.system))

    def run(self, *, system: str | None = None, tenant: str | None = None, force: bool = False,
            stop: Callable[[], bool] = lambda: False, on_result: Callable[[Result], None] = lambda _r: None) -> list[Result]:
        """One pass: each selected VM replicated when due (every one with ``force``), then pruned; without a
        filter, the replicas of VMs that are no longer ``dr`` VMs are pruned too."""
        results: list[Result] = []
        chosen = self.candidates(system=system, tenant=tenant)
        for vm in chosen:
            if stop():
                return results
            result = Result(vm)
            if force or self.due(vm, self.clock()):
                result.replica = self.replicate(vm)
                if result.replica.error:
                    result.errors.append(result.replica.error)
            self._prune(result, keep=self.settings.keep)
            results.append(result)
            on_result(result)
        if system is None and tenant is None and not stop():
            results += self._prune_gone({(v.ticket, v.idx) for v in chosen}, on_result)
        return results

    def _prune_gone(self, live: set[tuple[str, int]], on_result: Callable[[Result], None]) -> list[Result]:
        """Every replica of a VM that is no longer a ``dr`` VM (its ticket retired, the VM deleted by a
        resize, the protection gone) loses its images in both regions: nothing would ever prune them."""
        with self.store.transaction() as conn:
            rows = [r for r in replicas.listing(conn) if (r.ticket, r.idx) not in live]
        results: list[Result] = []
        for key in sorted({(r.ticket, r.idx) for r in rows}):
            first = next(r for r in rows if (r.ticket, r.idx) == key)
            gone = DrVm(first.ticket, first.idx, first.vm, first.tenant, first.system, first.cloud, first.server_id,
                        self._endpoint(first.cloud, first.source_region), self._endpoint(first.cloud, first.dr_region))
            result = Result(gone, gone=True)
            self._prune(result, keep=0)
            results.append(result)
            on_result(result)
        return results

    def _endpoint(self, cloud_id: str, region: str) -> Endpoint:
        """The clouds.yaml entry that reaches ``region`` of ``cloud_id`` (a replica row names cloud and region)."""
        cloud = self.state.topology.cloud(cloud_id)
        for centre in cloud.centres if cloud is not None else ():
            target = self.endpoints.of(cloud_id, centre.id)
            if target.region == region:
                return Endpoint(target.entry, region)
        raise InputError(f"replica of cloud {cloud_id} in region {region}: no centre of the topology is reached there any more")

    # -- one replica -------------------------------------------------------------------------
    def _retry(self, doing: str, call: Callable[[], Any]) -> Any:
        return retry(doing, call, tries=self.tries, on_retry=self.on_retry, **self._retry_options)

    def replicate(self, vm: DrVm) -> ReplicaRow:
        """Snapshot ``vm``, copy it into the DR region, verify, record; a failure is recorded, not raised."""
        taken = self.clock()
        row = ReplicaRow(id=uuid.uuid4().hex, ticket=vm.ticket, idx=vm.idx, vm=vm.name, tenant=vm.tenant, system=vm.system,
                         cloud=vm.cloud, server_id=vm.server_id, source_region=vm.source.region, dr_region=vm.dr.region,
                         taken_at=_iso(taken), state="taking")
        with self.store.transaction() as conn:
            replicas.insert(conn, row)
        source, target = self.driver(vm.source), self.driver(vm.dr)
        name = image_name(row)
        properties = {PROPERTY: row.id, "govcloud:vm": vm.name, "govcloud:ticket": vm.ticket, "govcloud:tenant": vm.tenant,
                      "govcloud:system": vm.system}
        tries = {"snapshot": 0, "copy": 0}

        def take() -> Image:  # a try after a temporary error asks first: nova may have made it and lost the answer
            tries["snapshot"] += 1
            made = source.images(vm.tenant, name=name) if tries["snapshot"] > 1 else []
            return made[0] if made else source.snapshot_server(vm.tenant, vm.server_id, name=name, metadata=properties)

        def copy_once(snapshot: Image) -> Image:  # and a copy tried again first removes what an earlier try left
            tries["copy"] += 1
            for left in target.images(vm.tenant, name=name) if tries["copy"] > 1 else []:
                target.delete_image(vm.tenant, left.id)
            return self._copy(source, target, vm.tenant, snapshot, properties)

        try:
            snapshot = self._retry(f"snapshot {vm.name}", take)
            row = self._save(row, state="copying", source_image=snapshot.id)
            snapshot = self._retry(f"wait for snapshot {name}", lambda: source.wait_for_image(
                vm.tenant, snapshot.id, timeout=self.settings.snapshot_timeout))
            copy = self._retry(f"copy {name} to {vm.dr.region}", lambda: copy_once(snapshot))
            row = self._save(row, state="ready", dr_image=copy.id, size=copy.size, checksum=copy.checksum, finished_at=_iso(self.clock()))
        except DriverError as exc:
            row = self._give_up(row, source, target, f"{type(exc).__name__}: {exc}")
            self.store.audit.append(self.actor, "dr.replica.failed", f"vm:{vm.name}", {"replica": row.id, "error": row.error,
                                                                                       "source_image": row.source_image})
            return row
        self.store.audit.append(self.actor, "dr.replica", f"vm:{vm.name}",
                                {"replica": row.id, "ticket": vm.ticket, "source": f"{vm.source.region}/{row.source_image}",
                                 "dr": f"{vm.dr.region}/{row.dr_image}", "size": row.size, "checksum": row.checksum,
                                 "taken_at": row.taken_at})
        return row

    def _copy(self, source: ComputeDriver, target: ComputeDriver, tenant: str, snapshot: Image, properties: dict[str, str]) -> Image:
        """Stream the snapshot into the DR region and check that the same bytes arrived."""
        return copy_image(source, target, tenant, snapshot, properties, chunk_size=self.settings.chunk_size)

    def _save(self, row: ReplicaRow, **fields: Any) -> ReplicaRow:
        with self.store.transaction() as conn:
            replicas.update(conn, row.id, **fields)
        return replace(row, **fields)

    def _give_up(self, row: ReplicaRow, source: ComputeDriver, target: ComputeDriver, error: str) -> ReplicaRow:
        """Record the failure; delete the images it made (an image that cannot be deleted stays named on
        the row, and pruning tries again)."""
        left = {"source_image": row.source_image, "dr_image": row.dr_image}
        for key, driver in (("source_image", source), ("dr_image", target)):
            image_id = left[key]
            if image_id:
                try:
                    driver.delete_image(row.tenant, image_id)
                    left[key] = None
                except DriverError as exc:
                    error += f"; {key} {image_id} not deleted: {exc}"
        return self._save(row, state="failed", error=error, finished_at=_iso(self.clock()), **left)

    # -- keep K ------------------------------------------------------------------------------
    def _prune(self, result: Result, *, keep: int) -> None:
        vm = result.vm
        with self.store.transaction() as conn:
            rows = replicas.of_vm(conn, vm.ticket, vm.idx)
        stale = datetime.timedelta(seconds=self.settings.stale_after)
        for row in to_prune(rows, keep=keep, now=self.clock(), stale_after=stale):
            error = self._delete_images(vm, row)
            if error:
                result.errors.append(error)
                self._save(row, state="pruning", error=error)
                continue
            with self.store.transaction() as conn:
                replicas.delete(conn, row.id)
            result.pruned += 1

    def _delete_images(self, vm: DrVm, row: ReplicaRow) -> str | None:
        """Delete the replica's images in both regions (missing ones count as deleted); the error, if any.
        Besides the ids the row recorded, a replica that never became ready is looked for by its images'
        name: its run may have died between nova's (or glance's) answer and recording the id."""
        errors = []
        for image_id, endpoint in ((row.source_image, Endpoint(vm.source.cloud, row.source_region)),
                                   (row.dr_image, Endpoint(vm.dr.cloud, row.dr_region))):
            try:
                for found in self._images_of(endpoint, row, image_id):
                    self._delete_image(endpoint, row.tenant, found)
            except DriverError as exc:
                errors.append(f"images of replica {row.id} in {endpoint.region} not deleted: {exc}")
        return "; ".join(errors) or None

    def _images_of(self, endpoint: Endpoint, row: ReplicaRow, recorded: str | None) -> list[str]:
        ids = [recorded] if recorded else []
        if row.state != "ready":
            driver = self.driver(endpoint)
            listed = self._retry(f"list images of replica {row.id} in {endpoint.region}",
                                 lambda: driver.images(row.tenant, name=image_name(row)))
            ids += [i.id for i in listed if i.id not in ids]
        return ids

    def _delete_image(self, endpoint: Endpoint, tenant: str, image_id: str) -> None:
        driver = self.driver(endpoint)
        self._retry(f"delete image {image_id} in {endpoint.region}", lambda: driver.delete_image(tenant, image_id))


def copy_image(source: ComputeDriver, target: ComputeDriver, tenant: str, snapshot: Image, properties: dict[str, str], *,
               chunk_size: int) -> Image:
    """Stream ``snapshot`` from ``source``'s glance into ``target``'s under the same name, one chunk in memory
    at a time, and check size and MD5 three ways (``_mismatch``); a copy that differs is deleted and
    :class:`CopyMismatch` (temporary: the copy is tried again) raised. Replication copies into the DR
    region with it, ``dr return`` (``failover/dr_return.py``) back out of it."""
    data = source.read_image(tenant, snapshot.id, chunk_size=chunk_size)
    md5, counted = hashlib.md5(usedforsecurity=False), [0]

    def hashed() -> Iterator[bytes]:
        for chunk in data.chunks:
            md5.update(chunk)
            counted[0] += len(chunk)
            yield chunk

    try:
        copy = target.upload_image(tenant, name=snapshot.name, data=hashed(), size=snapshot.size or 0,
                                   disk_format=snapshot.disk_format or "raw", container_format=snapshot.container_format or "bare",
                                   properties=properties)
    finally:
        data.close()
    problem = _mismatch(snapshot, copy, counted[0], md5.hexdigest())
    if problem:
        target.delete_image(tenant, copy.id)
        raise CopyMismatch(f"copy of {snapshot.name} to {target.endpoint.region}: {problem}", delay=1)
    return copy


def _mismatch(snapshot: Image, copy: Image, read: int, md5: str) -> str | None:
    """Why the copy is not the snapshot (None: same size and MD5 everywhere)."""
    if snapshot.size is not None and read != snapshot.size:
        return f"read {read} bytes, the snapshot has {snapshot.size}"
    if snapshot.checksum and md5 != snapshot.checksum:
        return f"the bytes read have MD5 {md5}, the snapshot {snapshot.checksum}"
    if copy.size != read:
        return f"the DR glance stored {copy.size} bytes of {read}"
    if copy.checksum and copy.checksum != md5:
        return f"the DR glance computed MD5 {copy.checksum} of what it received, the bytes sent have {md5}"
    return None


def replica_listing(store: Store, user: User, *, system: str | None = None, states: Sequence[str] | None = None) -> list[ReplicaRow]:
    """The replicas the user may see: a requester only its own tenants' (``access.visible_tenants``)."""
    tenants = visible_tenants(user)
    with store.transaction() as conn:
        return replicas.listing(conn, tenants=tenants, systems=[system] if system else None, states=states)
