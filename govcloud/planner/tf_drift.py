"""A Terraform workspace's refreshed plan, read as drift: what changed outside govcloud, and whether the
plan may be applied without a human.

Pure. ``engine/tf_reconcile.py`` runs ``terraform plan`` (with refresh) in a tenant's workspace, reads the
saved plan as JSON and calls :func:`judge` with the plan's resource changes, the VMs' instances in the
refreshed state and the VMs the workspace renders (each with its ticket and the ticket's state). The
findings use the kinds of ``planner/drift.py``, so both clouds' drift reads alike in ``govcloud drift list``.

A plan may be applied unattended (policy ``correct``) only when every change creates or updates in
place a resource of a VM whose ticket is live (active, config-failed): what terraform would then do is
exactly "put back the VMs govcloud was asked for". Anything else — a replace, a destroy, a change to a
resource no VM owns (the tenant's security group), the instances of a ticket still waiting for its own
approved plan — makes the plan one for a human, and every finding of the workspace says so.

A workspace none of whose tickets is live (all retired, failed or rejected) is not planned: what its state
still holds (a failed ticket's rollback that stopped half-way, something applied into it outside govcloud)
is read as :func:`leftovers` — an ``orphan`` per instance, the ``resource`` reason for anything else —
each saying which command removes it. Nothing is ever destroyed unattended: that is the retire path's job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from govcloud.planner.drift import BROKEN, FINE, IN_FLIGHT, LEFT, LIVE, Drift

UNATTENDED = frozenset({"create", "update"})
"""The only actions a plan applied without a human may contain."""


@dataclass(frozen=True)
class PlannedResource:
    """One resource change of the plan: its address, terraform's action (create, update, replace, delete,
    or another word terraform uses), the VM it belongs to (the ``for_each`` key, None for resources no VM
    owns) and whether it is the VM's instance."""

    address: str
    action: str
    vm: str | None = None
    instance: bool = False


@dataclass(frozen=True)
class Instance:
    """A VM's instance in the refreshed state: its id and status (nova's words: ACTIVE, SHUTOFF, ERROR…)."""

    name: str
    id: str
    status: str


@dataclass(frozen=True)
class Member:
    """A VM the workspace renders, or rendered once: its ticket, index and the ticket's state now."""

    name: str
    ticket: str
    index: int
    tenant: str
    state: str


@dataclass(frozen=True)
class Verdict:
    """Findings of one workspace, what an unattended apply would fix, and why it may not (empty: it may)."""

    findings: tuple[Drift, ...]
    fixes: tuple[str, ...]
    """VM names the plan would recreate or update in place (what policy ``correct`` fixes)."""
    blockers: tuple[str, ...]
    """Why the plan needs a human (empty when it may be applied unattended)."""

    @property
    def unattended(self) -> bool:
        return bool(self.fixes) and not self.blockers


def judge(*, cloud: str, workspace: str, changes: Sequence[PlannedResource], instances: Sequence[Instance],
          members: Mapping[str, Member], remedy: str = "") -> Verdict:
    """Read one workspace's plan. ``members``: VM name → the ticket that has (or had) it, every ticket of
    the workspace whatever its state; ``remedy``: what a human should do, said on every finding of a plan
    that is not applied unattended."""
    ids = {i.name: i.id for i in instances}
    findings: list[Drift] = []
    fixes: list[str] = []
    blockers: list[str] = []
    for change in sorted(changes, key=lambda c: c.address):
        member = members.get(change.vm or "")
        if member is None or member.state not in LIVE:
            in_flight = member is not None and member.state in IN_FLIGHT
            if not in_flight:
                findings.append(_foreign(change, member, cloud, workspace, ids))
            why = (f"it would {change.action} {change.address} of ticket {member.ticket}, which is {member.state}" if member is not None
                   else f"it would {change.action} {change.address}, which no live ticket's VM owns")
            blockers.append(why)
            continue
        if change.action not in UNATTENDED:
            blockers.append(f"it would {change.action} {change.address}")
        reason = {"create": "missing", "update": "changed", "replace": "replaced"}.get(change.action, "resource")
        if reason == "missing" and not change.instance:
            reason = "changed"  # the VM's port or volume is gone, the instance is still there
        server = None if reason == "missing" else ids.get(member.name)
        findings.append(Drift("drift", reason, member.name, cloud, ticket=member.ticket, index=member.index, tenant=member.tenant,
                              server_id=server, status=change.action))
        if change.action in UNATTENDED:
            fixes.append(member.name)
    for instance in instances:
        member = members.get(instance.name)
        if member is None or member.state not in LIVE or instance.status in FINE:
            continue
        findings.append(Drift("drift", "broken" if instance.status in BROKEN else "stopped", member.name, cloud, ticket=member.ticket,
                              index=member.index, tenant=member.tenant, server_id=instance.id, status=instance.status))
    findings = _dedupe(findings)
    if blockers:
        note = f"not applied unattended ({'; '.join(sorted(set(blockers)))}): {remedy or 'a human must plan and approve it'}"
        findings = [replace(f, note=note) if f.kind != "drift" or f.reason not in ("stopped", "broken") else f for f in findings]
    return Verdict(tuple(findings), tuple(sorted(set(fixes))), tuple(sorted(set(blockers))))


@dataclass(frozen=True)
class Remaining:
    """A resource in the state of a workspace where no ticket is live: its address, the VM it belongs to
    (the ``for_each`` key, None for the tenant's own resources), whether it is the VM's instance, its id and
    (an instance's) status."""

    address: str
    vm: str | None
    instance: bool
    id: str
    status: str = ""


def leftovers(*, cloud: str, workspace: str, directory: str, resources: Sequence[Remaining],
              members: Mapping[str, Member]) -> tuple[Drift, ...]:
    """Findings for what remains in the state of a workspace none of whose tickets is live: an ``orphan``
    per instance, a ``resource`` finding for anything else no remaining instance accounts for (a VM's port
    goes with its instance: one finding per VM). ``members``: VM name → the ticket that had it, every ticket
    of the workspace; an instance of a ticket the engine is working on is neither. Each finding says how it
    goes away: ``govcloud ticket retire`` for a failed ticket's, by hand in ``directory`` otherwise."""
    tenant = workspace.partition("--")[0]
    vms = {r.vm for r in resources if r.instance and r.vm}
    found: list[Drift] = []
    for resource in sorted(resources, key=lambda r: r.address):
        member = members.get(resource.vm or "")
        if member is not None and member.state in IN_FLIGHT:
            continue
        note = _remedy(resource, member, directory)
        where = f"{workspace}:{resource.address}"
        if resource.instance:
            found.append(Drift("orphan", "no-ticket", resource.vm or resource.address, cloud, ticket=member.ticket if member else None,
                               index=member.index if member else None, tenant=tenant, server_id=resource.id or None,
                               status=resource.status or None, note=note, resource=where))
        elif resource.vm not in vms:
            found.append(Drift("drift", "resource", resource.address, cloud, tenant=tenant, status=LEFT, note=note, resource=where))
    return tuple(sorted(found, key=lambda d: (d.kind, d.name)))


def _remedy(resource: Remaining, member: Member | None, directory: str) -> str:
    if member is not None and member.state == "failed":
        return (f"ticket {member.ticket} failed and its rollback left this: `govcloud ticket retire {member.ticket}` destroys it "
                "(reconcile never destroys)")
    owner = f"ticket {member.ticket} is {member.state}" if member is not None else "no ticket of govcloud's has it"
    return (f"{owner}, so no govcloud command removes it: review it, then destroy it by hand "
            f"(`terraform -chdir={directory} destroy -target='{resource.address}'`, the cloud's credentials in the environment); "
            "reconcile never destroys")


def _foreign(change: PlannedResource, member: Member | None, cloud: str, workspace: str, ids: Mapping[str, str]) -> Drift:
    """A change to something no live ticket owns: an instance of a gone ticket (orphan) or the workspace's own resource."""
    tenant = workspace.partition("--")[0]
    if change.instance and change.action == "delete":
        return Drift("orphan", "no-ticket", change.vm or change.address, cloud, ticket=member.ticket if member else None,
                     index=member.index if member else None, tenant=tenant, server_id=ids.get(change.vm or ""),
                     resource=f"{workspace}:{change.address}")
    return Drift("drift", "resource", change.address, cloud, tenant=tenant, status=change.action, resource=f"{workspace}:{change.address}")


def _dedupe(found: list[Drift]) -> list[Drift]:
    """One finding per VM (its instance and its port changing is one drift: the gravest reason wins)."""
    rank = {"replaced": 0, "missing": 1, "changed": 2, "broken": 3, "stopped": 4}
    best: dict[str, Drift] = {}
    for drift in found:
        key = f"{drift.ticket}/{drift.index}" if drift.kind == "drift" and drift.ticket else drift.key
        kept = best.get(key)
        if kept is None or rank.get(drift.reason, 9) < rank.get(kept.reason, 9):
            best[key] = drift
    return sorted(best.values(), key=lambda d: (d.kind, d.name))
