"""Tickets in Terraform clouds (``driver: terraform``): plan → approval bound to the plan → apply of
exactly that plan → outputs into the store → configuration; retirement destroys.

Called by the CLI's ``plan`` (``plan_ticket``), by engine/tickets.py at approval (``bind_approval``,
``approve_again``) and by engine/provision.py for apply, converge and retire. Tickets, quotas,
placement and the Ansible step are the OpenStack path's; what differs is how VMs come to exist:

- a *workspace* per tenant × cloud is rendered from the instances of the tenant's live tickets there
  (each ticket's instances are frozen in its plan record: names, sizes, images, fixed addresses) plus
  the ticket being planned; ``plan`` saves the plan file and stores its sha256, the sha256 of those
  inputs, the ticket's content hash and the state version the plan was made against;
- approval records who signed the plan; a plan that replaces or destroys anything needs a second,
  different user with the approver role;
- ``apply`` refuses (``PlanRefused``, exit 2, nothing changed) unless every one of those still holds,
  then applies exactly the saved plan and records the outputs (instance ids, addresses) as the
  ticket's VMs, so ``configure`` and ``inventory`` see them like any other VM.

Every render → plan (→ apply) here holds govcloud's workspace lock (``TerraformDriver.lock``, a flock in
the workspace directory): reconcile renders the same ``main.tf.json``, and terraform's state lock does not
cover that file. The ticket path waits for it (``lock_wait``, then a ``WorkspaceBusy`` naming the
workspace and its holder); reconcile never waits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any, NoReturn

from govcloud.drivers.terraform import Ec2Cloud, InstanceSpec, OpenStackCloud, PlanSummary, StalePlan, Workspace, sha256_file
from govcloud.engine.context import EngineContext
from govcloud.engine.plans import placements
from govcloud.engine.ticket_base import Outcome, binding_hash, fail_ticket, plan_for, show, ticket_of
from govcloud.errors import DriverError, InputError, InvalidState
from govcloud.model.access import acting_user, require
from govcloud.model.states import HOLDING, OPEN
from govcloud.model.topology import TerraformNetwork, TerraformTarget
from govcloud.model.users import User
from govcloud.planner.placement import VmPlacement
from govcloud.store import terraform_plans as plans
from govcloud.store import tickets as rows
from govcloud.store.terraform_plans import TfPlanRow
from govcloud.store.tickets import TicketRow, VmRow

LIVE = HOLDING
"""Tickets whose instances belong in their workspace (what a plan renders)."""
APPLIED = ("provisioning", "configuring", "config-failed", "active")
"""Tickets whose instances exist (what converge and removal render: an approved ticket's instances are
created by its own approved plan, never by somebody else's retirement)."""

Cloud = Ec2Cloud | OpenStackCloud


class PlanRefused(InvalidState):
    """The saved plan cannot be approved or applied (missing, unsigned, or stale); nothing was changed."""


class PlanRequired(PlanRefused):
    """Approval of a ticket in a Terraform cloud before its plan was made."""


# -- which tickets, which clouds ----------------------------------------------------------------
def terraform_clouds(ctx: EngineContext, vms: Sequence[VmPlacement]) -> list[str]:
    """The Terraform clouds among the VMs' clouds; a ticket mixing drivers is refused (one ticket, one path)."""
    drivers = {vm.cloud: (ctx.state.topology.cloud(vm.cloud) or _no_cloud(vm.cloud)).driver for vm in vms}
    clouds = sorted(c for c, d in drivers.items() if d == "terraform")
    if clouds and len(clouds) != len(drivers):
        raise InvalidState(f"the VMs are placed in Terraform clouds ({', '.join(clouds)}) and OpenStack clouds "
                           f"({', '.join(sorted(set(drivers) - set(clouds)))}): split the ticket, one per provisioning path")
    return clouds


def _no_cloud(cloud_id: str) -> NoReturn:
    raise InvalidState(f"cloud {cloud_id} is not in topology.yaml")


def handles(ctx: EngineContext, row: TicketRow) -> bool:
    """Whether this path provisions the ticket (a create ticket whose approved VMs are in a Terraform cloud)."""
    return row.kind == "create" and bool(terraform_clouds(ctx, placements(row)))


def target_of(ctx: EngineContext, cloud_id: str) -> TerraformTarget:
    target = ctx.endpoints.terraform.get(cloud_id)
    if target is None:
        raise InputError(f"cloud {cloud_id} has driver terraform but no `terraform:` settings (module, endpoints, VPC, "
                         "instance types, images, networks) in topology.yaml or the profile's `clouds:` section")
    return target


def cloud_of(ctx: EngineContext, cloud_id: str, *, secrets: bool = True) -> tuple[Cloud, dict[str, str]]:
    """The driver's view of a cloud, and the credentials terraform gets in its environment (read from
    govcloud's environment by the names ``terraform.credentials`` gives; never written anywhere)."""
    target = target_of(ctx, cloud_id)
    cloud = ctx.state.topology.cloud(cloud_id) or _no_cloud(cloud_id)
    reach = ctx.endpoints.of(cloud_id, cloud.centres[0].id)
    region = target.region or reach.region
    environ = ctx.settings.terraform.environ
    missing = sorted(env for env in target.credentials.values() if not environ.get(env))
    if secrets and missing:
        raise InputError(f"cloud {cloud_id}: set {', '.join('$' + m for m in missing)} in govcloud's environment "
                         "(named by its terraform.credentials); nothing was changed")
    env = {name: environ[var] for name, var in sorted(target.credentials.items()) if secrets and environ.get(var)}
    if target.module == "openstack":
        return OpenStackCloud(name=cloud_id, cloud=reach.entry, region=region, network_id=target.vpc_id,
                              security_group_ids=tuple(target.security_group_ids), key_pair=target.key_name), env
    return Ec2Cloud(name=cloud_id, region=region, vpc_id=target.vpc_id, endpoints=dict(target.endpoints),
                    skip_checks=target.skip_checks, ssh_public_key=target.ssh_public_key, key_name=target.key_name,
                    ssh_cidrs=tuple(target.ssh_cidrs)), env


# -- instances and inputs -----------------------------------------------------------------------
def _allocate(network: TerraformNetwork, taken: set[str], name: str) -> str:
    """Lowest free address of the network's range from host number ``first``."""
    assert network.cidr is not None
    net = ipaddress.ip_network(network.cidr, strict=False)
    for number in range(network.first, net.num_addresses - 1):
        address = str(net.network_address + number)
        if address not in taken:
            return address
    raise InputError(f"{name}: no free address left in {network.cidr} (from host {network.first}); widen the network's cidr")


def instance_specs(ctx: EngineContext, row: TicketRow, vms: Sequence[VmPlacement], cloud_id: str, *,
                   previous: dict[str, dict[str, Any]], taken: set[str]) -> list[InstanceSpec]:
    """The ticket's VMs as the driver renders them. Addresses already given (an earlier plan) are kept."""
    target = target_of(ctx, cloud_id)
    problems: list[str] = []
    specs = []
    for vm in vms:
        size = target.instance_types.get(vm.flavor or "")
        image = target.images.get(vm.image)
        network = target.networks.get(vm.network)
        for what, value, key in (("flavor", size, vm.flavor), ("image", image, vm.image), ("network", network, vm.network)):
            if value is None:
                problems.append(f"{what} {key!r} (VM {vm.name}) has no entry in terraform.{ {'flavor': 'instance_types'}.get(what, what + 's')}")
        if size is None or image is None or network is None:
            continue
        address = previous.get(vm.name, {}).get("private_ip") or (_allocate(network, taken, vm.name) if network.cidr else None)
        if address:
            taken.add(address)
        specs.append(InstanceSpec(name=vm.name, index=vm.index, ticket=row.id, tenant=row.tenant, system=row.system, size=size,
                                  image=image, network=network.subnet, zone=ctx.endpoints.of(vm.cloud, vm.centre).zone or vm.zone,
                                  private_ip=address))
    if problems:
        raise InputError(f"cloud {cloud_id} cannot render ticket {row.id}: " + "; ".join(sorted(set(problems))))
    return specs


def spec_of(data: dict[str, Any]) -> InstanceSpec:
    return InstanceSpec(**data)


def inputs_digest(cloud: Cloud, specs: Sequence[InstanceSpec], backend: str) -> str:
    """What the workspace is rendered from (secrets excluded): any change means the saved plan is not for it."""
    data = {"cloud": dataclasses.asdict(cloud), "backend": backend,
            "instances": sorted((dataclasses.asdict(s) for s in specs), key=lambda s: str(s["name"]))}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _members(ctx: EngineContext, row: TicketRow, cloud_id: str, conn: Any = None, *, states: Sequence[str] = LIVE) -> list[InstanceSpec]:
    """Instances of the tenant's other tickets in ``states`` in this cloud, as their plans froze them (``conn``:
    the caller's open transaction, e.g. approval's)."""
    if conn is None:
        with ctx.store.transaction() as own:
            return _members(ctx, row, cloud_id, own, states=states)
    others = [p for p in plans.members(conn, row.tenant, cloud_id, states) if p.ticket != row.id]
    return [spec_of(i) for p in others for i in p.instances]


def workspace_specs(ctx: EngineContext, tenant: str, cloud_id: str, states: Sequence[str] = LIVE) -> list[InstanceSpec]:
    """Every instance of the workspace's tickets in ``states``, as their plans froze them (reconcile renders
    the workspace as the next ticket apply would)."""
    with ctx.store.transaction() as conn:
        return [spec_of(i) for p in plans.members(conn, tenant, cloud_id, states) for i in p.instances]


def _taken(ctx: EngineContext, row: TicketRow, cloud_id: str) -> set[str]:
    """Addresses of every other open ticket's instances in this cloud (all tenants share its networks)."""
    with ctx.store.transaction() as conn:
        planned = [p for p in plans.members(conn, None, cloud_id, OPEN) if p.ticket != row.id]
        recorded = [vm.address for vm in rows.vms_of(conn) if vm.cloud == cloud_id and vm.ticket != row.id and vm.address]
    return {str(i["private_ip"]) for p in planned for i in p.instances if i.get("private_ip")} | set(recorded)


def workspace_lock(ctx: EngineContext, tenant: str, cloud_id: str, holder: str, *, wait: float | None = None) -> AbstractContextManager[None]:
    """govcloud's lock on the workspace tenant × cloud (the driver's ``lock``): what a ticket run holds across
    render → plan → apply (``wait`` None: the driver's bounded wait), reconcile with ``wait=0``."""
    driver = ctx.terraform()
    lock: AbstractContextManager[None] = driver.lock(driver.workspace(tenant, cloud_id), wait=wait, holder=holder)
    return lock


# -- plan ---------------------------------------------------------------------------------------
def plan_ticket(ctx: EngineContext, ticket_id: str) -> list[tuple[TfPlanRow, PlanSummary]]:
    """``govcloud plan TICKET`` for a Terraform cloud: render, plan, save; returns what to show."""
    user = acting_user(ctx.state.users, ctx.settings.user)
    row = show(ctx, ticket_id)
    if row.kind != "create" or row.state not in ("submitted", "approved"):
        return []
    if row.state == "submitted":
        placement = plan_for(ctx, row)
        if not placement.ok:
            return []
        vms = list(placement.vms)
    else:
        vms = placements(row)
    clouds = terraform_clouds(ctx, vms)
    if clouds:
        require(user, "plan")  # saving a plan is the operator's (or approver's) act; a requester sees the placement only
    return [_plan_cloud(ctx, row, [vm for vm in vms if vm.cloud == cloud], cloud, user.id) for cloud in clouds]


def _plan_cloud(ctx: EngineContext, row: TicketRow, vms: Sequence[VmPlacement], cloud_id: str, actor: str) -> tuple[TfPlanRow, PlanSummary]:
    with workspace_lock(ctx, row.tenant, cloud_id, f"govcloud plan {row.id}"):
        return _plan_locked(ctx, row, vms, cloud_id, actor)


def _plan_locked(ctx: EngineContext, row: TicketRow, vms: Sequence[VmPlacement], cloud_id: str, actor: str) -> tuple[TfPlanRow, PlanSummary]:
    driver = ctx.terraform()
    cloud, secret_env = cloud_of(ctx, cloud_id)
    with ctx.store.transaction() as conn:
        previous = {p.cloud: p for p in plans.of_ticket(conn, row.id)}.get(cloud_id)
    mine = instance_specs(ctx, row, vms, cloud_id, previous={str(i["name"]): i for i in (previous.instances if previous else ())},
                          taken=_taken(ctx, row, cloud_id))
    specs = _members(ctx, row, cloud_id) + mine
    ws = driver.render(row.tenant, cloud, specs, secret_env=secret_env)
    summary: PlanSummary = driver.plan(ws, progress=ctx.progress)
    lineage, serial = driver.plan_state_version(summary.planfile)
    record = TfPlanRow(ticket=row.id, cloud=cloud_id, tenant=row.tenant, workspace=ws.name, run=summary.ident, planfile=str(summary.planfile),
                       sha256=summary.sha256, inputs_sha256=inputs_digest(cloud, specs, driver.backend),
                       ticket_hash=binding_hash(ticket_of(row)), state_lineage=lineage, state_serial=serial,
                       instances=tuple(dataclasses.asdict(s) for s in mine), add=summary.add, change=summary.change,
                       destroy=summary.destroy, flagged=tuple(summary.flagged), planned_by=actor, planned_at=ctx.now())
    with ctx.store.transaction() as conn:
        plans.save(conn, record)
        ctx.store.audit.append(actor, "terraform.plan", f"ticket:{row.id}",
                               {"cloud": cloud_id, "workspace": ws.name, "run": summary.ident, "sha256": summary.sha256,
                                "add": summary.add, "change": summary.change, "destroy": summary.destroy,
                                "flagged": list(summary.flagged)}, connection=conn)
    return record, summary


# -- approval -----------------------------------------------------------------------------------
def _check_current(ctx: EngineContext, row: TicketRow, record: TfPlanRow, conn: Any = None) -> None:
    """The ticket and the workspace's inputs are what the plan was made from."""
    now_hash = binding_hash(ticket_of(row))
    if now_hash != record.ticket_hash:
        raise PlanRefused(f"ticket {row.id} changed since its plan {record.sha256[:12]} was made (content {record.ticket_hash[:12]} → "
                          f"{now_hash[:12]}): re-plan with `govcloud plan {row.id}` and have it approved; nothing was changed")
    cloud, _ = cloud_of(ctx, record.cloud, secrets=False)
    specs = _members(ctx, row, record.cloud, conn) + [spec_of(i) for i in record.instances]
    if inputs_digest(cloud, specs, ctx.terraform().backend) != record.inputs_sha256:
        raise PlanRefused(f"workspace {record.workspace} changed since plan {record.sha256[:12]} of ticket {row.id} was made "
                          "(another ticket of the tenant joined or left it, or the cloud's settings changed): "
                          f"re-plan with `govcloud plan {row.id}` and have it approved; nothing was changed")


def bind_approval(ctx: EngineContext, conn: Any, row: TicketRow, vms: Sequence[VmPlacement], user: User) -> dict[str, Any]:
    """Inside the approval's transaction: the ticket's saved plans must exist and be current; record the
    approver on each. Returns what the audit record shows (empty for OpenStack tickets)."""
    clouds = terraform_clouds(ctx, vms)
    if clouds and row.kind != "create":
        raise InvalidState(f"ticket {row.id}: {row.kind} of VMs in Terraform cloud(s) {', '.join(clouds)} is not supported yet; "
                           "retire the ticket (or a delete ticket) and submit a new create ticket; nothing was reserved")
    records = {p.cloud: p for p in plans.of_ticket(conn, row.id)}
    bound: dict[str, Any] = {}
    for cloud_id in clouds:
        record = records.get(cloud_id)
        if record is None:
            raise PlanRequired(f"ticket {row.id} places VMs in Terraform cloud {cloud_id}: run `govcloud plan {row.id}` first "
                               "(approval binds to the saved plan); nothing was reserved")
        planned = sorted(str(i["name"]) for i in record.instances)
        if planned != sorted(vm.name for vm in vms if vm.cloud == cloud_id):
            raise PlanRefused(f"ticket {row.id}: the placement changed since plan {record.sha256[:12]}: re-plan; nothing was reserved")
        _check_current(ctx, row, record, conn)
        plans.update(conn, row.id, cloud_id, approved_by=user.id, approved_at=ctx.now())
        bound[cloud_id] = {"plan": record.sha256, "flagged": list(record.flagged),
                           "second_approver_needed": record.needs_second_approver}
    return bound


def approve_again(ctx: EngineContext, row: TicketRow, user: User) -> dict[str, Any]:
    """``ticket approve`` of an approved ticket: sign a re-made plan, or give the second approval a plan
    that replaces or destroys something needs (a different user with the approver role)."""
    with ctx.store.transaction() as conn:
        records = plans.of_ticket(conn, row.id)
        unsigned = [r for r in records if r.approved_by is None]
        second = [r for r in records if r.approved_by is not None and r.flagged and r.second_approved_by is None]
        if not unsigned and not second:
            raise InvalidState(f"ticket {row.id} is approved and its Terraform plans are signed off; nothing to approve")
        done: dict[str, Any] = {}
        for record in unsigned:
            _check_current(ctx, row, record, conn)
            plans.update(conn, row.id, record.cloud, approved_by=user.id, approved_at=ctx.now())
            done[record.cloud] = {"plan": record.sha256, "signed": "first"}
        for record in [r for r in second if r.cloud not in done]:
            if user.role != "approver" or user.id == record.approved_by:
                raise PlanRefused(f"plan {record.sha256[:12]} of ticket {row.id} replaces or destroys {', '.join(record.flagged)}: the second "
                                  f"approval must come from a user with role approver other than {record.approved_by} (not {user.id}, "
                                  f"{user.role})")
            plans.update(conn, row.id, record.cloud, second_approved_by=user.id, second_approved_at=ctx.now())
            done[record.cloud] = {"plan": record.sha256, "signed": "second", "flagged": list(record.flagged)}
        ctx.store.audit.append(user.id, "terraform.approve", f"ticket:{row.id}", done, connection=conn)
    return done


# -- apply --------------------------------------------------------------------------------------
def _signed_plans(ctx: EngineContext, row: TicketRow) -> list[TfPlanRow]:
    clouds = terraform_clouds(ctx, placements(row))
    with ctx.store.transaction() as conn:
        records = {p.cloud: p for p in plans.of_ticket(conn, row.id)}
    result = []
    for cloud_id in clouds:
        record = records.get(cloud_id)
        if record is None or record.approved_by is None:
            raise PlanRefused(f"ticket {row.id} has no approved Terraform plan for {cloud_id}: `govcloud plan {row.id}`, then "
                              "`govcloud ticket approve` it; nothing was changed")
        if not record.signed_off:
            raise PlanRefused(f"plan {record.sha256[:12]} of ticket {row.id} replaces or destroys {', '.join(record.flagged)}: it needs a "
                              f"second approver (role approver, not {record.approved_by}) before apply; nothing was changed")
        result.append(record)
    return result


def _ready(ctx: EngineContext, row: TicketRow, record: TfPlanRow) -> Workspace:
    """Every check that the saved plan is still the approved one, for the workspace as it is now."""
    _check_current(ctx, row, record)
    driver = ctx.terraform()
    cloud, secret_env = cloud_of(ctx, record.cloud)
    specs = _members(ctx, row, record.cloud) + [spec_of(i) for i in record.instances]
    planfile = Path(record.planfile)
    if not planfile.exists() or sha256_file(planfile) != record.sha256:
        raise PlanRefused(f"the saved plan of ticket {row.id} ({planfile}) is missing or not the approved one (sha256 "
                          f"{record.sha256[:12]}…): re-plan and have it approved; nothing was changed")
    ws: Workspace = driver.render(row.tenant, cloud, specs, secret_env=secret_env)
    current = driver.state_version(ws)
    if current != (record.state_lineage, record.state_serial):
        raise PlanRefused(f"the Terraform state of {ws.name} changed since plan {record.sha256[:12]} of ticket {row.id} was made "
                          f"(serial {record.state_serial} → {current[1]}): re-plan with `govcloud plan {row.id}` and have it "
                          "approved; nothing was changed")
    return ws


def provision(ctx: EngineContext, row: TicketRow, actor: str, *, configure: bool = True) -> Outcome:
    """Apply the ticket's approved plans; record its VMs from the outputs; commit its quota."""
    if row.state == "provisioning":
        return _resume(ctx, row, actor, configure=configure)
    signed = _signed_plans(ctx, row)
    with ExitStack() as held:  # sorted: two ticket runs never wait for each other crosswise
        for record in sorted(signed, key=lambda r: r.cloud):
            held.enter_context(workspace_lock(ctx, row.tenant, record.cloud, f"govcloud apply {row.id}"))
        return _provision_locked(ctx, row, actor, signed, configure=configure)


def _provision_locked(ctx: EngineContext, row: TicketRow, actor: str, signed: Sequence[TfPlanRow], *, configure: bool) -> Outcome:
    ready = [(record, _ready(ctx, row, record)) for record in signed]
    with ctx.store.transaction() as conn:
        rows.move(conn, row.id, "approved", "provisioning", now=ctx.now(), attempts=row.attempts + 1, provision_started_at=ctx.now())
        ctx.store.audit.append(actor, "ticket.provision", f"ticket:{row.id}",
                               {"attempt": row.attempts + 1, "terraform": {r.cloud: r.sha256 for r, _ in ready}}, connection=conn)
    ctx.progress("ticket", {"ticket": row.id, "state": "provisioning", "total": len(placements(row))})
    driver = ctx.terraform()
    for record, ws in ready:
        try:
            result = driver.apply(ws, Path(record.planfile), sha256=record.sha256, progress=ctx.progress)
        except StalePlan as exc:  # terraform refuses before changing anything
            with ctx.store.transaction() as conn:
                rows.move(conn, row.id, "provisioning", "approved", now=ctx.now(), reason=f"{exc}")
            raise PlanRefused(f"{exc}; nothing was changed") from exc
        except DriverError as exc:
            return _fail(ctx, row, actor, str(exc))
        with ctx.store.transaction() as conn:
            plans.update(conn, row.id, record.cloud, applied_run=result.ident, applied_at=ctx.now())
    try:
        state, count = _finish(ctx, row, actor, configure=configure)
    except DriverError as exc:
        return _fail(ctx, row, actor, str(exc))
    return Outcome(row.id, state, f"{count} instance(s) applied by Terraform")


def record_vms(ctx: EngineContext, row: TicketRow) -> int:
    """The ticket's instances from the workspaces' outputs into the vms table; how many were found (after
    an apply: the ticket's own, or reconcile's correction)."""
    driver = ctx.terraform()
    vms = placements(row)
    found = 0
    for cloud_id in terraform_clouds(ctx, vms):
        cloud, secret_env = cloud_of(ctx, cloud_id)
        outputs = driver.outputs(driver.workspace(row.tenant, cloud_id, secret_env=secret_env))
        for vm in (v for v in vms if v.cloud == cloud_id):
            out = outputs.get(vm.name)
            status = "ACTIVE" if out is not None else "MISSING"
            with ctx.store.transaction() as conn:
                rows.upsert_vm(conn, VmRow(ticket=row.id, idx=vm.index, name=vm.name, tenant=row.tenant, system=row.system, cloud=cloud_id,
                                           region=cloud.region, centre=vm.centre, zone=ctx.endpoints.of(cloud_id, vm.centre).zone or vm.zone,
                                           flavor=vm.flavor, vcpus=vm.size.vcpus, ram_mb=vm.size.ram_mb, disk_gb=vm.size.disk_gb,
                                           status=status, updated_at=ctx.now(), server_id=out.id if out else None,
                                           address=out.address if out else None))
            found += out is not None
            ctx.progress("vm", {"ticket": row.id, "name": vm.name, "status": status, "centre": vm.centre, "region": cloud.region,
                                "zone": vm.zone, "address": out.address if out else None})
    return found


def _finish(ctx: EngineContext, row: TicketRow, actor: str, *, configure: bool) -> tuple[str, int]:
    count = record_vms(ctx, row)
    expected = len(placements(row))
    if count != expected:
        raise DriverError(f"ticket {row.id}: the outputs show {count} of its {expected} instance(s) after apply")
    roles = ticket_of(row).roles
    state = "configuring" if roles and configure else "active"
    now = ctx.now()
    with ctx.store.transaction() as conn:
        rows.commit(conn, row.id, now=now)
        rows.move(conn, row.id, "provisioning", state, now=now, reason=None, provisioned_at=now, **({"active_at": now} if state == "active" else {}))
        ctx.store.audit.append(actor, "ticket.provisioned", f"ticket:{row.id}",
                               {"terraform": True, "instances": count,
                                "configuration": "next" if state == "configuring" else ("skipped" if roles else "no roles")}, connection=conn)
    ctx.progress("ticket", {"ticket": row.id, "state": state})
    return state, count


def _resume(ctx: EngineContext, row: TicketRow, actor: str, *, configure: bool) -> Outcome:
    """A run died after the plan was applied (or while applying): finish when every instance is in the
    outputs; otherwise roll back — the saved plan is consumed and a new one needs a new approval."""
    try:
        state, count = _finish(ctx, row, actor, configure=configure)
    except DriverError as exc:
        return _fail(ctx, row, actor, f"{exc} (an interrupted apply; the saved plan is consumed)")
    return Outcome(row.id, state, f"{count} instance(s) found after an interrupted run")


def _fail(ctx: EngineContext, row: TicketRow, actor: str, reason: str) -> Outcome:
    """Destroy what the failed apply created, give the quota back, say what to do (as the OpenStack path)."""
    return fail_ticket(ctx, row, actor, reason, cleanup=lambda: remove(ctx, row), cleaned="its instances were destroyed")


# -- converge and retire ------------------------------------------------------------------------
def converge(ctx: EngineContext, row: TicketRow, actor: str) -> Outcome:
    """``apply`` of an active ticket: plan its workspaces; no changes is the expected answer. Drift is
    reported, never applied without an approved plan."""
    driver = ctx.terraform()
    details = []
    for cloud_id in terraform_clouds(ctx, placements(row)):
        cloud, secret_env = cloud_of(ctx, cloud_id)
        with workspace_lock(ctx, row.tenant, cloud_id, f"govcloud apply {row.id} (converge)"):
            ws = driver.render(row.tenant, cloud, _members(ctx, row, cloud_id, states=APPLIED) + _own(ctx, row, cloud_id),
                               secret_env=secret_env)
            summary: PlanSummary = driver.plan(ws, progress=ctx.progress)
        if summary.has_changes:
            details.append(f"{ws.name}: drift, {summary.add} to add, {summary.change} to change, {summary.destroy} to destroy "
                           f"({', '.join(c.address for c in summary.changes)}); not applied without an approved plan")
        else:
            details.append(f"{ws.name}: no changes")
    record_vms(ctx, row)
    if any("drift" in d for d in details):
        ctx.store.audit.append(actor, "terraform.drift", f"ticket:{row.id}", {"workspaces": details})
    return Outcome(row.id, "active", "; ".join(details))


def _remove_from(ctx: EngineContext, row: TicketRow, cloud_id: str) -> int:
    """Take the ticket's instances out of one workspace (the caller holds its lock); how many existed."""
    driver = ctx.terraform()
    cloud, secret_env = cloud_of(ctx, cloud_id)
    names = {spec.name for spec in _own(ctx, row, cloud_id)} | {vm.name for vm in placements(row) if vm.cloud == cloud_id}
    ws = driver.find_workspace(row.tenant, cloud_id, secret_env=secret_env)
    if ws is None:
        return 0
    existing = set(driver.outputs(ws))
    others = [s for s in _members(ctx, row, cloud_id, states=APPLIED) if s.name not in names]
    ws = driver.render(row.tenant, cloud, others, secret_env=secret_env)
    if not others:
        driver.destroy(ws, progress=ctx.progress)
    else:
        summary: PlanSummary = driver.plan(ws, progress=ctx.progress)
        foreign = [c.address for c in summary.changes if c.action != "delete" or not any(f'["{n}"]' in c.address for n in names)]
        if foreign:
            raise DriverError(f"removing ticket {row.id} from {ws.name} would also change {', '.join(foreign)}: nothing was applied; "
                              "look at the workspace's drift first")
        driver.apply(ws, summary.planfile, sha256=summary.sha256, progress=ctx.progress)
    return len(existing & names)


def _own(ctx: EngineContext, row: TicketRow, cloud_id: str) -> list[InstanceSpec]:
    with ctx.store.transaction() as conn:
        record = {p.cloud: p for p in plans.of_ticket(conn, row.id)}.get(cloud_id)
    return [spec_of(i) for i in record.instances] if record else []


def remove(ctx: EngineContext, row: TicketRow) -> int:
    """Take the ticket's instances out of its workspaces and apply that (retirement, rollback); the last
    ticket of a workspace destroys it. Refuses when the plan would touch anything not the ticket's.
    Returns how many of the ticket's instances existed; its VM rows are forgotten."""
    removed = 0
    for cloud_id in terraform_clouds(ctx, placements(row)):
        with workspace_lock(ctx, row.tenant, cloud_id, f"removal of ticket {row.id}"):
            removed += _remove_from(ctx, row, cloud_id)
    with ctx.store.transaction() as conn:
        for vm in rows.vms_of(conn, row.id):
            rows.delete_vm(conn, row.id, vm.idx)
            ctx.progress("vm", {"ticket": row.id, "name": vm.name, "status": "DELETED", "centre": vm.centre})
    return removed


class TerraformPath:
    """The :class:`~govcloud.engine.ticket_base.ProvisioningPath` of ``driver: terraform`` clouds: apply
    exactly the approved plan; converge only reports drift; removal re-plans the workspace without the ticket."""

    name = "terraform"

    def handles(self, ctx: EngineContext, row: TicketRow) -> bool:
        return handles(ctx, row)

    def provision(self, ctx: EngineContext, row: TicketRow, actor: str, *, configure: bool) -> Outcome:
        return provision(ctx, row, actor, configure=configure)

    def converge(self, ctx: EngineContext, row: TicketRow, actor: str) -> Outcome:
        return converge(ctx, row, actor)

    def remove(self, ctx: EngineContext, row: TicketRow, actor: str) -> int:
        return remove(ctx, row)
