"""Reconcile: compare what the clouds run with what govcloud owns, record the findings, and — by
policy — recreate what drifted.

One pass (:meth:`Reconciler.run`) lists every endpoint once (all projects, as govcloud's service
user), in its own thread and under a deadline, so one slow or broken cloud never stalls the others:
its clouds get an error row for this cycle and keep their last successful time, the rest go on.
A listing still hanging from the previous pass is not asked again until it returns. The diff itself
is the pure ``planner.drift.diff``; recording replaces each cloud's findings (``first_seen`` is
kept) and appends new findings and corrections to the audit chain.

Policy ``correct`` recreates managed VMs that are missing or in ERROR through the same converge
step that ``govcloud apply TICKET`` runs on an active ticket; ``report`` only records.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from govcloud.drivers.base import META_INDEX, META_TICKET, Endpoint, Server
from govcloud.engine.context import EngineContext
from govcloud.errors import DriverError, GovcloudError
from govcloud.planner.drift import LIVE, DesiredVm, Drift, Observed, diff
from govcloud.store import facts
from govcloud.store import tickets as rows

POLICIES = ("correct", "report")


@dataclass(frozen=True)
class Listing:
    """One endpoint's servers and tenant projects, or why they could not be had."""

    servers: tuple[Server, ...] = ()
    projects: dict[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class CloudResult:
    """What one pass found and did in one cloud."""

    cloud: str
    findings: tuple[Drift, ...]
    servers: int
    corrected: tuple[str, ...] = ()
    error: str | None = None


def observed(server: Server) -> Observed:
    """The planner's view of a server: govcloud's metadata parsed, nothing else."""
    index = server.metadata.get(META_INDEX, "")
    return Observed(id=server.id, name=server.name, status=server.status, zone=server.zone, project_id=server.project_id,
                    created=server.created, ticket=server.metadata.get(META_TICKET) or None,
                    index=int(index) if index.isdigit() else None)


class Reconciler:
    """Reconcile passes over every OpenStack cloud of the topology."""

    def __init__(self, ctx: EngineContext, *, policy: str = "correct", timeout: float = 120.0, actor: str = "system") -> None:
        if policy not in POLICIES:
            raise ValueError(f"reconcile policy {policy!r}: expected one of {', '.join(POLICIES)}")
        self.ctx = ctx
        self.policy = policy
        self.timeout = timeout
        self.actor = actor
        self.clouds = [c for c in ctx.state.topology.clouds if c.driver == "openstack"]
        # the topology and the profile do not change during a Reconciler's life: map them once
        self.endpoints = self._endpoints()
        self.clouds_on = {e: {c.id for c in self.clouds if e in self._endpoints(c.id)} for e in self.endpoints}
        self.zones = {e: self._zone_map(e) for e in self.endpoints}
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.endpoints)), thread_name_prefix="reconcile")
        self._inflight: dict[Endpoint, Future[Listing]] = {}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _endpoints(self, cloud: str | None = None) -> list[Endpoint]:
        found = {Endpoint(t.entry, t.region) for (c, _), t in self.ctx.endpoints.targets.items()
                 if (cloud is None and c in {x.id for x in self.clouds}) or c == cloud}
        return sorted(found, key=lambda e: (e.cloud, e.region))

    def _zone_map(self, endpoint: Endpoint) -> tuple[dict[str, str], str]:
        """Availability zone → the first cloud whose centre it realises on this endpoint (topology order)."""
        zones: dict[str, str] = {}
        first = ""
        for cloud in self.clouds:
            for centre in cloud.centres:
                target = self.ctx.endpoints.of(cloud.id, centre.id)
                if Endpoint(target.entry, target.region) != endpoint:
                    continue
                first = first or cloud.id
                for zone in (target.zone,) if target.zone else centre.availability_zones:
                    zones.setdefault(zone, cloud.id)
        return zones, first

    def _list(self, endpoint: Endpoint) -> Listing:
        driver = self.ctx.driver(endpoint)
        try:
            return Listing(servers=tuple(driver.servers()), projects=driver.projects())
        except DriverError as exc:
            return Listing(error=str(exc))

    def _listings(self) -> dict[Endpoint, Listing]:
        futures = {}
        for endpoint in self.endpoints:
            running = self._inflight.get(endpoint)
            if running is None or running.done():
                running = self._pool.submit(self._list, endpoint)
                self._inflight[endpoint] = running
            futures[endpoint] = running
        deadline = time.monotonic() + self.timeout
        result = {}
        for endpoint, future in futures.items():
            try:
                result[endpoint] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                result[endpoint] = Listing(error=f"listing servers of {endpoint.cloud}/{endpoint.region} "
                                                 f"took longer than {self.timeout:.0f} s")
        return result

    def desired(self) -> tuple[dict[Endpoint, list[DesiredVm]], dict[str, str]]:
        """VMs of live tickets per endpoint, and every ticket's state."""
        with self.ctx.store.transaction() as conn:
            states = rows.states(conn)
            modes = rows.modes(conn)
            vms = rows.vms_of(conn)
        per: dict[Endpoint, list[DesiredVm]] = {}
        for vm in vms:
            if states.get(vm.ticket) not in LIVE:
                continue  # in flight (the engine is on it) or gone
            target = self.ctx.endpoints.of(vm.cloud, vm.centre)
            per.setdefault(Endpoint(target.entry, target.region), []).append(DesiredVm(
                ticket=vm.ticket, index=vm.idx, name=vm.name, tenant=vm.tenant, cloud=vm.cloud, zone=vm.zone,
                server_id=vm.server_id, observe_only=modes.get(vm.ticket) == "observe"))
        return per, states

    def run(self) -> list[CloudResult]:
        """One pass: list, diff, record, correct."""
        started = self.ctx.now()
        clock = time.monotonic()
        desired, states = self.desired()
        listings = self._listings()
        tenants = set(self.ctx.state.tenants)
        per_cloud: dict[str, list[Drift]] = {c.id: [] for c in self.clouds}
        servers: dict[str, int] = dict.fromkeys(per_cloud, 0)
        errors: dict[str, str] = {}
        for endpoint, listing in listings.items():
            clouds_here = self.clouds_on[endpoint]
            if listing.error is not None:
                for cloud in clouds_here:
                    errors[cloud] = listing.error
                continue
            zones, first = self.zones[endpoint]
            projects = {pid: name for pid, name in listing.projects.items() if name in tenants}
            for drift in diff(desired.get(endpoint, []), (observed(s) for s in listing.servers), ticket_states=states,
                              tenants_by_project=projects, cloud_of=zones, default_cloud=first):
                per_cloud.setdefault(drift.cloud, []).append(drift)
            self._count(listing.servers, desired.get(endpoint, []), zones, first, servers)
        corrected = self._correct([d for found in per_cloud.values() for d in found]) if self.policy == "correct" else {}
        results = [CloudResult(cloud, tuple(found), servers.get(cloud, 0), tuple(corrected.get(cloud, ())), errors.get(cloud))
                   for cloud, found in per_cloud.items()]
        self._record(results, started, time.monotonic() - clock)
        return results

    @staticmethod
    def _count(servers: Iterable[Server], desired: Sequence[DesiredVm], zones: dict[str, str], first: str,
               counts: dict[str, int]) -> None:
        """Servers per cloud: an owned server counts for its ticket's cloud, any other for its zone's."""
        owner = {(vm.ticket, vm.index): vm.cloud for vm in desired}
        for server in servers:
            seen = observed(server)
            cloud = owner.get((seen.ticket or "", seen.index if seen.index is not None else -1)) or zones.get(server.zone or "", first)
            counts[cloud] = counts.get(cloud, 0) + 1

    def _correct(self, found: Sequence[Drift]) -> dict[str, list[str]]:
        """Converge each ticket with a correctable drift; returns the VM names corrected, per cloud."""
        from govcloud.engine.provision import converge

        corrected: dict[str, list[str]] = {}
        for ticket_id in sorted({d.ticket for d in found if d.correctable and d.ticket}):
            with self.ctx.store.transaction() as conn:
                row = rows.get(conn, ticket_id)
            if row is None or row.state not in ("active", "config-failed"):
                continue  # moved on (retired, reconfiguring) since the listing: not ours to touch now
            try:
                converge(self.ctx, row, self.actor)
            except GovcloudError as exc:
                self.ctx.progress("reconcile", {"ticket": ticket_id, "error": str(exc)})
                continue
            for drift in found:
                if drift.ticket == ticket_id and drift.correctable:
                    corrected.setdefault(drift.cloud, []).append(drift.name)
        return corrected

    def _record(self, results: Sequence[CloudResult], started: str, duration: float) -> None:
        now = self.ctx.now()
        for result in results:
            current = [] if result.error else [_finding(d, result, now) for d in result.findings]
            status = facts.CycleStatus(
                cloud=result.cloud, started_at=started, finished_at=now, success_at=None if result.error else now,
                duration_s=duration, servers=result.servers, drift=_n(result, "drift"), orphans=_n(result, "orphan"),
                unmanaged=_n(result, "unmanaged"), corrected=len(result.corrected), error=result.error)
            with self.ctx.store.transaction() as conn:
                facts.record_cycle(conn, status)
                if result.error:
                    continue  # keep the findings of the last good look
                new = facts.replace_findings(conn, result.cloud, current, now=now)
                for item in new:
                    self.ctx.store.audit.append(self.actor, f"reconcile.{item.kind}", f"cloud:{result.cloud}",
                                                {"name": item.name, "server": item.server_id, "ticket": item.ticket,
                                                 "detail": item.detail}, connection=conn)
                if result.corrected:
                    self.ctx.store.audit.append(self.actor, "reconcile.correct", f"cloud:{result.cloud}",
                                                {"recreated": list(result.corrected)}, connection=conn)


def _n(result: CloudResult, kind: str) -> int:
    return sum(1 for d in result.findings if d.kind == kind)


def _finding(drift: Drift, result: CloudResult, now: str) -> facts.Finding:
    detail = drift.describe() + (" — recreated" if drift.name in result.corrected else "")
    return facts.Finding(cloud=drift.cloud, kind=drift.kind, key=drift.key, name=drift.name, detail=detail,
                         server_id=drift.server_id, ticket=drift.ticket, tenant=drift.tenant, first_seen=now, last_seen=now)
