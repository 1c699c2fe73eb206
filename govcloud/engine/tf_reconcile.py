"""Reconcile of Terraform clouds: one refreshed ``terraform plan`` per tenant workspace govcloud applied,
read as drift; by policy ``correct``, that very plan applied when it only puts back what live tickets own.

``engine/reconcile.py`` runs :func:`reconcile_workspace` for each workspace in its own thread under the
pass's deadline (``common/deadline.py``), at most ``slots`` terraform runs per cloud at once. For one
workspace:

1. **Coordination.** A ticket of the workspace that is ``provisioning`` or ``retiring`` means a ticket run
   is (or will be, on resume) applying there: the workspace is skipped. Otherwise reconcile *tries*
   govcloud's workspace lock (``TerraformDriver.lock``, a flock in the workspace directory that every
   ticket plan and apply of this host holds across render → plan → apply, since terraform's state lock
   does not cover ``main.tf.json``) and holds it to the end; held by another run, the workspace is
   skipped (``WorkspaceBusy``). The plan runs with ``-lock-timeout=0s`` on terraform's own state lock
   (fcntl on the local state, an advisory lock in ``pg``: a run of another host) — ``StateLocked``
   skips it the same way. A skipped workspace keeps its last findings and makes its cloud's cycle an
   error naming why.
2. **Observe.** The workspace is rendered as the next ticket apply would render it (every live ticket's
   instances as their plans froze them), planned with refresh and saved (``-detailed-exitcode``: 0 is
   "no changes"), and read back as JSON (``terraform show -json``); ``planner.tf_drift.judge`` turns it
   into findings. A plan writes no state, so observing never invalidates anybody's saved plan.
3. **Correct.** Only under ``correct``, only when the verdict allows an unattended apply (creates and
   in-place updates of live tickets' VMs, nothing else) and no other ticket of the workspace has a saved
   plan waiting (applying would make it stale): the saved plan is applied — terraform itself refuses it
   if the state moved since — the tickets' VM rows get the new ids and addresses from the outputs
   (``terraform_path.record_vms``, as after a ticket's apply), and the audit chain records it at once
   (``reconcile.correct``), even when the pass's deadline has already passed.

A workspace where no ticket is live (all retired, failed or rejected) is not planned: if the driver finds a
state with resources in it (``find_state``: no terraform run when there is none), each remaining instance is
an ``orphan`` and anything else a ``resource`` finding (``planner.tf_drift.leftovers``), each naming the
command that removes it. Reconcile never destroys anything: that is the retire path's job.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from govcloud.drivers.terraform import PlanDetail, PlanSummary, StalePlan, StateLocked, Workspace, WorkspaceBusy
from govcloud.engine import terraform_path as tf
from govcloud.engine.context import EngineContext
from govcloud.errors import GovcloudError
from govcloud.model.states import STATES
from govcloud.planner.drift import Drift
from govcloud.planner.tf_drift import Instance, Member, PlannedResource, Remaining, Verdict, judge, leftovers
from govcloud.store import terraform_plans as plans
from govcloud.store import tickets as rows

HOLDING = ("provisioning", "retiring")
"""Ticket states whose run applies in the workspace (now, or when ``apply`` resumes it): reconcile keeps out."""
WAITING = ("submitted", "approved")
"""Ticket states whose saved plan is still to be applied: a correcting apply would make it stale."""
TOUCHED = (*tf.APPLIED, "retiring", "retired", "failed", "quarantined")
"""Ticket states after an apply was (or may have been) attempted: a workspace with such a ticket may hold a state."""


@dataclass(frozen=True)
class WorkspaceResult:
    """What one pass found and did in one tenant's workspace of a Terraform cloud."""

    cloud: str
    tenant: str
    findings: tuple[Drift, ...] = ()
    instances: int = 0
    corrected: tuple[str, ...] = ()
    error: str | None = None
    """Why the workspace was not looked at (a ticket's run holds it, terraform failed): its findings stay."""

    @property
    def workspace(self) -> str:
        return f"{self.tenant}--{self.cloud}"


def workspaces(ctx: EngineContext, clouds: list[str]) -> list[tuple[str, str]]:
    """(tenant, cloud) of every workspace govcloud may have applied in: one with a ticket that was (or is being)
    applied, retired, failed or quarantined. A workspace of submitted or rejected tickets only has no state."""
    with ctx.store.transaction() as conn:
        return sorted({(p.tenant, p.cloud) for cloud in clouds for p in plans.members(conn, None, cloud, TOUCHED)})


def reconcile_workspace(ctx: EngineContext, tenant: str, cloud_id: str, *, policy: str, actor: str,
                        slots: threading.Semaphore | None = None) -> WorkspaceResult:
    """One workspace, start to end; never raises for what the outside does (the error is the result)."""
    try:
        if slots is None:
            return _reconcile(ctx, tenant, cloud_id, policy=policy, actor=actor)
        with slots:
            return _reconcile(ctx, tenant, cloud_id, policy=policy, actor=actor)
    except StateLocked as exc:
        return WorkspaceResult(cloud_id, tenant, error=f"workspace {tenant}--{cloud_id} skipped: another terraform run holds its "
                                                       f"state lock ({exc})")
    except WorkspaceBusy as exc:
        return WorkspaceResult(cloud_id, tenant, error=f"workspace {tenant}--{cloud_id} skipped this pass: another govcloud run "
                                                       f"holds its workspace lock ({exc})")
    except GovcloudError as exc:
        return WorkspaceResult(cloud_id, tenant, error=f"workspace {tenant}--{cloud_id}: {exc}")


def _holder(ctx: EngineContext, tenant: str, cloud_id: str) -> str | None:
    with ctx.store.transaction() as conn:
        holding = plans.members(conn, tenant, cloud_id, HOLDING)
        states = rows.states(conn)
    if not holding:
        return None
    return ", ".join(f"ticket {p.ticket} is {states.get(p.ticket)}" for p in holding)


def _reconcile(ctx: EngineContext, tenant: str, cloud_id: str, *, policy: str, actor: str) -> WorkspaceResult:
    name = f"{tenant}--{cloud_id}"
    holder = _holder(ctx, tenant, cloud_id)
    if holder:
        return WorkspaceResult(cloud_id, tenant, error=f"workspace {name} skipped: {holder} (its run holds the workspace)")
    if not _live(ctx, tenant, cloud_id):
        return _leftovers(ctx, tenant, cloud_id)
    with tf.workspace_lock(ctx, tenant, cloud_id, f"reconcile --policy {policy}", wait=0):
        return _observe(ctx, tenant, cloud_id, policy=policy, actor=actor)


def _observe(ctx: EngineContext, tenant: str, cloud_id: str, *, policy: str, actor: str) -> WorkspaceResult:
    """Render, plan, judge and (by policy) correct one workspace with live tickets; the caller holds its lock."""
    driver = ctx.terraform()
    cloud, secret_env = tf.cloud_of(ctx, cloud_id)
    ws = driver.render(tenant, cloud, tf.workspace_specs(ctx, tenant, cloud_id), secret_env=secret_env)
    summary: PlanSummary = driver.plan(ws, lock_timeout=0)
    detail: PlanDetail = driver.show_plan(ws, summary.planfile)
    verdict = _judge(ctx, tenant, cloud_id, summary, detail)
    result = WorkspaceResult(cloud_id, tenant, findings=verdict.findings, instances=len(detail.instances))
    if policy != "correct" or not verdict.fixes:
        return result
    waiting = _waiting(ctx, tenant, cloud_id)
    if not verdict.unattended or waiting:
        return result if verdict.blockers else replace(result, findings=tuple(_waiting_note(d, waiting) for d in result.findings))
    return _correct(ctx, ws, summary, verdict, result, actor)


def _live(ctx: EngineContext, tenant: str, cloud_id: str) -> bool:
    with ctx.store.transaction() as conn:
        return bool(plans.members(conn, tenant, cloud_id, tf.APPLIED))


def _leftovers(ctx: EngineContext, tenant: str, cloud_id: str) -> WorkspaceResult:
    """A workspace where no ticket is live: what its state still holds, as findings (never planned, never changed)."""
    driver = ctx.terraform()
    _, secret_env = tf.cloud_of(ctx, cloud_id)
    ws = driver.find_workspace(tenant, cloud_id, secret_env=secret_env)
    if ws is None:  # never rendered on this host: no state of govcloud's
        return WorkspaceResult(cloud_id, tenant)
    with tf.workspace_lock(ctx, tenant, cloud_id, "reconcile (leftovers)", wait=0):
        found = driver.find_state(ws)
    if not found:
        return WorkspaceResult(cloud_id, tenant)
    remaining = [Remaining(r.address, r.key, r.instance, r.id, r.status) for r in found]
    findings = leftovers(cloud=cloud_id, workspace=ws.name, directory=str(ws.directory), resources=remaining,
                         members=_members(ctx, tenant, cloud_id))
    return WorkspaceResult(cloud_id, tenant, findings=findings, instances=sum(r.instance for r in remaining))


def _members(ctx: EngineContext, tenant: str, cloud_id: str) -> dict[str, Member]:
    """VM name → the ticket that has (or had) it, every ticket of the workspace whatever its state."""
    with ctx.store.transaction() as conn:
        states = rows.states(conn)
        every = plans.members(conn, tenant, cloud_id, STATES)
    return {str(i["name"]): Member(str(i["name"]), p.ticket, int(i["index"]), p.tenant, states.get(p.ticket, "unknown"))
            for p in every for i in p.instances}


def _judge(ctx: EngineContext, tenant: str, cloud_id: str, summary: PlanSummary, detail: PlanDetail) -> Verdict:
    members = _members(ctx, tenant, cloud_id)
    # -detailed-exitcode 0: terraform found nothing to change, whatever the JSON lists as no-op
    changes = [PlannedResource(c.address, c.action, c.key, c.instance) for c in detail.changes] if summary.rc == 2 else []
    example = next((m.ticket for m in members.values() if m.state in ("active", "config-failed")), "TICKET")
    remedy = (f"a human must review the plan (`govcloud apply {example}` shows it) and resolve it in workspace {summary.workspace}, "
              "or retire and resubmit the ticket")
    return judge(cloud=cloud_id, workspace=summary.workspace, changes=changes,
                 instances=[Instance(i.name, i.id, i.status) for i in detail.instances], members=members, remedy=remedy)


def _waiting(ctx: EngineContext, tenant: str, cloud_id: str) -> list[str]:
    with ctx.store.transaction() as conn:
        return sorted(p.ticket for p in plans.members(conn, tenant, cloud_id, WAITING))


def _waiting_note(drift: Drift, waiting: list[str]) -> Drift:
    if drift.kind != "drift" or drift.reason not in ("missing", "changed"):
        return drift
    return replace(drift, note=f"not corrected yet: the saved plan of ticket(s) {', '.join(waiting)} in this workspace waits to be "
                               "applied and a correction now would make it stale; the first pass after it corrects this")


def _correct(ctx: EngineContext, ws: Workspace, summary: PlanSummary, verdict: Verdict, result: WorkspaceResult, actor: str) -> WorkspaceResult:
    """Apply the saved plan (it only puts back live tickets' VMs), record the new instances, audit it."""
    holder = _holder(ctx, result.tenant, result.cloud)  # a ticket may have started since the plan
    if holder:
        return replace(result, error=f"workspace {result.workspace} not corrected: {holder} (its run holds the workspace)")
    driver = ctx.terraform()
    try:
        applied = driver.apply(ws, summary.planfile, sha256=summary.sha256)
    except StalePlan as exc:  # another run changed the state after our plan: nothing was applied
        return replace(result, error=f"workspace {result.workspace} not corrected: the state moved since its plan ({exc}); the next pass looks again")
    fixed = set(verdict.fixes)
    tickets = sorted({d.ticket for d in verdict.findings if d.ticket and d.name in fixed})
    for ticket_id in tickets:
        with ctx.store.transaction() as conn:
            row = rows.get(conn, ticket_id)
        if row is not None:
            tf.record_vms(ctx, row)
    with ctx.store.transaction() as conn:
        recorded = {vm.name: vm.server_id for t in tickets for vm in rows.vms_of(conn, t) if vm.name in fixed}
        ctx.store.audit.append(actor, "reconcile.correct", f"cloud:{result.cloud}",
                               {"workspace": result.workspace, "plan": summary.sha256, "run": applied.ident, "tickets": tickets,
                                "recreated": sorted(d.name for d in verdict.findings if d.name in fixed and d.reason == "missing"),
                                "updated": sorted(d.name for d in verdict.findings if d.name in fixed and d.reason == "changed"),
                                "instances": recorded}, connection=conn)
    ctx.progress("reconcile", {"workspace": result.workspace, "corrected": sorted(fixed), "run": applied.ident})
    return replace(result, corrected=tuple(sorted(fixed)))
