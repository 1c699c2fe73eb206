"""DR drills (issue 14, part 3): a protection group's recovery tried out for real, without touching production.

A DR plan that has never been drilled is a plan on paper. ``govcloud drill run GROUP --target sg-dr`` boots
a copy of each ``dr`` VM of a protection group of ``recovery/<cloud>.yaml`` from its newest replica
(``failover/replicate.py``: the copy in the DR region for ``sg-dr``, the snapshot itself in the VM's own
region for ``gz-backup``), same flavor, on a network made for the drill — a network and subnet without
gateway and without router, in the tenant's project, so that nothing routes between the copies and
production — then runs the group's hook on the copies as a smoke test (``failover/hooks.py``), measures
per VM, per group and in total how long the recovery took, and deletes everything it made.

It never acts on a production server: it reads VM rows and replica rows from the store, and every call it
makes to a cloud creates, lists or deletes resources named with its run's tag ``govcloud-drill-<run id>``
(servers ``govcloud-drill-<id>-<vm>``, networks and subnets ``govcloud-drill-<id>-<tenant>``). That tag is
also how a drill killed half-way is cleaned up: ``drill cleanup`` and the next ``drill run`` list every
endpoint's resources by the prefix ``govcloud-drill-`` (not the store alone: a server whose POST was in
flight when the process died is in no row) and delete those of every drill that is not running in a live
process; the drill's run row is ended ``failed`` with the reason.

Evidence: a drill is a run of the recovery journal (``store/runs.py``): kind ``drill``, ``cloud``, ``centre`` =
the target, ``state`` ``succeeded`` when every copy became ACTIVE and the hook passed (else ``failed``),
``detail`` with the group, timings, actor, per-VM results and what the clean-up found; one ``recovery_moves``
row per VM and one ``recovery_steps`` row for the group, as a failover has. It holds the ``active`` key
``drill:<cloud>/<group>`` (``runs.drill_key``), not the centre's: one drill per group at a time, and a real
failover or DR activation of the same centre is never refused because of a drill. A Markdown report is
written as a private file under the state directory (``drills/drill-<id>.md``).
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from govcloud.common.retry import retry
from govcloud.drivers.base import TAGGED_KINDS, ComputeDriver, Endpoint, Server, ServerSpec, Tagged
from govcloud.errors import DriverError, GovcloudError, InputError, PermanentError
from govcloud.failover.journal import Journal
from govcloud.failover.recover import LIVE, placed_vms
from govcloud.failover.steps import HookCall, HookResult, HookRunner
from govcloud.files import private_dir, private_file
from govcloud.model.access import require, visible_tenants
from govcloud.model.endpoints import Endpoints
from govcloud.model.parsed import DesiredState
from govcloud.model.topology import Cloud
from govcloud.model.users import User
from govcloud.planner.failover import Placed, Step, steps_of
from govcloud.planner.stored import decode
from govcloud.settings import FailoverSettings
from govcloud.store import Store, replicas, runs, tickets
from govcloud.store.runs import MoveRow, RunRow, StepRow

KIND = "drill"
PREFIX = "govcloud-drill-"
META_DRILL = "govcloud:drill"
CIDR = "172.31.255.0/24"
"""The drill network's subnet: any range will do, nothing routes to it."""
_RUN_OF = re.compile(rf"^{re.escape(PREFIX)}(\d+)(?:-|$)")


class DrillRefused(InputError):
    """No drill can be run as asked (unknown cloud, group or target, nothing to drill; exit 2, nothing made)."""


def tag(run_id: int) -> str:
    """The name prefix of everything drill ``run_id`` makes."""
    return f"{PREFIX}{run_id}"


def run_of(name: str) -> int | None:
    """The drill run id a resource's name carries, if it is a drill's."""
    found = _RUN_OF.match(name)
    return int(found.group(1)) if found else None


def _seconds(start: str, end: str) -> float:
    return round((datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)).total_seconds(), 3)


@dataclass(frozen=True)
class Subject:
    """One VM of the group to drill: its production row and the replica image its copy boots from."""

    vm: Placed
    replica: str | None
    image: str | None
    taken_at: str | None


@dataclass
class Cleanup:
    """What one clean-up found and deleted, per endpoint, and what is still there after (must be nothing)."""

    deleted: list[dict[str, str]] = field(default_factory=list)
    leftovers: list[dict[str, str]] = field(default_factory=list)
    ended_runs: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "leftovers": self.leftovers, "ended_runs": self.ended_runs, "errors": self.errors}


@dataclass
class DrillResult:
    run: RunRow
    detail: dict[str, Any]
    report: Path | None = None

    @property
    def ok(self) -> bool:
        """Succeeded, and everything it made is verifiably gone."""
        cleanup = self.detail["cleanup"]
        return self.run.state == "succeeded" and not cleanup["leftovers"] and not cleanup["errors"]


class Drill:
    """Runs, cleans up and lists drills; collaborators are passed in (STYLE habit 7)."""

    def __init__(self, *, store: Store, state: DesiredState, endpoints: Endpoints, driver: Callable[[Endpoint], ComputeDriver],
                 now: Callable[[], str], actor: User, hook: HookRunner | None = None, settings: FailoverSettings | None = None,
                 timeout: float = 600.0, tries: int = 3, sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
                 owner: str | None = None, onboard: Callable[[str, Endpoint], object] | None = None, report_dir: Path | None = None,
                 on_event: Callable[[str], None] = lambda _s: None, delete_timeout: float = 300.0) -> None:
        self.store = store
        self.state = state
        self.endpoints = endpoints
        self.driver = driver
        self.now = now
        self.actor = actor
        self.hook = hook
        self.settings = settings or FailoverSettings()
        self.timeout = timeout
        self.tries = tries
        self.sleep = sleep
        self.onboard = onboard
        self.report_dir = report_dir
        self.on_event = on_event
        self.delete_timeout = delete_timeout
        self.journal = Journal(store, now=now, clock=clock, settings=self.settings, owner=owner)

    # -- what to drill ---------------------------------------------------------------------------
    def _cloud(self, cloud_id: str) -> Cloud:
        cloud = self.state.topology.cloud(cloud_id)
        if cloud is None or cloud.driver != "openstack":
            known = ", ".join(c.id for c in self.state.topology.clouds if c.driver == "openstack") or "none"
            raise DrillRefused(f"no OpenStack cloud '{cloud_id}' in the topology; clouds govcloud can drill in: {known}")
        return cloud

    def _step(self, cloud: Cloud, group: str) -> Step:
        groups = self.state.recovery.of(cloud.id)
        step = next((s for s in steps_of(groups) if s.name == group and s.name in {g.name for g in groups}), None)
        if step is None:
            raise DrillRefused(f"no protection group '{group}' in the recovery plan of {cloud.id} (recovery/{cloud.id}.yaml); groups: "
                               f"{', '.join(g.name for g in groups) or 'none'}")
        return step

    def subjects(self, cloud_id: str, group: str, target: str) -> tuple[Cloud, Step, str, list[Subject], list[Placed]]:
        """The cloud, the group's step, the target's region, the group's ``dr`` VMs with the image each copy boots
        from (None: no ready replica there), and the group's other VMs (no replica: not drilled)."""
        cloud = self._cloud(cloud_id)
        step = self._step(cloud, group)
        centre = next((c for c in cloud.centres if c.id == target), None)
        if centre is None or (cloud.id, centre.id) not in self.endpoints.targets:
            raise DrillRefused(f"no centre '{target}' of {cloud.id} to drill in; centres: {', '.join(c.id for c in cloud.centres)}")
        region = self.endpoints.of(cloud.id, centre.id).region
        systems = set(next(g for g in self.state.recovery.of(cloud.id) if g.name == group).systems)
        with self.store.transaction() as conn:
            placed = [v for v in placed_vms(tickets.listing(conn, states=LIVE), tickets.vms_of(conn))
                      if v.cloud == cloud.id and v.system in systems]
            chosen = [Subject(v, *_image_in(conn, v, region)) for v in placed if v.protection == "dr"]
        others = [v for v in placed if v.protection != "dr"]
        if not chosen:
            raise DrillRefused(f"group {group} of {cloud.id} has no dr VM (only dr VMs are replicated; VMs of the group: "
                               f"{len(placed)}): nothing to drill")
        return cloud, step, region, sorted(chosen, key=lambda s: (s.vm.ticket, s.vm.idx)), others

    # -- a drill ---------------------------------------------------------------------------------
    def run(self, group: str, *, cloud_id: str = "gd-prov", target: str = "sg-dr") -> DrillResult:
        """One drill of ``group`` in ``target``: copies booted, hook run, everything deleted, the run journalled."""
        require(self.actor, "drill")
        cloud, step, region, chosen, others = self.subjects(cloud_id, group, target)
        found = self.cleanup()  # leftovers of drills that died, and their runs ended, before this one starts
        if found.deleted:
            self.on_event(f"cleaned {len(found.deleted)} leftovers of earlier drills (runs {found.ended_runs})")
        target_ref = self.endpoints.of(cloud.id, target)
        zone = target_ref.zone or next(c for c in cloud.centres if c.id == target).availability_zones[0]
        endpoint = Endpoint(cloud=target_ref.entry, region=target_ref.region)
        plan = {"group": group, "target": target, "region": region, "zone": zone,
                "vms": [{"vm": s.vm.name, "replica": s.replica, "image": s.image} for s in chosen]}
        with self.store.transaction() as conn:
            run = runs.create_run(conn, kind=KIND, cloud=cloud.id, centre=target, user=self.actor.id, owner=self.journal.owner,
                                  now=self.now(), plan=plan, detail={"group": group}, key=runs.drill_key(cloud.id, group))
            self.store.audit.append(self.actor.id, "drill.start", f"centre:{cloud.id}/{target}", {"run": run.id, **plan}, connection=conn)
        self.on_event(f"drill run {run.id}: {len(chosen)} copies of group {group} in {target} ({region}), tag {tag(run.id)}")
        started, begun = self.now(), time.monotonic()
        with self.journal.beating(run.id):
            results, hook, timings = self._carry(run, step, endpoint, zone, chosen, begun)
            cleanup = self._clean_own(run.id, endpoint)
        ok = bool(results) and all(r["ok"] for r in results) and hook["ok"]
        state = "succeeded" if ok else "failed"
        detail = {"group": group, "target": target, "region": region, "cloud": cloud.id, "actor": self.actor.id,
                  "actor_name": self.actor.name, "tag": tag(run.id), "started_at": started, "ended_at": self.now(),
                  "vms": results, "not_drilled": [{"vm": v.name, "protection": v.protection, "reason": "not a dr VM: it has no replica"}
                                                  for v in others],
                  "hook": hook, "rto": timings, "tenants": sorted({s.vm.tenant for s in chosen}),
                  "cleanup": {**cleanup.as_dict(), "seconds": round(time.monotonic() - begun - timings["total_s"], 3)},
                  "production_touched": False}
        self.journal.end(run.id, state=state, user=self.actor.id, kind=KIND, subject=f"centre:{cloud.id}/{target}",
                         detail={**detail, "stale_cleanup": found.as_dict()})
        with self.store.transaction() as conn:
            ended = runs.get_run(conn, run.id)
        assert ended is not None
        result = DrillResult(ended, ended.detail)
        result.report = self._write_report(ended)
        return result

    def _carry(self, run: RunRow, step: Step, endpoint: Endpoint, zone: str, chosen: Sequence[Subject],
               begun: float) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
        """Networks, copies (in parallel), the hook; per-VM results, the hook's, and the timings."""
        driver = self.driver(endpoint)
        networks: dict[str, str] = {}
        network_errors: dict[str, str] = {}
        for tenant in sorted({s.vm.tenant for s in chosen}):
            try:
                if self.onboard is not None:
                    self.onboard(tenant, endpoint)
                made = retry(f"create the drill network of {tenant}", lambda tenant=tenant: self._network(driver, run.id, tenant),  # type: ignore[misc]
                             tries=self.tries, sleep=self.sleep)
                networks[tenant] = made
            except GovcloudError as exc:
                network_errors[tenant] = str(exc)
        network_s = round(time.monotonic() - begun, 3)
        group_started = self.now()
        self._record_step(StepRow(run.id, step.name, 0, step.priority, "running", group_started, hook=step.hook.role if step.hook else None))
        group_begun = time.monotonic()

        def one(subject: Subject) -> tuple[dict[str, Any], Server | None]:
            return self._copy(run, driver, zone, subject, networks.get(subject.vm.tenant), network_errors.get(subject.vm.tenant))

        with ThreadPoolExecutor(max_workers=max(1, min(self.settings.parallel_per_cloud, len(chosen))),
                                thread_name_prefix=f"drill-{run.id}") as pool:
            done = list(pool.map(one, chosen))
        copies_s = round(time.monotonic() - group_begun, 3)
        hook = self._hook(run, step, [(s, server) for s, (r, server) in zip(chosen, done, strict=True) if r["ok"] and server is not None],
                          all(r["ok"] for r, _ in done))
        group_s = round(time.monotonic() - group_begun, 3)
        self._record_step(StepRow(run.id, step.name, 0, step.priority, "done" if hook["ok"] else "hook-failed", group_started, self.now(),
                                  step.hook.role if step.hook else None, hook["detail"]))
        timings = {"network_s": network_s, "copies_s": copies_s, "hook_s": round(group_s - copies_s, 3),
                   "groups": {step.name: group_s}, "total_s": round(time.monotonic() - begun, 3)}
        return [r for r, _ in done], hook, timings

    def _network(self, driver: ComputeDriver, run_id: int, tenant: str) -> str:
        """The tenant's drill network: found by name (a try whose answer was lost made it), else made."""
        name = f"{tag(run_id)}-{tenant}"
        existing = [t for t in driver.tagged(tag(run_id)) if t.kind == "network" and t.name == name]
        if existing:
            return existing[0].id
        return driver.create_isolated_network(tenant, name=name, cidr=CIDR,
                                              description=f"govcloud drill {run_id}: isolated, no router, no gateway; deleted after the drill").id

    def _copy(self, run: RunRow, driver: ComputeDriver, zone: str, subject: Subject, network: str | None,
              network_error: str | None) -> tuple[dict[str, Any], Server | None]:
        vm = subject.vm
        result: dict[str, Any] = {"vm": vm.name, "ticket": vm.ticket, "tenant": vm.tenant, "system": vm.system,
                                  "production_server": vm.server_id, "replica": subject.replica, "image": subject.image,
                                  "taken_at": subject.taken_at, "server": None, "status": None, "host": None, "boot_s": None,
                                  "ok": False, "error": None}
        started = self.now()
        begun = time.monotonic()
        server: Server | None = None
        try:
            if subject.image is None:
                raise PermanentError(f"no ready replica of {vm.name} with an image in the target's region: nothing to boot it from "
                                     "(govcloud dr replicate)")
            if network is None:
                raise PermanentError(f"no drill network for {vm.tenant}: {network_error}")
            spec = self._spec(run, vm, zone, subject.image, network)

            def boot() -> Server:  # asks first: a try whose answer was lost booted it already
                found = [s for s in driver.find_servers(vm.tenant, spec.name) if s.metadata.get(META_DRILL) == str(run.id)]
                made = min(found, key=lambda s: s.created) if found else driver.create_server(spec)
                return driver.wait_for_server(vm.tenant, made.id, timeout=self.timeout)

            server = retry(f"boot the drill copy of {vm.name}", boot, tries=self.tries, sleep=self.sleep)
            result.update(server=server.id, status=server.status, host=server.host, address=server.address,
                          boot_s=round(time.monotonic() - begun, 3), ok=server.status == "ACTIVE")
            if server.status != "ACTIVE":
                result["error"] = f"{server.status}: {server.fault or 'no fault given'}"
        except GovcloudError as exc:
            result["error"] = str(exc)
        ended = self.now()
        with self.store.transaction() as conn:
            runs.record_move(conn, MoveRow(run.id, vm.name, vm.ticket, run.plan["group"], 0, vm.protection, vm.centre,
                                           "moved" if result["ok"] else "failed", server_id=result["server"], target_centre=run.centre,
                                           target_zone=zone, target_host=result["host"], started_at=started, ended_at=ended,
                                           message=f"drill copy {result['server']} ACTIVE in {result['boot_s']} s" if result["ok"]
                                           else str(result["error"])))
        self.on_event(f"{'ok    ' if result['ok'] else 'FAILED'} {vm.name}: " + (f"copy {server.id} ACTIVE on {server.host} in "
                                                                                  f"{result['boot_s']} s" if result["ok"] and server
                                                                                  else str(result["error"])))
        return result, server

    def _spec(self, run: RunRow, vm: Placed, zone: str, image: str, network: str) -> ServerSpec:
        """The copy: the ticket's flavor for the VM, the replica image, the drill network; no ticket metadata (it
        is nobody's VM: reconciliation must not take it for one)."""
        with self.store.transaction() as conn:
            ticket = tickets.require(conn, vm.ticket)
        placement = next((p for p in decode(ticket.plan).vms if p.index == vm.idx), None)
        if placement is None:
            raise PermanentError(f"ticket {vm.ticket} has no VM {vm.idx} in its stored plan: nothing says its flavor")
        return ServerSpec(name=f"{tag(run.id)}-{vm.name}", tenant=vm.tenant, zone=zone, flavor=placement.flavor, size=vm.size, image=image,
                          network=network, metadata={META_DRILL: str(run.id), "govcloud:drill-of": vm.name,
                                                     "govcloud:drill-group": str(run.plan["group"])})

    def _hook(self, run: RunRow, step: Step, up: Sequence[tuple[Subject, Server]], all_up: bool) -> dict[str, Any]:
        """The group's hook on the copies (their addresses and ids, never production's)."""
        if step.hook is None:
            return {"ok": True, "ran": False, "detail": f"group {step.name} has no hook in the plan: nothing to smoke-test"}
        if not up:
            return {"ok": False, "ran": False, "detail": "no copy came up: the hook did not run"}
        if self.hook is None:
            return {"ok": False, "ran": False, "detail": "no hook runner configured: the hook did not run"}
        with self.store.transaction() as conn:
            production = {(v.ticket, v.idx): v for v in tickets.vms_of(conn)}
        rows = tuple(replace(production[(s.vm.ticket, s.vm.idx)], server_id=server.id, address=server.address, centre=run.centre,
                             status=server.status, name=s.vm.name) for s, server in up if (s.vm.ticket, s.vm.idx) in production)
        try:
            result = self.hook(HookCall(run.id, run.cloud, run.centre, step, rows))
        except Exception as exc:  # noqa: BLE001 - a hook that blows up is a failed hook, recorded
            result = HookResult(False, f"{type(exc).__name__}: {exc}")
        return {"ok": result.ok, "ran": True, "role": step.hook.role, "detail": result.detail, "hosts": [r.address for r in rows],
                "all_copies_up": all_up}

    def _record_step(self, row: StepRow) -> None:
        with self.store.transaction() as conn:
            runs.record_step(conn, row)

    # -- clean-up --------------------------------------------------------------------------------
    def _all_endpoints(self) -> list[Endpoint]:
        """Every endpoint of every OpenStack cloud (the DR region too): where a drill may have left something."""
        openstack = {c.id for c in self.state.topology.clouds if c.driver == "openstack"}
        return sorted({Endpoint(t.entry, t.region) for (cloud, _), t in self.endpoints.targets.items() if cloud in openstack},
                      key=lambda e: (e.cloud, e.region))

    def _clean_own(self, run_id: int, endpoint: Endpoint) -> Cleanup:
        """Everything this drill made; a listing that fails is recorded (the drill then fails its clean-up, and
        ``drill cleanup`` or the next drill finds the rest by name)."""
        done = Cleanup()
        try:
            self._delete(self.driver(endpoint), endpoint, lambda item: run_of(item.name) == run_id, done)
        except GovcloudError as exc:
            done.errors.append(f"{endpoint.cloud}/{endpoint.region}: {exc}")
        return done

    def cleanup(self) -> Cleanup:
        """Delete what drills left in any endpoint (found by name), except what a drill still running in a live
        process makes; end the run rows of drills whose process died (``failed``, with what was found)."""
        require(self.actor, "drill")
        with self.store.transaction() as conn:
            open_drills = [r for r in runs.runs(conn, limit=1000, kinds=(KIND,)) if r.state in runs.ACTIVE_STATES]
        alive = {r.id for r in open_drills if r.owner == self.journal.owner or not self.journal.stale(r)}
        done = Cleanup()
        for endpoint in self._all_endpoints():
            try:
                driver = self.driver(endpoint)
                self._delete(driver, endpoint, lambda item: (n := run_of(item.name)) is not None and n not in alive, done)
            except DriverError as exc:
                done.errors.append(f"{endpoint.cloud}/{endpoint.region}: {exc}")
        for run in open_drills:
            if run.id in alive:
                continue
            mine = [d for d in done.deleted if run_of(d["name"]) == run.id]
            detail = {**run.detail, "group": run.plan.get("group", run.detail.get("group")), "actor": run.started_by,
                      "error": f"the drill's process ({run.owner}) died before it ended (last heartbeat {run.heartbeat_at}); "
                               f"cleaned up by {self.actor.id}", "cleanup": {"deleted": mine, "leftovers": done.leftovers}}
            with self.store.transaction() as conn:
                if runs.end_run(conn, run.id, state="failed", now=self.now(), detail=detail, owner=run.owner):
                    self.store.audit.append(self.actor.id, "drill.abandoned", f"centre:{run.cloud}/{run.centre}",
                                            {"run": run.id, "owner": run.owner, "deleted": len(mine)}, connection=conn)
                    done.ended_runs.append(run.id)
        return done

    def _delete(self, driver: ComputeDriver, endpoint: Endpoint, wanted: Callable[[Tagged], bool], done: Cleanup) -> None:
        """Servers first (and until nova has them gone), then ports, subnets, networks, images; then looks again."""
        where = f"{endpoint.cloud}/{endpoint.region}"
        found = [t for t in driver.tagged(PREFIX) if wanted(t)]
        for kind in TAGGED_KINDS:
            for item in (t for t in found if t.kind == kind):
                try:
                    retry(f"delete {kind} {item.name or item.id}", lambda item=item: driver.delete_tagged(item),  # type: ignore[misc]
                          tries=self.tries, sleep=self.sleep)
                    done.deleted.append({"endpoint": where, "kind": kind, "id": item.id, "name": item.name})
                except GovcloudError as exc:
                    done.errors.append(f"{where}: {kind} {item.id}: {exc}")
            if kind == "server":
                self._until_servers_gone(driver, wanted)
        done.leftovers += [{"endpoint": where, "kind": t.kind, "id": t.id, "name": t.name}
                           for t in driver.tagged(PREFIX) if wanted(t)]

    def _until_servers_gone(self, driver: ComputeDriver, wanted: Callable[[Tagged], bool]) -> None:
        deadline = time.monotonic() + self.delete_timeout
        while any(t.kind == "server" and wanted(t) for t in driver.tagged(PREFIX)) and time.monotonic() < deadline:
            self.sleep(1.0)

    # -- evidence --------------------------------------------------------------------------------
    def _write_report(self, run: RunRow) -> Path | None:
        if self.report_dir is None:
            return None
        directory = private_dir(self.report_dir)
        path = private_file(directory / f"drill-{run.id}.md")
        path.write_text(report_markdown(run), encoding="utf-8")
        return path


def _image_in(conn: Any, vm: Placed, region: str) -> tuple[str | None, str | None, str | None]:
    """The VM's newest ready replica with an image in ``region``: (row id, image id, taken at); Nones when none."""
    ready = [r for r in replicas.of_vm(conn, vm.ticket, vm.idx) if r.state == "ready"]
    usable = [(r, r.dr_image if r.dr_region == region else r.source_image) for r in ready if region in (r.dr_region, r.source_region)]
    usable = [(r, image) for r, image in usable if image]
    if not usable:
        return None, None, None
    newest, image = max(usable, key=lambda pair: (pair[0].taken_at, pair[0].id))
    return newest.id, image, newest.taken_at


def report_markdown(run: RunRow) -> str:
    """The human report of one drill: who, when, timings, each VM, the hook, the clean-up."""
    d = run.detail
    rto = d.get("rto", {})
    lines = [f"# DR drill {run.id}: group {d.get('group')} of {run.cloud} in {run.centre}", "",
             f"- **Result: {run.state.upper()}**",
             f"- Run by: {d.get('actor', run.started_by)} ({d.get('actor_name', '')})",
             f"- Started: {run.started_at}; ended: {run.finished_at}",
             f"- Target: {run.centre} (region {d.get('region')}), tag `{d.get('tag')}`; production servers were not touched",
             f"- RTO: group {d.get('group')} {rto.get('groups', {}).get(d.get('group'), '?')} s, total {rto.get('total_s', '?')} s "
             f"(isolated network {rto.get('network_s', '?')} s, copies ACTIVE {rto.get('copies_s', '?')} s, hook {rto.get('hook_s', '?')} s)",
             "", "## VMs", "", "| VM | replica taken | copy | host | boot (s) | result |", "|---|---|---|---|---|---|"]
    for vm in d.get("vms", []):
        lines.append(f"| {vm['vm']} | {vm.get('taken_at') or '-'} | {vm.get('server') or '-'} | {vm.get('host') or '-'} | "
                     f"{vm.get('boot_s') if vm.get('boot_s') is not None else '-'} | {'passed' if vm['ok'] else 'FAILED: ' + str(vm.get('error'))} |")
    for vm in d.get("not_drilled", []):
        lines.append(f"| {vm['vm']} | - | - | - | - | not drilled: {vm['reason']} |")
    hook = d.get("hook", {})
    cleanup = d.get("cleanup", {})
    lines += ["", "## Smoke test (the group's hook)", "", f"{'passed' if hook.get('ok') else 'FAILED'}: {hook.get('detail', d.get('error', ''))}",
              "", "## Clean-up", "", f"Deleted {len(cleanup.get('deleted', []))} resources; left over: "
              f"{len(cleanup.get('leftovers', []))}" + ("" if not cleanup.get("leftovers") else
                                                         " — " + ", ".join(f"{x['kind']} {x['id']}" for x in cleanup["leftovers"]))]
    if cleanup.get("errors"):
        lines += ["", "Errors: " + "; ".join(cleanup["errors"])]
    if d.get("error"):
        lines += ["", f"Error: {d['error']}"]
    return "\n".join(lines) + "\n"


def history(store: Store, user: User, *, cloud: str | None = None, group: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Drills, the newest first; a requester sees only drills of groups with VMs of its own tenants."""
    tenants = visible_tenants(user)
    with store.transaction() as conn:
        found = runs.runs(conn, cloud=cloud, limit=limit if group is None else 1000, kinds=(KIND,))
        moves = runs.moves_of(conn, [r.id for r in found])
        owner = {t.id: t.tenant for t in tickets.listing(conn)}
    touched: dict[int, set[str]] = {}
    for move in moves:
        touched.setdefault(move.run_id, set()).add(owner.get(move.ticket, ""))
    rows = []
    for run in found:
        d = run.detail
        name = d.get("group") or run.plan.get("group")
        if group is not None and name != group:
            continue
        if tenants is not None and not (set(d.get("tenants", ())) | touched.get(run.id, set())) & set(tenants):
            continue
        vms = d.get("vms", [])
        rows.append({"run": run.id, "group": name, "cloud": run.cloud, "target": run.centre, "state": run.state, "user": run.started_by,
                     "start": run.started_at, "end": run.finished_at, "vms": len(vms), "passed": sum(1 for v in vms if v.get("ok")),
                     "hook": (d.get("hook") or {}).get("ok"), "rto_s": (d.get("rto") or {}).get("total_s"),
                     "leftovers": len((d.get("cleanup") or {}).get("leftovers", [])),
                     "duration_s": _seconds(run.started_at, run.finished_at) if run.started_at and run.finished_at else None})
    return rows[:limit]
