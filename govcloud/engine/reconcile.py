"""Reconcile: compare what the clouds run with what govcloud owns, record the findings, and — by
policy — recreate what drifted.

One pass (:meth:`Reconciler.run`) lists every OpenStack endpoint once (all projects, as govcloud's
service user) and plans every Terraform workspace govcloud applied, or reads the state of one where no ticket
is live any more (``engine/tf_reconcile.py``), each call in its own thread under one deadline
(``common/deadline.py``), so one slow or broken cloud never
stalls the others: its clouds get an error row for this cycle and keep their last successful time, the
rest go on. A call still hanging from the previous pass is not asked again until it returns. The diff
itself is pure (``planner.drift.diff``, ``planner.tf_drift.judge``); recording replaces each cloud's
findings (``first_seen`` is kept; a Terraform workspace that could not be looked at keeps its tenant's)
and appends new findings and corrections to the audit chain.

Policy ``correct`` recreates managed VMs that are missing or in ERROR through the same converge step
that ``govcloud apply TICKET`` runs on an active ticket, and applies a Terraform workspace's refreshed
plan when it only creates or updates in place what live tickets own; ``report`` only records.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from govcloud.common.deadline import Answer, Deadline, InFlight, collect
from govcloud.drivers.base import META_INDEX, META_SYSTEM, META_TENANT, META_TICKET, Endpoint, Server
from govcloud.engine import tf_reconcile
from govcloud.engine.context import EngineContext
from govcloud.engine.openstack_path import converge
from govcloud.engine.tf_reconcile import WorkspaceResult
from govcloud.errors import DriverError, GovcloudError
from govcloud.model.access import acting_user, require
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
    terraform: bool = False
    """A Terraform cloud: its corrections were audited as they were applied, and ``kept`` applies."""
    kept: tuple[str, ...] = ()
    """Tenants whose workspace could not be looked at this pass: their findings stay as they were."""


def observed(server: Server) -> Observed:
    """The planner's view of a server: govcloud's metadata parsed, nothing else."""
    index = server.metadata.get(META_INDEX, "")
    return Observed(id=server.id, name=server.name, status=server.status, zone=server.zone, project_id=server.project_id,
                    created=server.created, ticket=server.metadata.get(META_TICKET) or None,
                    index=int(index) if index.isdigit() else None, tenant=server.metadata.get(META_TENANT) or None,
                    system=server.metadata.get(META_SYSTEM) or None)


class Reconciler:
    """Reconcile passes over every cloud of the topology (OpenStack and Terraform)."""

    def __init__(self, ctx: EngineContext, *, policy: str = "correct", timeout: float = 120.0, actor: str = "system",
                 terraform_runs: int = 2, stop: threading.Event | None = None) -> None:
        """``stop``: set when the caller (the daemon) is asked to stop; a pass then stops waiting for
        listings and counts the missing ones as late."""
        if policy not in POLICIES:
            raise ValueError(f"reconcile policy {policy!r}: expected one of {', '.join(POLICIES)}")
        self.ctx = ctx
        self.policy = policy
        self.timeout = timeout
        self.stop = stop
        self.actor = actor
        self.clouds = [c for c in ctx.state.topology.clouds if c.driver == "openstack"]
        self.tf_clouds = [c.id for c in ctx.state.topology.clouds if c.driver == "terraform"]
        # the topology and the profile do not change during a Reconciler's life: map them once
        self.endpoints = self._endpoints()
        self.clouds_on = {e: {c.id for c in self.clouds if e in self._endpoints(c.id)} for e in self.endpoints}
        self.zones = {e: self._zone_map(e) for e in self.endpoints}
        self._listings: InFlight[Endpoint, Listing] = InFlight("reconcile")
        self._workspaces: InFlight[tuple[str, str], WorkspaceResult] = InFlight("reconcile-tf")
        # terraform runs at once per cloud: each is a terraform and a provider process on the control plane
        self._slots = {cloud: threading.BoundedSemaphore(max(1, terraform_runs)) for cloud in self.tf_clouds}

    def close(self) -> None:
        self._listings.close()
        self._workspaces.close()

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

    def _listing(self, endpoint: Endpoint, answer: Answer[Listing]) -> Listing:
        if answer.late:
            return Listing(error=f"listing servers of {endpoint.cloud}/{endpoint.region} took longer than {self.timeout:.0f} s")
        if answer.error is not None:
            raise answer.error  # _list turns every driver failure into a Listing: anything else is a bug
        assert answer.value is not None
        return answer.value

    def desired(self) -> tuple[dict[Endpoint, list[DesiredVm]], dict[str, str]]:
        """VMs of live tickets in OpenStack clouds per endpoint, and every ticket's state."""
        with self.ctx.store.transaction() as conn:
            states = rows.states(conn)
            modes = rows.modes(conn)
            vms = rows.vms_of(conn)
        per: dict[Endpoint, list[DesiredVm]] = {}
        openstack = {c.id for c in self.clouds}
        for vm in vms:
            if states.get(vm.ticket) not in LIVE or vm.cloud not in openstack:
                continue  # in flight (the engine is on it) or gone; a Terraform cloud's VMs are its workspace's
            target = self.ctx.endpoints.of(vm.cloud, vm.centre)
            per.setdefault(Endpoint(target.entry, target.region), []).append(DesiredVm(
                ticket=vm.ticket, index=vm.idx, name=vm.name, tenant=vm.tenant, cloud=vm.cloud, zone=vm.zone,
                server_id=vm.server_id, observe_only=modes.get(vm.ticket) == "observe", system=vm.system))
        return per, states

    def run(self) -> list[CloudResult]:
        """One pass: list and plan (all at once, one deadline), diff, correct, record."""
        started = self.ctx.now()
        clock = time.monotonic()
        desired, states = self.desired()
        asked = {e: self._listings.ask(e, functools.partial(self._list, e)) for e in self.endpoints}
        planned = {(t, c): self._workspaces.ask((t, c), functools.partial(tf_reconcile.reconcile_workspace, self.ctx, t, c,
                                                                            policy=self.policy, actor=self.actor, slots=self._slots[c]))
                   for t, c in tf_reconcile.workspaces(self.ctx, self.tf_clouds)}
        deadline = Deadline(self.timeout, stop=self.stop)
        listings = {e: self._listing(e, a) for e, a in collect(asked, deadline).items()}
        terraform = self._terraform(collect(planned, deadline))
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
                   for cloud, found in per_cloud.items()] + terraform
        self._record(results, started, time.monotonic() - clock)
        return results

    def _terraform(self, answers: Mapping[tuple[str, str], Answer[WorkspaceResult]]) -> list[CloudResult]:
        """Workspace results into one result per Terraform cloud (a cloud without workspaces has an empty one)."""
        per: dict[str, list[WorkspaceResult]] = {c: [] for c in self.tf_clouds}
        for (tenant, cloud), answer in sorted(answers.items()):
            if answer.late:
                one = WorkspaceResult(cloud, tenant, error=f"workspace {tenant}--{cloud}: terraform plan took longer than "
                                                            f"{self.timeout:.0f} s (still running; not started again until it ends)")
            elif answer.error is not None:
                raise answer.error  # reconcile_workspace returns every govcloud failure: anything else is a bug
            else:
                assert answer.value is not None
                one = answer.value
            per[cloud].append(one)
        results = []
        for cloud, done in per.items():
            failed = [w for w in done if w.error]
            results.append(CloudResult(cloud, tuple(d for w in done for d in w.findings), sum(w.instances for w in done),
                                       tuple(n for w in done for n in w.corrected), "; ".join(str(w.error) for w in failed) or None,
                                       terraform=True, kept=tuple(w.tenant for w in failed)))
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
            whole = result.error is not None and not result.terraform  # an OpenStack endpoint's listing failed: nothing was seen
            current = [] if whole else [_finding(d, result, now) for d in result.findings]
            with self.ctx.store.transaction() as conn:
                new = [] if whole else facts.replace_findings(conn, result.cloud, current, now=now, keep_tenants=result.kept)
                kinds = [f.kind for f in facts.findings_of(conn, cloud=result.cloud)] if result.kept else [d.kind for d in result.findings]
                facts.record_cycle(conn, facts.CycleStatus(
                    cloud=result.cloud, started_at=started, finished_at=now, success_at=None if result.error else now,
                    duration_s=duration, servers=result.servers, drift=kinds.count("drift"), orphans=kinds.count("orphan"),
                    unmanaged=kinds.count("unmanaged"), corrected=len(result.corrected), error=result.error))
                for item in new:
                    self.ctx.store.audit.append(self.actor, f"reconcile.{item.kind}", f"cloud:{result.cloud}",
                                                {"name": item.name, "server": item.server_id, "ticket": item.ticket,
                                                 "detail": item.detail}, connection=conn)
                if result.corrected and not result.terraform:  # a Terraform correction is audited when it is applied
                    self.ctx.store.audit.append(self.actor, "reconcile.correct", f"cloud:{result.cloud}",
                                                {"recreated": list(result.corrected)}, connection=conn)


def reconcile_once(ctx: EngineContext, *, policy: str, timeout: float, terraform_runs: int) -> list[CloudResult]:
    """``govcloud reconcile``: one pass as the acting user, who needs the ``apply`` permission (checked
    here, where the work starts, as every other action is; the daemon's passes run as its identity)."""
    require(acting_user(ctx.state.users, ctx.settings.user), "apply")
    reconciler = Reconciler(ctx, policy=policy, actor=ctx.settings.user, timeout=timeout, terraform_runs=terraform_runs)
    try:
        return reconciler.run()
    finally:
        reconciler.close()


def _finding(drift: Drift, result: CloudResult, now: str) -> facts.Finding:
    fixed = " — updated in place" if drift.reason == "changed" else " — recreated"
    detail = drift.describe() + (fixed if drift.name in result.corrected else "")
    return facts.Finding(cloud=drift.cloud, kind=drift.kind, key=drift.key, name=drift.name, detail=detail,
                         server_id=drift.server_id, ticket=drift.ticket, tenant=drift.tenant, first_seen=now, last_seen=now)
