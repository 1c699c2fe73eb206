"""Failing over a centre that is down: gather the facts, plan (``planner/failover.py``), evacuate.

``govcloud failover plan|run`` and the daemon call :class:`Recovery`. Before anything moves, nova
itself must report every compute host of the failed centre down — evacuation is only safe (and nova
only accepts it) for a host that is really gone; govcloud never forces a host down on its own. The
partner centre's hosts come from the same live listing, so a server is only sent to a host nova
reports up right now.

A run is journalled (``journal.py``, ``store/runs.py``: one run per centre at a time, taken over
and resumed when its process died) and carried out group by group, moves in parallel (``steps.py``).
Each move is one forced evacuation (``ComputeDriver.evacuate_server``; a TemporaryError from nova is
retried with backoff, ``common/retry.py``, up to ``tries`` tries) followed by one transaction
that records where the VM runs now (its row's centre and zone), moves its share of the ticket's ledger
lines to the target centre and appends a ``failover.move`` audit record. A run that dies half-way is
finished by the next: VMs already recorded in the target are no longer in the failed centre, and a
VM nova already moved (the record was lost) is recognised by its zone and only recorded.

Fencing is a seam: ``fence`` (``steps.Fence``) is called before a run plans; the hosts it reports
fenced count as down even while nova has not yet declared them so. Without it (fence method
``none``) only hosts nova reports down are evacuated.

Planned migration and failback (``planned.py``) reuse this class's run, journal and record with a
mover of their own. Not automated yet: activating the DR centre (another region: rebuild from the
reservation, which needs the e-government office's approval).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Sequence

from govcloud.common.retry import retry
from govcloud.drivers.base import ComputeDriver, ComputeService, Endpoint, Server
from govcloud.errors import DriverError, InputError
from govcloud.failover.journal import Journal
from govcloud.failover.steps import Fence, HookRunner, Mover, Outcome, RecoveryRun, Steps
from govcloud.failover.watch import CentreRef, centre_refs, reported_up
from govcloud.model.access import require
from govcloud.model.endpoints import Endpoints
from govcloud.model.parsed import DesiredState
from govcloud.model.resources import Resources
from govcloud.model.states import MOVABLE
from govcloud.model.topology import Cloud
from govcloud.model.users import User
from govcloud.planner.failover import Facts, Move, Placed, RecoveryPlan, plan_recovery
from govcloud.planner.stored import decode
from govcloud.planner.usage import Usage
from govcloud.settings import FailoverSettings
from govcloud.store import Store, facts, runs, tickets
from govcloud.store.tickets import TicketRow, VmRow

LIVE = MOVABLE


class FailoverRefused(InputError):
    """The named centre cannot be failed over now (unknown, or nova still reports hosts up there)."""


__all__ = ["FailoverRefused", "Outcome", "Recovery", "RecoveryRun", "placed_vms"]


class Recovery:
    """Plans and runs the failover of one centre; collaborators are passed in (STYLE habit 7)."""

    def __init__(self, *, store: Store, state: DesiredState, endpoints: Endpoints, driver: Callable[[Endpoint], ComputeDriver],
                 now: Callable[[], str], actor: User, timeout: float = 600.0, tries: int = 6,
                 on_retry: Callable[[dict[str, object]], None] = lambda _event: None, settings: FailoverSettings | None = None,
                 hook: HookRunner | None = None, fence: Fence | None = None, clock: Callable[[], float] = time.time,
                 owner: str | None = None) -> None:
        require(actor, "failover")  # the CLI and the daemon build a Recovery: the check is here, once for both
        self.store = store
        self.state = state
        self.endpoints = endpoints
        self.driver = driver
        self.now = now
        self.actor = actor.id
        self.timeout = timeout
        self.tries = tries
        """Tries per evacuation while nova answers with a TemporaryError (the engine's ``temporary_retries`` + 1)."""
        self.on_retry = on_retry
        self.settings = settings or FailoverSettings()
        self.hook = hook
        self.fence = fence
        self.journal = Journal(store, now=now, clock=clock, settings=self.settings, owner=owner)

    # -- planning ----------------------------------------------------------------------------
    def cloud_of(self, cloud_id: str | None, centre_id: str) -> Cloud:
        """The cloud of ``centre_id``: named, or the one cloud of the topology that has such a centre."""
        if cloud_id is None:
            holders = [c.id for c in self.state.topology.clouds if c.centre(centre_id) is not None]
            if len(holders) != 1:
                raise FailoverRefused(f"centre {centre_id} is in {len(holders)} clouds of the topology" + (f" ({', '.join(holders)}): "
                                      "name one with --cloud" if holders else f"; centres that can fail over: {self._centres()}"))
            cloud_id = holders[0]
        cloud = self.state.topology.cloud(cloud_id)
        if cloud is None:
            raise FailoverRefused(f"no cloud {cloud_id} in the topology")
        if cloud.centre(centre_id) is None:
            raise FailoverRefused(f"cloud {cloud_id} has no centre {centre_id} (its centres: {', '.join(c.id for c in cloud.centres)})")
        if cloud.driver != "openstack":
            raise FailoverRefused(f"cloud {cloud_id} is driven by {cloud.driver}: failover evacuates nova servers and needs openstack")
        return cloud

    def _centres(self) -> str:
        return ", ".join(f"{c.id}/{x.id}" for c in self.state.topology.clouds if len(c.centres) > 1 for x in c.centres)

    def fence_and_plan(self, cloud_id: str | None, centre_id: str) -> RecoveryPlan:
        """Fence the centre (when a fence method is configured), then plan with the fenced hosts counted down."""
        cloud = self.cloud_of(cloud_id, centre_id)
        report = self.fence(cloud, centre_id) if self.fence is not None else None
        return self.plan(cloud.id, centre_id, fenced=report.fenced_hosts if report is not None else ())

    def plan(self, cloud_id: str | None, centre_id: str, *, fenced: Collection[str] = ()) -> RecoveryPlan:
        """The plan for ``centre_id``, from the store and a live listing of the cloud's compute hosts
        (``fenced``: hosts confirmed powered off, down whatever nova says yet)."""
        cloud = self.cloud_of(cloud_id, centre_id)
        with self.store.transaction() as conn:
            health = {(h.cloud, h.centre): h.state for h in facts.health(conn)}
            allocated = Usage.from_lines(tickets.ledger_lines(conn)).centre
            placed = list(placed_vms(tickets.listing(conn, states=LIVE), tickets.vms_of(conn)))
        if not any(v.cloud == cloud.id and v.centre == centre_id for v in placed):
            return RecoveryPlan(cloud.id, centre_id)  # nothing of ours runs there: no need to ask nova
        hosts = self.hosts_up(cloud)
        still_up = tuple(h for h in hosts.get((cloud.id, centre_id), ()) if h not in fenced)
        if still_up:
            raise FailoverRefused(f"nova reports {', '.join(still_up)} up in {centre_id}: a centre is failed over only once nova "
                                  f"has declared its compute hosts down (after its service_down_time), never while they may run")
        health[(cloud.id, centre_id)] = "down"  # what nova just said, even if no health check has recorded it yet
        return plan_recovery(cloud, centre_id, placed, Facts(health=health, allocated=allocated, hosts_up=hosts),
                             self.state.recovery.of(cloud.id))

    def down_centres(self) -> list[tuple[str, str]]:
        """(cloud, centre) pairs the health watch has recorded ``down`` (after its confirmations)."""
        with self.store.transaction() as conn:
            return sorted((h.cloud, h.centre) for h in facts.health(conn) if h.state == "down")

    def hosts_up(self, cloud: Cloud) -> dict[tuple[str, str], tuple[str, ...]]:
        """(cloud, centre) → compute hosts nova reports up, enabled and not forced down in the centre's zones."""
        refs = [r for r in centre_refs(self.state.topology, self.endpoints) if r.cloud == cloud.id]
        listings = {e: self._services(e) for e in {r.endpoint for r in refs}}
        return {(r.cloud, r.centre): _up_in(listings[r.endpoint], r) for r in refs}

    def _services(self, endpoint: Endpoint) -> list[ComputeService]:
        try:
            return self.driver(endpoint).compute_services()
        except DriverError as exc:
            raise FailoverRefused(f"cannot list compute services of {endpoint.cloud}/{endpoint.region}: {exc}") from exc

    # -- running ---------------------------------------------------------------------------
    def has_run(self, plan: RecoveryPlan) -> bool:
        """Whether the plan's centre has a run new or running (one to resume, or one in progress elsewhere)."""
        with self.store.transaction() as conn:
            return runs.active_run(conn, plan.cloud, plan.centre) is not None

    def run(self, plan: RecoveryPlan, *, kind: str = "failover", on_outcome: Callable[[Outcome], None] = lambda _o: None,
            stop_on_hook_failure: bool = False, stop_on_failure: bool = False, mover: Mover | None = None) -> RecoveryRun:
        """Carry out ``plan`` as a journalled run (a new one, or the centre's run taken over from a dead
        process): group by group, moves in parallel; one failing does not stop the others unless
        ``stop_on_failure`` (a planned migration, a failback). ``mover``: how a VM moves (default: a forced
        evacuation; ``planned.py`` passes live or cold migration). RunInProgress (exit 2) when a live process
        carries a run of the centre."""
        summary = {"groups": plan.as_dict()["groups"], "moves": len(plan.moves), "held": len(plan.held)}
        run, resumed = self.journal.open(kind=kind, cloud=plan.cloud, centre=plan.centre, user=self.actor, plan=summary)
        result = RecoveryRun(plan, run_id=run.id, resumed=resumed)
        with self.journal.beating(run.id) as lost:
            steps = Steps(store=self.store, now=self.now, settings=self.settings, mover=mover or self._move, hook=self.hook, run_id=run.id,
                          lost=lost, on_outcome=on_outcome, stop_on_hook_failure=stop_on_hook_failure, sources=self._sources(plan),
                          stop_on_failure=stop_on_failure)
            steps.carry_out(plan, result)
        result.stopped = steps.stopped
        if not result.settle(lost=lost, still_mine=lambda: self.journal.still_mine(run.id)):
            return result
        self.journal.end(run.id, state=result.state, user=self.actor, kind=kind, subject=f"centre:{plan.cloud}/{plan.centre}",
                         detail={"moved": len(result.moved), "failed": len(result.failed), "held": len(plan.held),
                                 "hooks_failed": result.hooks_failed,
                                 **({"stopped": result.stopped} if result.stopped else {})})
        return result

    def cancel(self, cloud_id: str | None, centre_id: str, *, reason: str) -> runs.RunRow:
        """End the centre's run ``cancelled``. The process carrying it learns so at its next heartbeat and
        starts no further move (moves already sent to nova finish and are recorded)."""
        cloud = self.cloud_of(cloud_id, centre_id)
        with self.store.transaction() as conn:
            run = runs.active_run(conn, cloud.id, centre_id)
            if run is None:
                raise FailoverRefused(f"no run of {cloud.id}/{centre_id} is in progress: nothing to cancel")
            runs.end_run(conn, run.id, state="cancelled", now=self.now(), detail={"cancelled_by": self.actor, "reason": reason})
            self.store.audit.append(self.actor, f"{run.kind}.cancel", f"centre:{cloud.id}/{centre_id}",
                                    {"run": run.id, "owner": run.owner, "reason": reason}, connection=conn)
        return run

    def _sources(self, plan: RecoveryPlan) -> dict[str, str]:
        """server id → the compute host nova has it on, for the journal: one admin listing per endpoint (a
        tenant's own listing does not show hosts). Best effort: the journal names no source host without it."""
        wanted = {m.vm.server_id for m in plan.moves if m.vm.server_id}
        endpoints = {Endpoint(cloud=(t := self.endpoints.of(m.vm.cloud, m.vm.centre)).entry, region=t.region) for m in plan.moves}
        found: dict[str, str] = {}
        for endpoint in endpoints:
            try:
                found.update({s.id: s.host for s in self.driver(endpoint).servers() if s.id in wanted and s.host})
            except DriverError:
                continue
        return found

    def _move(self, move: Move, source: Callable[[str | None], None] = lambda _h: None) -> Outcome:
        vm = move.vm
        target = self.endpoints.of(vm.cloud, move.target)
        zone = target.zone or move.zone
        driver = self.driver(Endpoint(cloud=target.entry, region=target.region))
        def evacuate() -> Server:  # asks first on every try: a try that timed out may have moved the server
            return self._already_there(driver, vm, zone, source) or driver.evacuate_server(vm.tenant, vm.server_id or "", host=move.host,
                                                                                           timeout=self.timeout)

        try:
            server = retry(f"evacuate {vm.name}", evacuate, tries=self.tries, on_retry=self.on_retry)
        except DriverError as exc:
            self.store.audit.append(self.actor, "failover.failed", f"vm:{vm.name}", {"to": move.target, "host": move.host, "error": str(exc)})
            return Outcome(move, False, str(exc))
        self.record(move, zone, server)
        return Outcome(move, True, f"{server.status} on {server.host or move.host}", server.host)

    @staticmethod
    def _already_there(driver: ComputeDriver, vm: Placed, zone: str, source: Callable[[str | None], None]) -> Server | None:
        """The server if nova already runs it, ACTIVE, in the target zone (a run that died before recording it)."""
        found = [s for s in driver.find_servers(vm.tenant, vm.name) if s.id == vm.server_id]
        if found and found[0].zone != zone:
            source(found[0].host)
        return found[0] if found and found[0].zone == zone and found[0].status == "ACTIVE" else None

    def record(self, move: Move, zone: str, server: Server, action: str = "failover.move") -> None:
        """Where the VM runs now, in one transaction: its row (centre, zone, status), its ledger lines moved
        to the target centre, and an audit record (``failover.move``, ``migration.move``, ``failback.move``)."""
        vm, now = move.vm, self.now()
        with self.store.transaction() as conn:
            tickets.lock_quota(conn)
            row = next((r for r in tickets.vms_of(conn, vm.ticket) if r.idx == vm.idx), None)
            if row is None:
                return  # retired meanwhile: the server goes with the ticket
            tickets.upsert_vm(conn, VmRow(**{**row.__dict__, "centre": move.target, "zone": zone, "status": server.status,
                                             "address": server.address or row.address, "fault": server.fault, "updated_at": now}))
            tickets.move_allocation(conn, vm.ticket, vm.cloud, vm.centre, move.target, vm.size, now=now)
            self.store.audit.append(self.actor, action, f"vm:{vm.name}",
                                    {"ticket": vm.ticket, "server": server.id, "from": vm.centre, "to": move.target, "zone": zone,
                                     "host": server.host or move.host, "status": server.status}, connection=conn)


def _up_in(services: Sequence[ComputeService], ref: CentreRef) -> tuple[str, ...]:
    """The centre's hosts a server may be sent to: reported up and enabled."""
    return tuple(sorted(s.host for s in services if s.zone in ref.zones and reported_up(s) and s.status == "enabled"))


def placed_vms(live: Iterable[TicketRow], rows: Iterable[VmRow]) -> Iterable[Placed]:
    """The VM rows of live, managed tickets with their ticket's protection and planned (home) centre."""
    owners = {t.id: t for t in live if t.mode == "managed"}
    for row in rows:
        ticket = owners.get(row.ticket)
        if ticket is None:
            continue
        plan = decode(ticket.plan)
        home = plan.home_of(row.name) or row.centre
        yield Placed(ticket=row.ticket, idx=row.idx, name=row.name, tenant=row.tenant, cloud=row.cloud, centre=row.centre, zone=row.zone,
                     protection=plan.protection, size=Resources(1, row.vcpus, row.ram_mb, row.disk_gb), home=home,
                     server_id=row.server_id, system=f"{ticket.tenant}/{ticket.system}")
