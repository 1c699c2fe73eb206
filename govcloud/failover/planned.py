"""Planned migration and failback of a centre: ``govcloud failover migrate|failback``.

A **planned migration** empties a *healthy* centre of its protected (``ha``/``dr``) VMs before
maintenance, into its same-city partner: the same plan as a failover (``planner/failover.py``: groups in
the recovery plan's order, room, hosts of the partner nova reports up), the same journal and steps
(``recover.py``, ``steps.py``: one run per centre, run kind ``migration``, groups in order, moves in
parallel within the bounds, resumed after ``kill -9``), but every compute host of the centre must be
reported up by nova (a centre that is down is failed over, not migrated), and it **stops at the first
error** — a failed move or a failed hook (SRM's rule for a planned migration): the centre is still
healthy, so an operator looks before anything else moves. First, the centre is put **in maintenance**:
each of its nova-compute services is disabled with the reason ``MAINTENANCE …`` so nova's scheduler
places nothing new there while it is emptied and serviced.

A **failback** (run kind ``failback``) brings the VMs whose *home* is the centre (the centre its
ticket's plan placed them in) back from the partner once the centre is healthy again: every compute
host nova reports up, none forced down (fenced hosts are forced down: ``failover unfence`` first). It
ends the maintenance first (re-enables the services *govcloud* disabled; a host an operator disabled
for another reason stays disabled and gets no VM), then plans with ``planner/failback.py`` (group
order, room, anti-affinity restored host by host) and runs like a planned migration, stopping at the
first error. A failback with nothing to bring back only ends the maintenance; both are journalled runs
even with no VM to move, since the newest of them is the record of whether the centre is in maintenance.

A VM moves by **live migration** when it runs (nova live-migrates ACTIVE and PAUSED servers), forced
to the planned host (``ComputeDriver.live_migrate_server``: nova's scheduler would hold it to the zone
of its request spec); otherwise by **cold migration** to the host (``migrate_server`` + confirm),
which nova's scheduler checks against the request spec's zone — the zone the server was booted into,
which neither a forced evacuation nor a forced live migration changes (measured on the devcloud,
docs/failover.md) — so a stopped VM can be cold-migrated home, but not away from it. Before each try
nova is asked where the server is: one already settled in the target zone is only recorded, so a
resumed run moves no VM twice. The record is ``Recovery._record``'s (VM row, ledger lines to the
target centre, ``migration.move`` / ``failback.move`` audit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from govcloud.common.retry import retry
from govcloud.drivers.base import ComputeDriver, ComputeService, Endpoint, Server
from govcloud.errors import DriverError, PermanentError
from govcloud.failover.recover import LIVE, FailoverRefused, Recovery, placed_vms
from govcloud.failover.steps import Outcome, RecoveryRun
from govcloud.failover.watch import CentreRef, centre_refs, reported_up
from govcloud.model.resources import Resources
from govcloud.model.topology import Cloud
from govcloud.planner.failback import plan_failback
from govcloud.planner.failover import PROTECTED, Facts, Move, Placed, RecoveryPlan, plan_recovery
from govcloud.planner.usage import Usage
from govcloud.store import facts, tickets

MAINTENANCE = "govcloud maintenance"
"""How a disabled_reason written by ``failover migrate`` begins: ``failback`` re-enables only those."""
RUNNING = ("ACTIVE", "PAUSED")
"""The states nova live-migrates from; any other is cold-migrated (or, SHUTOFF and leaving its boot zone,
started, live-migrated and stopped again: ``Planned._move_stopped``)."""
PARKED = "govcloud:stopped-for-move"
"""Server metadata key on a stopped VM that a planned move started: the move (or the run resuming it) stops it again."""


class Planned:
    """Planned migration and failback on the collaborators of a :class:`Recovery` (its store, driver, journal)."""

    def __init__(self, recovery: Recovery) -> None:
        self.recovery = recovery

    # -- facts -----------------------------------------------------------------------------
    def _ref(self, cloud: Cloud, centre_id: str) -> CentreRef:
        return next(r for r in centre_refs(self.recovery.state.topology, self.recovery.endpoints)
                    if r.cloud == cloud.id and r.centre == centre_id)

    def _driver(self, ref: CentreRef) -> ComputeDriver:
        return self.recovery.driver(ref.endpoint)

    def services(self, cloud: Cloud, centre_id: str) -> list[ComputeService]:
        """The centre's nova-compute services (one listing of its endpoint); none at all is refused."""
        ref = self._ref(cloud, centre_id)
        try:
            listing = self._driver(ref).compute_services()
        except DriverError as exc:
            raise FailoverRefused(f"cannot list compute services of {ref.endpoint.cloud}/{ref.endpoint.region}: {exc}") from exc
        found = [s for s in listing if s.zone in ref.zones]
        if not found:
            raise FailoverRefused(f"nova reports no compute service in {centre_id} (zones {', '.join(ref.zones)})")
        return found

    def _placed(self) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], Resources], list[Placed]]:
        """Recorded health, the ledger's sums per centre, and the VMs of live tickets with their home."""
        with self.recovery.store.transaction() as conn:
            health = {(h.cloud, h.centre): h.state for h in facts.health(conn)}
            allocated = Usage.from_lines(tickets.ledger_lines(conn)).centre
            placed = list(placed_vms(tickets.listing(conn, states=LIVE), tickets.vms_of(conn)))
        return health, dict(allocated), list(placed)

    # -- planned migration -------------------------------------------------------------------
    def migrate_plan(self, cloud_id: str | None, centre_id: str) -> RecoveryPlan:
        """What ``failover migrate`` moves: the centre's protected VMs into the partner. Refused unless
        nova reports every compute host of the centre up (a centre that is down is failed over)."""
        cloud = self.recovery.cloud_of(cloud_id, centre_id)
        down = [s.host for s in self.services(cloud, centre_id) if not reported_up(s)]
        if down:
            raise FailoverRefused(f"nova reports {', '.join(sorted(down))} down in {centre_id}: a planned migration needs a healthy "
                                  f"centre (live migration starts on the source host); use 'govcloud failover run {centre_id}'")
        health, allocated, placed = self._placed()
        health[(cloud.id, centre_id)] = "healthy"
        hosts = self.recovery.hosts_up(cloud)
        plan = plan_recovery(cloud, centre_id, placed, Facts(health=health, allocated=allocated, hosts_up=hosts),
                             self.recovery.state.recovery.of(cloud.id))
        stuck = [h for h in plan.held if h.vm.protection in PROTECTED and h.vm.server_id]
        if stuck and not plan.moves:  # e.g. the partner in maintenance too: do not leave both centres disabled
            raise FailoverRefused(f"none of the {len(stuck)} protected VMs of {centre_id} can be migrated ({stuck[0].reason}): "
                                  f"{centre_id} was not put in maintenance")
        return plan

    def maintenance(self, cloud: Cloud, centre_id: str, *, on: bool) -> list[str]:
        """Disable (``on``) the centre's nova-compute services with govcloud's reason, or re-enable those it
        disabled; returns the hosts changed. Idempotent: a service already so is left alone."""
        ref = self._ref(cloud, centre_id)
        driver = self._driver(ref)
        reason = f"{MAINTENANCE}: failover migrate by {self.recovery.actor} at {self.recovery.now()}"
        changed: list[str] = []
        for service in self.services(cloud, centre_id):
            if on and service.status == "enabled":
                retry(f"disable {service.host}", lambda s=service: driver.disable_service(s.host, reason=reason),  # type: ignore[misc]
                      tries=self.recovery.tries)
            elif not on and service.status == "disabled" and service.disabled_reason.startswith(MAINTENANCE):
                retry(f"enable {service.host}", lambda s=service: driver.enable_service(s.host), tries=self.recovery.tries)  # type: ignore[misc]
            else:
                continue
            changed.append(service.host)
        if not changed:
            return changed
        self.recovery.store.audit.append(self.recovery.actor, "centre.maintenance", f"centre:{cloud.id}/{centre_id}",
                                         {"on": on, "hosts": changed, **({"reason": reason} if on else {})})
        return changed

    def migrate(self, plan: RecoveryPlan, *, on_outcome: Callable[[Outcome], None] = lambda _o: None) -> RecoveryRun:
        """Put the centre in maintenance, then carry the plan out as a ``migration`` run that stops at the first error."""
        cloud = self.recovery.cloud_of(plan.cloud, plan.centre)
        self.recovery.journal.ensure_free(kind="migration", cloud=plan.cloud, centre=plan.centre)  # refused before anything is disabled
        self.maintenance(cloud, plan.centre, on=True)
        # journalled even with nothing to move: the run is the record that the centre is in maintenance
        # (``govcloud_centre_maintenance``, ``failover status``), and who put it there when
        return self.recovery.run(plan, kind="migration", on_outcome=on_outcome, stop_on_hook_failure=True, stop_on_failure=True,
                                 mover=self._mover("migration"))

    # -- failback ----------------------------------------------------------------------------
    def failback_plan(self, cloud_id: str | None, centre_id: str) -> RecoveryPlan:
        """What ``failover failback`` brings home. Refused unless every compute host of the centre is up and
        none is forced down; hosts disabled by govcloud's maintenance count as targets (failback enables them)."""
        cloud = self.recovery.cloud_of(cloud_id, centre_id)
        services = self.services(cloud, centre_id)
        unhealthy = [f"{s.host} ({'forced down' if s.forced_down else s.state})" for s in services if not reported_up(s)]
        if unhealthy:
            raise FailoverRefused(f"{centre_id} is not healthy: nova reports {', '.join(sorted(unhealthy))}; failback waits until every "
                                  "compute host is up and none is forced down (a fenced centre: 'govcloud failover unfence' first)")
        targets = tuple(sorted(s.host for s in services if s.status == "enabled" or s.disabled_reason.startswith(MAINTENANCE)))
        health, allocated, placed = self._placed()
        if health.get((cloud.id, centre_id)) == "down":
            raise FailoverRefused(f"{centre_id} is recorded down by the health watch: failback waits until it records the centre "
                                  "healthy again (nova already reports its hosts up: the next health check)")
        members = self._members(cloud, centre_id, targets)
        hosts_up = {(cloud.id, centre_id): targets}
        return plan_failback(cloud, centre_id, placed, Facts(health=health, allocated=allocated, hosts_up=hosts_up),
                             self.recovery.state.recovery.of(cloud.id), members)

    def _members(self, cloud: Cloud, centre_id: str, hosts: Sequence[str]) -> dict[tuple[str, str], int]:
        """(ticket, host) → the ticket's servers nova runs on that host of the centre (one admin listing)."""
        counts: dict[tuple[str, str], int] = {}
        try:
            servers = list(self._driver(self._ref(cloud, centre_id)).servers())
        except DriverError as exc:
            raise FailoverRefused(f"cannot list the servers of {centre_id}: {exc}") from exc
        for server in servers:
            ticket = server.metadata.get("govcloud:ticket")
            if ticket and server.host and server.host in hosts:
                counts[(ticket, server.host)] = counts.get((ticket, server.host), 0) + 1
        return counts

    def failback(self, plan: RecoveryPlan, *, on_outcome: Callable[[Outcome], None] = lambda _o: None) -> RecoveryRun:
        """End the centre's maintenance, then carry the plan out as a ``failback`` run that stops at the first error."""
        cloud = self.recovery.cloud_of(plan.cloud, plan.centre)
        self.recovery.journal.ensure_free(kind="failback", cloud=plan.cloud, centre=plan.centre)
        self.maintenance(cloud, plan.centre, on=False)  # journalled even with nothing to bring back: it ends the maintenance
        return self.recovery.run(plan, kind="failback", on_outcome=on_outcome, stop_on_hook_failure=True, stop_on_failure=True,
                                 mover=self._mover("failback"))

    # -- one VM ------------------------------------------------------------------------------
    def _mover(self, kind: str) -> Callable[[Move, Callable[[str | None], None]], Outcome]:
        def move(step: Move, source: Callable[[str | None], None]) -> Outcome:
            return self._move(kind, step, source)
        return move

    def _move(self, kind: str, move: Move, source: Callable[[str | None], None]) -> Outcome:
        rec, vm = self.recovery, move.vm
        target = rec.endpoints.of(vm.cloud, move.target)
        zone = target.zone or move.zone
        driver = rec.driver(Endpoint(cloud=target.entry, region=target.region))
        how: list[str] = ["already there"]

        def go() -> Server:  # asks first on every try: a try that timed out may have moved the server
            found = [s for s in driver.find_servers(vm.tenant, vm.name) if s.id == vm.server_id]
            if not found:
                raise PermanentError(f"nova has no server {vm.server_id} ({vm.name}) in {target.region}")
            server = found[0]
            parked = server.metadata.get(PARKED) == "yes"  # started by an earlier try, to be stopped again
            if server.zone == zone and server.status in ("ACTIVE", "SHUTOFF"):
                return self._stop_again(driver, vm, server) if parked else server
            source(server.host)
            if parked or (server.status == "SHUTOFF" and move.target != vm.home):
                how[0] = "started, live, stopped"
                return self._move_stopped(driver, vm, move.host, parked=parked)
            live = server.status in RUNNING
            how[0] = "live" if live else "cold"
            call = driver.live_migrate_server if live else driver.migrate_server
            return call(vm.tenant, vm.server_id or "", host=move.host, timeout=rec.timeout)

        try:
            server = retry(f"{kind} {vm.name}", go, tries=rec.tries, on_retry=rec.on_retry)
        except DriverError as exc:
            rec.store.audit.append(rec.actor, f"{kind}.failed", f"vm:{vm.name}", {"to": move.target, "host": move.host, "error": str(exc)})
            return Outcome(move, False, str(exc))
        rec.record(move, zone, server, action=f"{kind}.move")
        return Outcome(move, True, f"{how[0]}: {server.status} on {server.host or move.host}", server.host)

    def _move_stopped(self, driver: ComputeDriver, vm: Placed, host: str, *, parked: bool) -> Server:
        """A stopped VM to a host outside its boot zone: nova's cold migration cannot go there (its scheduler
        holds the server to its request spec's zone, forced or not), and live migration needs a running
        server — so mark it (``PARKED``, on the server itself: a run killed meanwhile finds it), start it,
        live-migrate it (forced) and stop it again. It runs for those seconds."""
        server_id, timeout = vm.server_id or "", self.recovery.timeout
        if not parked:
            driver.set_server_meta(vm.tenant, server_id, PARKED, "yes")
        driver.set_power(vm.tenant, server_id, on=True, timeout=timeout)
        return self._stop_again(driver, vm, driver.live_migrate_server(vm.tenant, server_id, host=host, timeout=timeout))

    def _stop_again(self, driver: ComputeDriver, vm: Placed, server: Server) -> Server:
        """Stop a VM started for its move, then take the mark off: it arrives as it left, SHUTOFF."""
        stopped = driver.set_power(vm.tenant, server.id, on=False, timeout=self.recovery.timeout)
        driver.set_server_meta(vm.tenant, server.id, PARKED, None)
        return replace(stopped, host=stopped.host or server.host, zone=stopped.zone or server.zone)
