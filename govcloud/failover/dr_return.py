"""``govcloud dr return``: the ``dr`` VMs a DR activation left in the DR centre, back to Guangzhou (issue 14, item 2).

A DR activation (``activate.py``) rebuilt each ``dr`` VM in sg-dr from its replica; once the Guangzhou
centres are healthy again the VMs go home the same way, in the other direction: the DR server is
snapshotted, the snapshot copied into the home region's glance (``replicate.copy_image``: streamed,
size and MD5 checked three ways), the VM rebuilt from it in its home centre, and the DR copy retired.

Refused (exit 2, nothing changed) unless the cloud has a DR centre, its newest DR activation has ended
(no activation new or running), and every serving centre is healthy again: not recorded ``down`` by the
health watch, and at least one compute host of each that nova reports up and enabled. Nothing recorded
in the DR centre: exit 3 (nothing to return).

A return is a journalled run of kind ``dr-return`` (``store/runs.py``) of the DR centre — the same key as
an activation's, so a cloud has one activation or return at a time — opened through the journal
(``journal.py``: heartbeat, taken over by the next ``dr return`` when its process died). The plan
(``planner/dr_return.py``) goes group by group in the recovery plan's order through the failover steps
(``steps.py``: journal rows per VM, group hooks). Each VM, every step asking first what an earlier try
or a killed process already made, so none is done twice:

1. the return server: a server in the home region whose metadata names this run, ticket and index
   (booted by a process that died before recording it) — when found, steps 2–4 are skipped;
2. the DR server stopped, then its snapshot (nova createImage, as the tenant), named ``<vm>-return-<run>`` — an
   image of that name in the DR region is the snapshot of a killed process, waited for and used;
3. its copy into the home region's glance under the same name — a copy there that is active with the
   snapshot's size and MD5 is used, anything else of that name is deleted and the copy made again;
4. a server booted from the copy in the home centre's zone (the ticket's placement's zone, a profile's
   zone winning), same flavor, the ticket's network and server group as the home region has them;
   waited for ACTIVE (a server that ends otherwise is deleted, so that the next run boots again);
5. one transaction: the VM row points at the new server, the VM's ledger line moves back to its home
   centre (``store/tickets.move_allocation``) and the ticket's ``dr`` reservation in the DR centre is
   held again as before the activation (``store/tickets.restore_reservation``, never beyond what the
   ticket's plan reserved), audited ``dr.return`` with the downtime;
6. the DR server deleted (and waited for) and both images of the return deleted, audited
   ``dr.return.retire``. A process killed between 5 and 6 leaves its journal row ``moving`` with the DR
   server's id: the run that takes it over retires that copy first and journals the VM ``moved``.

The DR server is stopped (SHUTOFF, waited for) before its snapshot, so that the snapshot holds
everything it wrote; a VM whose return fails gets its DR server started again. Downtime of a VM is the
time from that stop to the server ACTIVE at home. A run resumed after a kill reports the part its own
process saw. The tickets' roles are applied to the returned VMs by the engine's configure step
(the CLI, as after an activation).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from govcloud.common.retry import retry
from govcloud.drivers.base import META_INDEX, META_SYSTEM, META_TENANT, META_TICKET, ComputeDriver, Endpoint, Image, Server, ServerSpec
from govcloud.errors import DriverError, GovcloudError, InputError, PermanentError
from govcloud.failover.journal import Journal
from govcloud.failover.recover import LIVE, placed_vms
from govcloud.failover.replicate import copy_image
from govcloud.failover.steps import HookRunner, Outcome, RecoveryRun, Steps
from govcloud.failover.watch import centre_refs, reported_up
from govcloud.model.access import require
from govcloud.model.endpoints import Endpoints
from govcloud.model.parsed import DesiredState
from govcloud.model.resources import Resources
from govcloud.model.topology import Centre, Cloud
from govcloud.model.users import User
from govcloud.planner.activation import dr_centre
from govcloud.planner.dr_return import plan_return
from govcloud.planner.failover import SERVING, Move, Placed, RecoveryPlan
from govcloud.planner.stored import decode
from govcloud.settings import DrSettings, FailoverSettings
from govcloud.store import Store, facts, runs, tickets
from govcloud.store.runs import MoveRow, RunRow
from govcloud.store.tickets import VmRow

KIND = "dr-return"
ACTIVATION = "dr-activation"
META_RETURN = "govcloud:dr-return"
"""Server metadata naming the ``dr-return`` run that booted a server in the home region."""


class ReturnRefused(InputError):
    """No return to Guangzhou now (exit 2, nothing changed): no ended activation, a centre not healthy…"""


class NothingToReturn(GovcloudError):
    """No VM is recorded in the DR centre (exit 3, nothing changed)."""

    exit_code = 3


def return_image_name(vm: str, run_id: int) -> str:
    """The name of a VM's snapshot in the DR region and of its copy at home: a process that dies before it
    records an id leaves images the next one finds by this name."""
    return f"{vm}-return-{run_id}"


@dataclass
class Return:
    """What one process did of a return run: the failover steps' outcomes, and per VM returned its
    downtime and ids (``reports``: VM name → numbers and ids)."""

    run: RecoveryRun
    activation: int
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def left(self) -> dict[str, str]:
        """VM name → what of its DR copy could not be deleted."""
        return {name: r["left"] for name, r in self.reports.items() if r.get("left")}

    def as_dict(self) -> dict[str, Any]:
        return {**self.run.as_dict(), "activation": self.activation, "vms": self.reports}


class DrReturn:
    """Checks, plans and carries out returns to Guangzhou; collaborators are passed in (STYLE habit 7)."""

    def __init__(self, *, store: Store, state: DesiredState, endpoints: Endpoints, driver: Callable[[Endpoint], ComputeDriver],
                 now: Callable[[], str], actor: User, dr_settings: DrSettings | None = None, timeout: float = 600.0, tries: int = 6,
                 on_retry: Callable[[dict[str, object]], None] = lambda _event: None, settings: FailoverSettings | None = None,
                 hook: HookRunner | None = None, clock: Callable[[], float] = time.time, owner: str | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        require(actor, "dr-return")  # the CLI builds one per command: the check is here, before anything is read
        self.store = store
        self.state = state
        self.endpoints = endpoints
        self.driver = driver
        self.now = now
        self.actor = actor.id
        self.dr_settings = dr_settings or DrSettings()
        self.timeout = timeout
        self.tries = tries
        self.on_retry = on_retry
        self.settings = settings or FailoverSettings()
        self.hook = hook
        self.sleep = sleep
        self.journal = Journal(store, now=now, clock=clock, settings=self.settings, owner=owner)

    def _retry(self, doing: str, call: Callable[[], Any]) -> Any:
        return retry(doing, call, tries=self.tries, on_retry=self.on_retry, sleep=self.sleep)

    # -- may it return now ---------------------------------------------------------------------
    def cloud(self, cloud_id: str) -> tuple[Cloud, Centre]:
        cloud = self.state.topology.cloud(cloud_id)
        dr = dr_centre(cloud) if cloud is not None else None
        if cloud is None or dr is None or cloud.driver != "openstack":
            have = ", ".join(c.id for c in self.state.topology.clouds if dr_centre(c) is not None and c.driver == "openstack") or "none"
            raise ReturnRefused(f"no cloud '{cloud_id}' with a DR centre that govcloud rebuilds VMs in; clouds with one: {have}")
        return cloud, dr

    def check(self, cloud_id: str) -> tuple[Cloud, Centre, RunRow, RunRow | None, dict[str, list[str]]]:
        """The cloud, its DR centre, its newest ended activation, its return run to resume (if any) and the
        hosts nova reports up per serving centre; ReturnRefused when the cloud may not return now."""
        cloud, dr = self.cloud(cloud_id)
        with self.store.transaction() as conn:
            current = runs.active_run(conn, cloud.id, dr.id)
            ended = [r for r in runs.runs(conn, cloud=cloud.id, centre=dr.id, limit=200) if r.kind == ACTIVATION]
            health = {h.centre: h for h in facts.health(conn) if h.cloud == cloud.id}
        if current is not None and current.kind != KIND:
            raise ReturnRefused(f"run {current.id} ({current.kind}) of {cloud.id} is {current.state}, started by {current.started_by}: "
                                f"a return waits until it has ended (one activation or return of a cloud at a time)")
        activation = next((r for r in ended if r.state not in runs.ACTIVE_STATES), None)
        if activation is None:
            raise ReturnRefused(f"no DR activation of {cloud.id} has ended: nothing was rebuilt in {dr.id} to bring back "
                                "(see 'govcloud failover history')")
        serving = [c for c in cloud.centres if c.role in SERVING]
        down = [f"{c.id} (recorded down since {health[c.id].since})" for c in serving if c.id in health and health[c.id].state == "down"]
        if down:
            raise ReturnRefused(f"the health watch records {', '.join(down)}: {cloud.id}'s VMs return only to healthy centres; "
                                "once the centre is back the watch records it up")
        hosts = self.hosts_up(cloud)
        empty = [c.id for c in serving if not hosts.get(c.id)]
        if empty:
            raise ReturnRefused(f"nova reports no compute host up and enabled in {', '.join(empty)}: {cloud.id}'s VMs return only to "
                                "healthy centres (see 'govcloud failover status')")
        return cloud, dr, activation, current, hosts

    def hosts_up(self, cloud: Cloud) -> dict[str, list[str]]:
        """Serving centre → its compute hosts nova reports up and enabled (one listing per endpoint)."""
        refs = [r for r in centre_refs(self.state.topology, self.endpoints)
                if r.cloud == cloud.id and (c := cloud.centre(r.centre)) is not None and c.role in SERVING]
        listings: dict[Endpoint, list[Any]] = {}
        for ref in refs:
            if ref.endpoint not in listings:
                try:
                    listings[ref.endpoint] = self.driver(ref.endpoint).compute_services()
                except DriverError as exc:
                    raise ReturnRefused(f"cannot list compute services of {ref.endpoint.cloud}/{ref.endpoint.region}: {exc}") from exc
        return {r.centre: sorted(s.host for s in listings[r.endpoint] if s.zone in r.zones and reported_up(s) and s.status == "enabled")
                for r in refs}

    def plan(self, cloud_id: str) -> tuple[RecoveryPlan, RunRow]:
        """The return plan (what ``--dry-run`` shows) and the activation it undoes; refusals as ``run``."""
        cloud, dr, activation, current, hosts = self.check(cloud_id)
        plan = self._plan(cloud, dr, hosts)
        if not plan.moves and not plan.held and current is None:
            raise NothingToReturn(f"no dr VM of {cloud.id} is recorded in {dr.id}: nothing to return (activation run {activation.id} "
                                  f"ended {activation.state})")
        return plan, activation

    def _plan(self, cloud: Cloud, dr: Centre, hosts: dict[str, list[str]]) -> RecoveryPlan:
        with self.store.transaction() as conn:
            live = tickets.listing(conn, states=LIVE)
            placed = [v for v in placed_vms(live, tickets.vms_of(conn)) if v.cloud == cloud.id and v.centre == dr.id]
        plans = {t.id: decode(t.plan) for t in live}
        zones = {v.name: z for v in placed if (z := self._zone(plans[v.ticket].vms, v)) is not None}
        return plan_return(cloud, placed, zones, hosts, self.state.recovery.of(cloud.id))

    def _zone(self, placements: Any, vm: Placed) -> str | None:
        """The zone the VM's placement chose, a profile's zone for its home centre winning."""
        placement = next((p for p in placements if p.index == vm.idx), None)
        profile = self.endpoints.of(vm.cloud, vm.home).zone if (vm.cloud, vm.home) in self.endpoints.targets else None
        return profile or (placement.zone if placement is not None else None)

    # -- carrying it out -----------------------------------------------------------------------
    def run(self, cloud_id: str, *, on_outcome: Callable[[Outcome], None] = lambda _o: None) -> Return:
        """Return the cloud's VMs recorded in its DR centre to their homes, as a journalled run (a new one, or
        the cloud's return run taken over from a dead process)."""
        plan, activation = self.plan(cloud_id)
        summary = {"activation": activation.id, "groups": plan.as_dict()["groups"], "moves": len(plan.moves), "held": len(plan.held)}
        run, resumed = self.journal.open(kind=KIND, cloud=plan.cloud, centre=plan.centre, user=self.actor, plan=summary)
        done = Return(RecoveryRun(plan, run_id=run.id, resumed=resumed), activation.id)

        def back(move: Move, _learn: Callable[[str | None], None]) -> Outcome:
            return self._return(run, move, done.reports)

        with self.journal.beating(run.id) as lost:
            self._finish_left(run, done)
            Steps(store=self.store, now=self.now, settings=self.settings, mover=back, hook=self.hook, run_id=run.id, lost=lost,
                  on_outcome=on_outcome).carry_out(plan, done.run)
        result = done.run
        if not result.settle(lost=lost, still_mine=lambda: self.journal.still_mine(run.id)):
            return done
        self.journal.end(run.id, state=result.state, user=self.actor, kind=KIND, subject=f"centre:{run.cloud}/{run.centre}",
                         detail={"activation": activation.id, "returned": len(result.moved), "failed": len(result.failed),
                                 "held": len(plan.held), "hooks_failed": result.hooks_failed,
                                 "left": done.left, "vms": done.reports})
        return done

    def _finish_left(self, run: RunRow, done: Return) -> None:
        """VMs a dead process of this run recorded at home but whose DR copy it may not have retired (its
        journal row still ``moving``): retire it now and journal the VM ``moved``."""
        with self.store.transaction() as conn:
            moving = [m for m in runs.moves_of(conn, [run.id]) if m.state == "moving"]
            rows = {v.name: v for v in tickets.vms_of(conn)}
        for move in moving:
            row = rows.get(move.vm)
            if row is None or row.centre == move.source_centre or not move.server_id:
                continue  # still in the DR centre: planned again
            dr = self.endpoints.of(row.cloud, move.source_centre)
            home = self.endpoints.of(row.cloud, row.centre)
            left = self._retire(run, row.name, row.tenant, move.server_id, Endpoint(dr.entry, dr.region), Endpoint(home.entry, home.region))
            done.reports[row.name] = {"ticket": row.ticket, "server": row.server_id, "dr_server": move.server_id, "from": move.source_centre,
                                      "to": row.centre, "resumed": True, **({"left": left} if left else {})}
            with self.store.transaction() as conn:
                runs.record_move(conn, MoveRow(**{**move.__dict__, "state": "moved", "ended_at": self.now(),
                                                  "message": "recorded at home by the run's earlier process; its DR copy retired on resume"
                                                  + (f" (not all: {left})" if left else "")}))

    # -- one VM --------------------------------------------------------------------------------
    def _return(self, run: RunRow, move: Move, reports: dict[str, dict[str, Any]]) -> Outcome:
        vm = move.vm
        there, home = self.endpoints.of(vm.cloud, vm.centre), self.endpoints.of(vm.cloud, move.target)
        source, target = Endpoint(there.entry, there.region), Endpoint(home.entry, home.region)
        dr, gz = self.driver(source), self.driver(target)
        name = return_image_name(vm.name, run.id)
        begun = time.monotonic()
        copied: dict[str, Any] = {}
        stopped = False
        try:
            spec = self._spec(run, vm, move.zone)
            server = self._returned(gz, vm, run)
            if server is None:
                begun = time.monotonic()
                stopped = True
                self._retry(f"stop {vm.name} in {vm.centre}",
                            lambda: dr.set_power(vm.tenant, vm.server_id or "", on=False, timeout=self.timeout))
                snapshot = self._snapshot(dr, vm, run, name)
                copy = self._retry(f"copy {name} to {target.region}", lambda: self._copy(dr, gz, vm, run, snapshot))
                copied = {"snapshot": snapshot.id, "image": copy.id, "size": copy.size, "checksum": copy.checksum,
                          "copied_s": round(time.monotonic() - begun, 3)}
                spec = ServerSpec(**{**spec.__dict__, "image": copy.id})
                server = self._retry(f"rebuild {vm.name} in {move.target}", lambda: self._boot(gz, vm, run, spec))
            else:
                server = self._retry(f"wait for {vm.name} in {move.target}",
                                     lambda: gz.wait_for_server(vm.tenant, server.id, timeout=self.timeout))
        except GovcloudError as exc:  # nova's or glance's refusal: this VM stays in the DR centre, the others go on
            restarted = self._give_back(vm, name, dr, gz, stopped)
            self.store.audit.append(self.actor, "dr.return.failed", f"vm:{vm.name}",
                                    {"run": run.id, "to": move.target, "error": str(exc), "dr_server": restarted})
            return Outcome(move, False, f"{exc} ({restarted})")
        if server.status != "ACTIVE":
            self._discard(gz, vm, server)
            restarted = self._give_back(vm, name, dr, gz, stopped)
            self.store.audit.append(self.actor, "dr.return.failed", f"vm:{vm.name}",
                                    {"run": run.id, "server": server.id, "status": server.status, "fault": server.fault,
                                     "dr_server": restarted})
            return Outcome(move, False, f"server {server.id} ended {server.status} in {move.target}: {server.fault or 'no fault given'} "
                                        f"(deleted: the next dr return boots it again; {restarted})")
        downtime = round(time.monotonic() - begun, 3)
        report = self._record(run, move, target.region, server, {**copied, "downtime_s": downtime})
        left = self._retire(run, vm.name, vm.tenant, vm.server_id or "", source, target)
        if left:
            report["left"] = left
        reports[vm.name] = report
        return Outcome(move, True, f"ACTIVE in {move.target} ({server.zone or move.zone}): downtime {downtime:.1f} s"
                                   + (f"; DR copy not all retired: {left}" if left else "; DR copy retired"), server.host)

    def _spec(self, run: RunRow, vm: Placed, zone: str) -> ServerSpec:
        """The server to boot at home: the ticket's placement of the VM (flavor, network, server group); the image follows."""
        with self.store.transaction() as conn:
            ticket = tickets.require(conn, vm.ticket)
        placement = next((p for p in decode(ticket.plan).vms if p.index == vm.idx), None)
        if placement is None:
            raise PermanentError(f"ticket {vm.ticket} has no VM {vm.idx} in its stored plan: nothing says its flavor and network")
        meta = {META_TICKET: vm.ticket, META_INDEX: str(vm.idx), META_TENANT: vm.tenant, META_SYSTEM: ticket.system, META_RETURN: str(run.id)}
        return ServerSpec(name=vm.name, tenant=vm.tenant, zone=zone, flavor=placement.flavor, size=vm.size, image="",
                          network=placement.network, metadata=meta, server_group=placement.server_group)

    def _returned(self, gz: ComputeDriver, vm: Placed, run: RunRow) -> Server | None:
        """The server this run booted at home for the VM, if a try or a dead process did (the oldest)."""
        found = self._retry(f"look for {vm.name} at home", lambda: gz.find_servers(vm.tenant, vm.name))
        ours = [s for s in found if s.metadata.get(META_RETURN) == str(run.id) and s.metadata.get(META_TICKET) == vm.ticket
                and s.metadata.get(META_INDEX) == str(vm.idx) and s.status != "DELETED"]
        return min(ours, key=lambda s: s.created) if ours else None

    def _snapshot(self, dr: ComputeDriver, vm: Placed, run: RunRow, name: str) -> Image:
        """The DR server's snapshot: the one an earlier try or process made under ``name``, else a new one; active."""
        def take() -> Image:  # asks first on every try: a try whose answer was lost made it already
            made = dr.images(vm.tenant, name=name)
            if made:
                return min(made, key=lambda i: i.created)
            return dr.snapshot_server(vm.tenant, vm.server_id or "", name=name, metadata=self._properties(vm, run))

        snapshot: Image = self._retry(f"snapshot {vm.name} in {vm.centre}", take)
        waited: Image = self._retry(f"wait for snapshot {name}",
                                    lambda: dr.wait_for_image(vm.tenant, snapshot.id, timeout=self.dr_settings.snapshot_timeout))
        return waited

    def _copy(self, dr: ComputeDriver, gz: ComputeDriver, vm: Placed, run: RunRow, snapshot: Image) -> Image:
        """The snapshot's copy at home: one already there with its size and MD5, else a fresh verified copy
        (whatever else carries the name — a copy cut short — deleted first). Its properties are govcloud's
        own: the snapshot's include what glance sets itself (``stores``…), which an upload may not."""
        tenant = vm.tenant
        there = gz.images(tenant, name=snapshot.name)
        good = [i for i in there if i.status == "active" and i.size == snapshot.size and i.checksum and i.checksum == snapshot.checksum]
        if good:
            return good[0]
        for image in there:
            gz.delete_image(tenant, image.id)
        return copy_image(dr, gz, tenant, snapshot, self._properties(vm, run), chunk_size=self.dr_settings.chunk_size)

    @staticmethod
    def _properties(vm: Placed, run: RunRow) -> dict[str, str]:
        """The properties of both images of a VM's return."""
        return {"govcloud:vm": vm.name, "govcloud:ticket": vm.ticket, "govcloud:tenant": vm.tenant, META_RETURN: str(run.id)}

    def _boot(self, gz: ComputeDriver, vm: Placed, run: RunRow, spec: ServerSpec) -> Server:
        """Boot the VM at home (unless a try whose answer was lost did) and wait for it."""
        server = self._returned(gz, vm, run) or gz.create_server(spec)
        return gz.wait_for_server(vm.tenant, server.id, timeout=self.timeout)

    def _give_back(self, vm: Placed, name: str, dr: ComputeDriver, gz: ComputeDriver, stopped: bool) -> str:
        """A VM that failed keeps its DR copy, started again when this return stopped it; the images its
        return made go (best effort: a later try of the same run finds them by name). What became of the DR copy."""
        for driver in (dr, gz):
            with contextlib.suppress(DriverError):
                self._delete_images(driver, vm.tenant, name)
        if not stopped:
            return f"the DR copy {vm.server_id} was not stopped"
        try:
            self._retry(f"start {vm.name} in {vm.centre} again",
                        lambda: dr.set_power(vm.tenant, vm.server_id or "", on=True, timeout=self.timeout))
        except DriverError as exc:
            return f"the DR copy {vm.server_id} is stopped and could not be started again: {exc}"
        return f"the DR copy {vm.server_id} runs again"

    def _discard(self, gz: ComputeDriver, vm: Placed, server: Server) -> None:
        with contextlib.suppress(DriverError):  # else found again by its metadata next time, and waited for once more
            gz.delete_server(vm.tenant, server.id)

    def _record(self, run: RunRow, move: Move, region: str, server: Server, numbers: dict[str, Any]) -> dict[str, Any]:
        """One transaction: the VM row points at the server at home, the ledger moves back, audit."""
        vm, now = move.vm, self.now()
        report = {"ticket": vm.ticket, "server": server.id, "dr_server": vm.server_id, "from": vm.centre, "to": move.target,
                  "zone": server.zone or move.zone, **numbers}
        with self.store.transaction() as conn:
            tickets.lock_quota(conn)
            row = next((r for r in tickets.vms_of(conn, vm.ticket) if r.idx == vm.idx), None)
            if row is None:
                return report  # retired meanwhile
            tickets.upsert_vm(conn, VmRow(**{**row.__dict__, "region": region, "centre": move.target, "zone": report["zone"],
                                             "server_id": server.id, "status": server.status, "address": server.address,
                                             "fault": server.fault, "updated_at": now}))
            tickets.move_allocation(conn, vm.ticket, vm.cloud, vm.centre, move.target, vm.size, now=now)
            report["reservation_restored"] = self._restore(conn, vm, now)
            self.store.audit.append(self.actor, "dr.return", f"vm:{vm.name}", {"run": run.id, **report}, connection=conn)
        return report

    def _restore(self, conn: Any, vm: Placed, now: str) -> bool:
        """Hold the VM's share of the ticket's ``dr`` reservation in the DR centre again, never beyond what
        the ticket's plan reserved there (an activation used it up; a ticket without one had none)."""
        ticket = tickets.require(conn, vm.ticket)
        reserved = sum((r.resources for r in decode(ticket.plan).reservations if r.cloud == vm.cloud and r.centre == vm.centre),
                       Resources())
        held = sum((line.resources for line in tickets.ledger_lines(conn, ticket=vm.ticket)
                    if line.cloud == vm.cloud and line.centre == vm.centre and line.kind == "dr"), Resources())
        missing = (reserved - held).clamped()
        share = Resources(**{k: min(v, missing.as_dict()[k]) for k, v in vm.size.as_dict().items()})
        if not any(share.as_dict().values()):
            return False
        return tickets.restore_reservation(conn, vm.ticket, vm.cloud, vm.centre, share, now=now)

    def _delete_images(self, driver: ComputeDriver, tenant: str, name: str) -> list[str]:
        """Delete every image called ``name`` of the tenant's in one region; their ``region/id``."""
        region = driver.endpoint.region
        found: list[Image] = self._retry(f"list images {name} in {region}", lambda: driver.images(tenant, name=name))
        for image in found:
            self._delete_image(driver, tenant, image.id)
        return [f"{region}/{i.id}" for i in found]

    def _delete_image(self, driver: ComputeDriver, tenant: str, image_id: str) -> None:
        self._retry(f"delete image {image_id} in {driver.endpoint.region}", lambda: driver.delete_image(tenant, image_id))

    def _retire(self, run: RunRow, vm_name: str, tenant: str, dr_server: str, source: Endpoint, target: Endpoint) -> str:
        """Delete the DR copy (waited for) and the return's images in both regions; what could not be deleted."""
        dr, gz = self.driver(source), self.driver(target)
        name = return_image_name(vm_name, run.id)
        errors: list[str] = []
        images: list[str] = []
        try:
            if dr_server:
                self._retry(f"delete {vm_name}'s DR copy {dr_server}", lambda: dr.delete_server(tenant, dr_server))
                self._retry(f"wait for {dr_server} to go", lambda: dr.wait_for_delete(tenant, dr_server, timeout=self.timeout))
        except DriverError as exc:
            errors.append(f"server {dr_server} in {source.region}: {exc}")
        for endpoint, driver in ((source, dr), (target, gz)):
            try:
                images += self._delete_images(driver, tenant, name)
            except DriverError as exc:
                errors.append(f"images {name} in {endpoint.region}: {exc}")
        left = "; ".join(errors)
        self.store.audit.append(self.actor, "dr.return.retire", f"vm:{vm_name}",
                                {"run": run.id, "server": dr_server, "region": source.region, "images": images, "left": left})
        return left
