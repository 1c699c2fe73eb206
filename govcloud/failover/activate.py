"""DR activation (issue 14, part 2): the cloud's ``dr`` VMs rebuilt in its DR centre from their replicas.

When both Guangzhou centres are lost, the ``dr`` VMs cannot be evacuated (the DR centre is another region:
nova evacuates within one); each is rebuilt in the DR centre from its newest replica in that region's
glance (``failover/replicate.py``). That is a decision for the e-government office, not for the
operators alone (management and operation are separate), so an activation is a journalled run of kind
``dr-activation`` (``store/runs.py``) in three steps:

1. **request** (``govcloud dr activate --cloud C``, an operator): refused unless every serving centre of
   the cloud is recorded ``down`` by the health watch, or the operator declares them lost
   (``--declare-lost``, audited ``dr.declare-lost``). The run is created ``new``: waiting for approval.
2. **approval**: by a user with the approver role who is not the user who requested it
   (``govcloud dr approve RUN``), or by the plan's emergency rule (``recovery/*.yaml`` ``emergency:``,
   written beforehand by an approver): once the run has waited ``auto_approve_after`` and ``when``
   holds, the next ``dr activate`` records the approval by rule — the actor ``system``, the rule named
   with its file and line — and goes on.
3. **carrying out** (``dr activate`` again, an operator): nothing is created before approval
   (:class:`AwaitingApproval`, exit 4, naming the run to approve). Approved, the plan
   (``planner/activation.py``) goes group by group in the recovery plan's order through the same steps
   as a failover (``steps.py``: journal rows per VM, group hooks). Each VM: a server booted in the DR
   centre's zone from the replica image, same flavor, the ticket's network as the DR region has it,
   metadata naming ticket and index (a run resumed after ``kill -9`` finds the server it booted instead of
   booting a second); once ACTIVE, one transaction points the VM row at the new server, moves the VM's
   ledger line into the DR centre and uses up the same amount of the ticket's ``dr`` reservation there
   (``store/tickets.claim_reservation``), and audits ``dr.activate`` (data loss, RTO) and
   ``dr.server-lost`` (the old server, in the lost centre).

Data loss of a VM is the age of its replica when the centres were lost: the later ``since`` of the
serving centres' ``down`` health records, or the moment of the request when they were declared lost.
RTO is the time from that moment until the VM was ACTIVE in the DR centre.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from govcloud.common.retry import retry
from govcloud.drivers.base import META_INDEX, META_SYSTEM, META_TENANT, META_TICKET, ComputeDriver, Endpoint, Server, ServerSpec
from govcloud.errors import DriverError, GovcloudError, InputError, PermanentError, PermissionDenied
from govcloud.failover.journal import Journal
from govcloud.failover.recover import LIVE, placed_vms
from govcloud.failover.steps import HookRunner, Outcome, RecoveryRun, Steps
from govcloud.failover.watch import centre_refs, reported_up
from govcloud.model.access import SYSTEM, require
from govcloud.model.endpoints import Endpoints
from govcloud.model.parsed import DesiredState
from govcloud.model.recovery import duration_seconds
from govcloud.model.topology import Centre, Cloud
from govcloud.model.users import User
from govcloud.planner.activation import Source, dr_centre, plan_activation
from govcloud.planner.failover import SERVING, Move, Placed, RecoveryPlan
from govcloud.planner.stored import decode
from govcloud.settings import FailoverSettings
from govcloud.store import Store, facts, replicas, runs, tickets
from govcloud.store.runs import RunInProgress, RunRow
from govcloud.store.tickets import VmRow

KIND = "dr-activation"
META_RUN = "govcloud:dr-run"


class ActivationRefused(InputError):
    """No DR activation can be requested or approved now (exit 2, nothing changed)."""


class AwaitingApproval(GovcloudError):
    """The run has not been approved: nothing was created (exit 4). The message names the run to approve."""

    exit_code = 4

    def __init__(self, message: str, run: RunRow) -> None:
        super().__init__(message)
        self.run = run


@dataclass
class Activation:
    """What one process did of a DR activation run: the failover steps' outcomes, and per VM rebuilt its
    data loss and RTO (``reports``: VM name → numbers and ids)."""

    run: RecoveryRun
    approval: dict[str, Any]
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = self.run.as_dict()
        return {**data, "approval": self.approval, "vms": self.reports}


def _seconds(start: str, end: str) -> float:
    return round((datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)).total_seconds(), 3)


class DrActivation:
    """Requests, approves and carries out DR activations; collaborators are passed in (STYLE habit 7)."""

    def __init__(self, *, store: Store, state: DesiredState, endpoints: Endpoints, driver: Callable[[Endpoint], ComputeDriver],
                 now: Callable[[], str], actor: User, timeout: float = 600.0, tries: int = 6,
                 on_retry: Callable[[dict[str, object]], None] = lambda _event: None, settings: FailoverSettings | None = None,
                 hook: HookRunner | None = None, clock: Callable[[], float] = time.time, owner: str | None = None,
                 sleep: Callable[[float], None] = time.sleep, onboard: Callable[[str, Endpoint], None] | None = None) -> None:
        self.store = store
        self.state = state
        self.endpoints = endpoints
        self.driver = driver
        self.now = now
        self.actor = actor
        self.timeout = timeout
        self.tries = tries
        self.on_retry = on_retry
        self.settings = settings or FailoverSettings()
        self.hook = hook
        self.sleep = sleep
        self.onboard = onboard
        """Makes sure a tenant can boot servers in an endpoint (project, role, quotas, security group: the
        engine's onboarding, passed in by the CLI); called once per tenant before its first rebuild, since a
        tenant's tickets may never have used the DR region."""
        self._onboarded: dict[tuple[str, Endpoint], threading.Lock] = {}
        self._ready: set[tuple[str, Endpoint]] = set()
        self._lock = threading.Lock()
        self.journal = Journal(store, now=now, clock=clock, settings=self.settings, owner=owner)

    # -- the cloud -----------------------------------------------------------------------------
    def cloud(self, cloud_id: str) -> tuple[Cloud, Centre]:
        """The cloud and its DR centre; ActivationRefused when it has none or is not an OpenStack cloud."""
        cloud = self.state.topology.cloud(cloud_id)
        if cloud is None:
            raise ActivationRefused(f"no cloud '{cloud_id}' in the topology; clouds with a DR centre: {self._dr_clouds()}")
        dr = dr_centre(cloud)
        if dr is None or cloud.driver != "openstack":
            raise ActivationRefused(f"cloud {cloud_id} has no DR centre that govcloud can rebuild VMs in (DR centre: "
                                    f"{dr.id if dr else 'none'}, driver {cloud.driver}); clouds with one: {self._dr_clouds()}")
        return cloud, dr

    def _dr_clouds(self) -> str:
        return ", ".join(c.id for c in self.state.topology.clouds if dr_centre(c) is not None and c.driver == "openstack") or "none"

    def pending(self, cloud_id: str) -> RunRow | None:
        """The cloud's DR activation run that is new (waiting for approval) or running, if any."""
        cloud, dr = self.cloud(cloud_id)
        with self.store.transaction() as conn:
            run = runs.active_run(conn, cloud.id, dr.id)
        return run if run is not None and run.kind == KIND else None

    def get(self, run_id: int) -> RunRow:
        with self.store.transaction() as conn:
            run = runs.get_run(conn, run_id)
        if run is None or run.kind != KIND:
            what = f"a {run.kind} run" if run is not None else "not a run of the journal"
            raise ActivationRefused(f"run {run_id} is {what}, not a DR activation (see 'govcloud failover history')")
        return run

    # -- 1. request ----------------------------------------------------------------------------
    def run_for(self, *, cloud_id: str | None, run_id: int | None, reason: str = "", declare_lost: bool = False) -> tuple[RunRow, bool]:
        """What ``dr activate`` goes on with: the run named, else the cloud's waiting or running one, else a
        new request (True). The operator's permission is checked before anything is looked up."""
        require(self.actor, "dr-activate")
        if run_id is not None:
            return self.get(run_id), False
        if cloud_id is None:
            raise InputError("name the cloud (--cloud gd-prov) or the run to carry on (--run ID)")
        pending = self.pending(cloud_id)
        if pending is not None:
            return pending, False
        return self.request(cloud_id, reason=reason, declare_lost=declare_lost), True

    def request(self, cloud_id: str, *, reason: str, declare_lost: bool = False) -> RunRow:
        """A new run waiting for approval. Refused unless every serving centre is recorded down, or the
        operator declares them lost."""
        require(self.actor, "dr-activate")
        cloud, dr = self.cloud(cloud_id)
        serving = [c.id for c in cloud.centres if c.role in SERVING]
        with self.store.transaction() as conn:
            health = {h.centre: h for h in facts.health(conn) if h.cloud == cloud.id}
        down = {c: health[c].since for c in serving if c in health and health[c].state == "down"}
        states = {c: health[c].state if c in health else "never checked" for c in serving}
        if len(down) < len(serving) and not declare_lost:
            not_down = ", ".join(f"{c} {states[c]}" for c in serving if c not in down)
            raise ActivationRefused(f"DR activation of {cloud.id} needs every serving centre ({', '.join(serving)}) recorded down by "
                                    f"the health watch; not down: {not_down}. If they are lost although not recorded so, declare it: "
                                    "--declare-lost (audited)")
        now = self.now()
        declared = len(down) < len(serving)
        lost_at = now if declared else max(down.values())
        plan = {"reason": reason, "declared_lost": declared, "lost_at": lost_at, "centres": states, "down_since": down}
        with self.store.transaction() as conn:
            run = runs.create_run(conn, kind=KIND, cloud=cloud.id, centre=dr.id, user=self.actor.id, owner=self.journal.owner, now=now,
                                  plan=plan, state="new")
            if declared:
                self.store.audit.append(self.actor.id, "dr.declare-lost", f"cloud:{cloud.id}",
                                        {"run": run.id, "centres": states, "reason": reason}, connection=conn)
            self.store.audit.append(self.actor.id, f"{KIND}.request", f"centre:{cloud.id}/{dr.id}",
                                    {"run": run.id, **plan}, connection=conn)
        return run

    # -- 2. approval ---------------------------------------------------------------------------
    def approve(self, run_id: int) -> RunRow:
        """Record the acting approver's approval of a run waiting for it (not the requester's own)."""
        require(self.actor, "dr-approve")
        run = self.get(run_id)
        if run.state != "new":
            raise ActivationRefused(f"run {run.id} is {run.state}: only a DR activation waiting for approval can be approved")
        if run.detail.get("approval"):
            given = run.detail["approval"]
            raise ActivationRefused(f"run {run.id} is already approved by {given['by']} at {given['at']}: an operator carries it out "
                                    f"with 'govcloud dr activate --run {run.id}'")
        if run.started_by == self.actor.id:
            raise PermissionDenied(f"user '{self.actor.id}' requested run {run.id} and may not approve it: management and operation are "
                                   "separate, another approver of the e-government office must")
        approval = {"by": self.actor.id, "at": self.now(), "rule": None}
        self._record_approval(run, approval)
        return self.get(run.id)

    def _record_approval(self, run: RunRow, approval: dict[str, Any]) -> None:
        with self.store.transaction() as conn:
            if not runs.set_detail(conn, run.id, {**run.detail, "approval": approval}, state="new"):
                raise ActivationRefused(f"run {run.id} changed meanwhile (no longer waiting for approval): see 'govcloud failover history'")
            self.store.audit.append(approval["by"], f"{KIND}.approve", f"centre:{run.cloud}/{run.centre}",
                                    {"run": run.id, "requested_by": run.started_by, "rule": approval["rule"]}, connection=conn)

    def approval(self, run: RunRow) -> dict[str, Any]:
        """The run's approval: recorded, or recorded now by the plan's emergency rule when it applies;
        AwaitingApproval when neither."""
        recorded = run.detail.get("approval")
        if recorded:
            return dict(recorded)
        why = self._rule_applies(run)
        if why is None:
            rule = self.state.recovery.emergency.get(run.cloud)
            approval = {"by": SYSTEM.id, "at": self.now(), "rule": rule.describe() if rule else ""}
            self._record_approval(run, approval)
            return approval
        raise AwaitingApproval(f"DR activation run {run.id} of {run.cloud} (requested by {run.started_by} at {run.created_at}) waits for "
                               f"the e-government office's approval: an approver runs 'govcloud dr approve {run.id}', then "
                               f"'govcloud dr activate --run {run.id}' carries it out. Nothing was created. ({why})", run)

    def _rule_applies(self, run: RunRow) -> str | None:
        """None when the cloud's emergency rule approves the run now, else why not."""
        rule = self.state.recovery.emergency.get(run.cloud)
        if rule is None:
            return f"the recovery plan of {run.cloud} has no emergency rule"
        waited = _seconds(run.created_at, self.now())
        if waited < duration_seconds(rule.auto_approve_after):
            return f"{rule.describe()} applies after {rule.auto_approve_after}; the run has waited {waited:.0f} s"
        cloud, _ = self.cloud(run.cloud)
        with self.store.transaction() as conn:
            down = {h.centre for h in facts.health(conn) if h.cloud == cloud.id and h.state == "down"}
        up = [c.id for c in cloud.centres if c.role in SERVING and c.id not in down]
        if up:
            return f"{rule.describe()} needs both centres down; not recorded down: {', '.join(up)}"
        return None

    # -- 3. carrying out -----------------------------------------------------------------------
    def plan(self, cloud_id: str) -> tuple[RecoveryPlan, dict[str, Source]]:
        """The activation plan from the store (VMs, newest replicas) and the DR centre's live hosts."""
        cloud, dr = self.cloud(cloud_id)
        region = cloud.region_of(dr)
        with self.store.transaction() as conn:
            placed = [v for v in placed_vms(tickets.listing(conn, states=LIVE), tickets.vms_of(conn))
                      if v.cloud == cloud.id and v.protection == "dr" and v.centre != dr.id]
            sources = {v.name: s for v in placed if (s := _newest(conn, v, region)) is not None}
        hosts = self._hosts_up(cloud, dr) if placed else []
        return plan_activation(cloud, placed, sources, hosts, self.state.recovery.of(cloud.id)), sources

    def _hosts_up(self, cloud: Cloud, dr: Centre) -> list[str]:
        ref = next(r for r in centre_refs(self.state.topology, self.endpoints) if r.cloud == cloud.id and r.centre == dr.id)
        try:
            services = self.driver(ref.endpoint).compute_services()
        except DriverError as exc:
            raise ActivationRefused(f"cannot list compute services of {ref.endpoint.cloud}/{ref.endpoint.region}: {exc}") from exc
        return sorted(s.host for s in services if s.zone in ref.zones and reported_up(s) and s.status == "enabled")

    def activate(self, run_id: int, *, on_outcome: Callable[[Outcome], None] = lambda _o: None) -> Activation:
        """Carry out an approved run (taken over when its process died); AwaitingApproval when unapproved."""
        require(self.actor, "dr-activate")
        run = self.get(run_id)
        if run.state not in runs.ACTIVE_STATES:
            raise ActivationRefused(f"run {run.id} ended {run.state}: request a new DR activation")
        approval = self.approval(run)
        run, resumed = self._carry(self.get(run.id))
        plan, sources = self.plan(run.cloud)
        done = Activation(RecoveryRun(plan, run_id=run.id, resumed=resumed), approval)

        def rebuild(move: Move, _learn: Callable[[str | None], None]) -> Outcome:
            return self._rebuild(run, move, sources[move.vm.name], done.reports)

        with self.journal.beating(run.id) as lost:
            Steps(store=self.store, now=self.now, settings=self.settings, mover=rebuild, hook=self.hook, run_id=run.id, lost=lost,
                  on_outcome=on_outcome).carry_out(plan, done.run)
        result = done.run
        if not result.settle(lost=lost, still_mine=lambda: self.journal.still_mine(run.id)):
            return done
        self.journal.end(run.id, state=result.state, user=self.actor.id, kind=KIND, subject=f"centre:{run.cloud}/{run.centre}",
                         detail={**run.detail, "approval": approval, "rebuilt": len(result.moved), "failed": len(result.failed),
                                 "held": len(plan.held), "hooks_failed": result.hooks_failed,
                                 "vms": done.reports})
        return done

    def _carry(self, run: RunRow) -> tuple[RunRow, bool]:
        """Make this process the run's carrier: ``new`` → ``running``, or a running run whose process died."""
        with self.store.transaction() as conn:
            if run.state == "new":
                if not runs.start_run(conn, run, owner=self.journal.owner, now=self.now()):
                    raise RunInProgress(f"run {run.id} was started by another process just now", run)
                self.store.audit.append(self.actor.id, f"{KIND}.start", f"centre:{run.cloud}/{run.centre}", {"run": run.id},
                                        connection=conn)
                resumed = False
            elif run.owner == self.journal.owner:
                resumed = False
            elif self.journal.stale(run):
                if not runs.take_over(conn, run, owner=self.journal.owner, now=self.now(), plan=run.plan):
                    raise RunInProgress(f"run {run.id} was taken over by another process just now", run)
                self.store.audit.append(self.actor.id, f"{KIND}.resume", f"centre:{run.cloud}/{run.centre}",
                                        {"run": run.id, "from": run.owner, "last_heartbeat": run.heartbeat_at}, connection=conn)
                resumed = True
            else:
                raise RunInProgress(f"run {run.id} (DR activation of {run.cloud}) is carried out by {run.owner} (last heartbeat "
                                    f"{run.heartbeat_at}): one run at a time; see 'govcloud failover status'", run)
            taken = runs.get_run(conn, run.id)
        assert taken is not None
        return taken, resumed

    # -- one VM --------------------------------------------------------------------------------
    def _rebuild(self, run: RunRow, move: Move, source: Source, reports: dict[str, dict[str, Any]]) -> Outcome:
        vm = move.vm
        target = self.endpoints.of(vm.cloud, move.target)
        zone = target.zone or move.zone
        endpoint = Endpoint(cloud=target.entry, region=target.region)
        driver = self.driver(endpoint)
        begun = time.monotonic()
        try:
            self._onboard(vm.tenant, endpoint)
            spec = self._spec(run, vm, zone, source)

            def boot() -> Server:  # asks first on every try: a try whose answer was lost (or a killed run) made it already
                found = [s for s in driver.find_servers(vm.tenant, vm.name)
                         if s.metadata.get(META_TICKET) == vm.ticket and s.metadata.get(META_INDEX) == str(vm.idx)]
                server = min(found, key=lambda s: s.created) if found else driver.create_server(spec)
                return driver.wait_for_server(vm.tenant, server.id, timeout=self.timeout)

            server = retry(f"rebuild {vm.name} in {move.target}", boot, tries=self.tries, on_retry=self.on_retry, sleep=self.sleep)
        except GovcloudError as exc:  # nova's refusal, or onboarding the tenant there failed: this VM fails, the others go on
            self.store.audit.append(self.actor.id, "dr.activate.failed", f"vm:{vm.name}",
                                    {"run": run.id, "to": move.target, "replica": source.replica, "error": str(exc)})
            return Outcome(move, False, str(exc))
        if server.status != "ACTIVE":
            self.store.audit.append(self.actor.id, "dr.activate.failed", f"vm:{vm.name}",
                                    {"run": run.id, "server": server.id, "status": server.status, "fault": server.fault})
            return Outcome(move, False, f"server {server.id} is {server.status} in {move.target}: {server.fault or 'no fault given'}")
        report = self._record(run, move, zone, target.region, server, source, time.monotonic() - begun)
        reports[vm.name] = report
        return Outcome(move, True, f"ACTIVE in {move.target} from replica {source.replica} taken {source.taken_at}: data loss "
                                   f"{report['data_loss_s']:.0f} s, RTO {report['rto_s']:.0f} s (rebuild {report['rebuild_s']:.1f} s)",
                       server.host)

    def _onboard(self, tenant: str, endpoint: Endpoint) -> None:
        """``onboard`` once per tenant and endpoint in this process (two rebuilds of one tenant wait for one onboarding)."""
        if self.onboard is None:
            return
        key = (tenant, endpoint)
        with self._lock:
            lock = self._onboarded.setdefault(key, threading.Lock())
        with lock:
            if key not in self._ready:
                self.onboard(tenant, endpoint)
                self._ready.add(key)

    def _spec(self, run: RunRow, vm: Placed, zone: str, source: Source) -> ServerSpec:
        """The server to boot: the ticket's placement of the VM (flavor, network by name) in the DR zone, from the replica."""
        with self.store.transaction() as conn:
            ticket = tickets.require(conn, vm.ticket)
        placement = next((p for p in decode(ticket.plan).vms if p.index == vm.idx), None)
        if placement is None:
            raise PermanentError(f"ticket {vm.ticket} has no VM {vm.idx} in its stored plan: nothing says its flavor and network")
        meta = {META_TICKET: vm.ticket, META_INDEX: str(vm.idx), META_TENANT: vm.tenant, META_SYSTEM: ticket.system,
                META_RUN: str(run.id), "govcloud:replica": source.replica}
        return ServerSpec(name=vm.name, tenant=vm.tenant, zone=zone, flavor=placement.flavor, size=vm.size, image=source.image,
                          network=placement.network, metadata=meta)

    def _record(self, run: RunRow, move: Move, zone: str, region: str, server: Server, source: Source, rebuild_s: float) -> dict[str, Any]:
        """One transaction: the VM row points at the new server, the ledger moves (reservation → allocation), audit."""
        vm, now = move.vm, self.now()
        lost_at = str(run.plan.get("lost_at") or run.created_at)
        report = {"ticket": vm.ticket, "server": server.id, "old_server": vm.server_id, "from": vm.centre, "to": move.target,
                  "replica": source.replica,
                  "image": source.image, "taken_at": source.taken_at, "data_loss_s": max(0.0, _seconds(source.taken_at, lost_at)),
                  "rto_s": _seconds(lost_at, now), "rebuild_s": round(rebuild_s, 3)}
        with self.store.transaction() as conn:
            tickets.lock_quota(conn)
            row = next((r for r in tickets.vms_of(conn, vm.ticket) if r.idx == vm.idx), None)
            if row is None:
                return report  # retired meanwhile
            tickets.upsert_vm(conn, VmRow(**{**row.__dict__, "region": region, "centre": move.target, "zone": zone, "server_id": server.id,
                                             "status": server.status, "address": server.address, "fault": server.fault, "updated_at": now}))
            tickets.move_allocation(conn, vm.ticket, vm.cloud, vm.centre, move.target, vm.size, now=now)
            report["reservation_used"] = tickets.claim_reservation(conn, vm.ticket, vm.cloud, move.target, vm.size, now=now)
            self.store.audit.append(self.actor.id, "dr.activate", f"vm:{vm.name}", {"run": run.id, **report},
                                    connection=conn)
            self.store.audit.append(self.actor.id, "dr.server-lost", f"vm:{vm.name}",
                                    {"run": run.id, "server": vm.server_id, "centre": vm.centre, "region": row.region,
                                     "replaced_by": server.id}, connection=conn)
        return report


def _newest(conn: Any, vm: Placed, region: str) -> Source | None:
    """The VM's newest ready replica with an image in the DR region."""
    ready = [r for r in replicas.of_vm(conn, vm.ticket, vm.idx) if r.state == "ready" and r.dr_image and r.dr_region == region]
    if not ready:
        return None
    newest = max(ready, key=lambda r: (r.taken_at, r.id))
    return Source(newest.id, newest.dr_image or "", newest.taken_at)
