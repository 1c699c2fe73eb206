"""Resize: new sizes for the VMs of an earlier create ticket, checked on the growth only.

A resize ticket names its ``target`` (the create ticket whose VMs change) and lists the target's VM
groups by name with their new flavor (or vcpus/ram/disk). VMs stay where they are; the counts must
not change (more VMs is a new create ticket). Only growth is checked and reserved: a shrinking
resource frees quota when the resize is done, not before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from govcloud.model.parsed import DesiredState
from govcloud.model.resources import Resources
from govcloud.model.tickets import Ticket, vm_size
from govcloud.planner.placement import PlacementError, Plan, Reservation, VmPlacement, protection_of
from govcloud.planner.quota import check_levels
from govcloud.planner.usage import Usage


def plan_resize(ticket: Ticket, target_vms: Sequence[VmPlacement], target_reservations: Sequence[Reservation],
                state: DesiredState, usage: Usage) -> Plan:
    """The target's VMs with their new sizes; checks on the growth; the DR reservation grows alike."""
    flavors = {f.name: f.resources() for f in state.topology.flavors}
    groups = {vm.group for vm in target_vms}
    new_vms, old_vms = [], []
    for request in ticket.vms:
        members = [vm for vm in target_vms if vm.group == request.name]
        if request.name not in groups:
            raise PlacementError(f"ticket {ticket.target} has no VM group '{request.name}' (it has: {', '.join(sorted(groups))})")
        if request.count != len(members):
            raise PlacementError(f"group '{request.name}' has {len(members)} VM(s), the resize asks for {request.count}: "
                                 "a resize changes sizes, not counts (more VMs is a new create ticket)")
        size = vm_size(request, flavors)
        if size is None:
            raise PlacementError(f"VM group {request.name}: unknown size (flavor {request.flavor})")
        for vm in members:
            if vm.size != size:
                old_vms.append(vm)
                new_vms.append(dataclasses.replace(vm, size=size, flavor=request.flavor))
    growth = _dr_growth(old_vms, new_vms, target_reservations)
    draft = Plan(ticket.id, ticket.tenant, ticket.system, protection_of(ticket, state), tuple(new_vms), tuple(growth),
                 replaces=tuple(old_vms))
    per_cloud, per_centre = draft.demand()
    checks = check_levels(state, usage, tenant=ticket.tenant, system=ticket.system, per_cloud=per_cloud, per_centre=per_centre)
    notes = tuple(f"{old.name}: {old.flavor or 'custom'} → {new.flavor or 'custom'}" for old, new in zip(old_vms, new_vms, strict=True))
    return dataclasses.replace(draft, checks=tuple(checks), notes=notes or ("nothing changes: every VM already has that size",))


def _dr_growth(old: Sequence[VmPlacement], new: Sequence[VmPlacement], reservations: Sequence[Reservation]) -> list[Reservation]:
    """A DR reservation grows by the VMs' growth in its cloud."""
    result = []
    for res in reservations:
        delta = sum((v.size for v in new if v.cloud == res.cloud), Resources()) - sum((v.size for v in old if v.cloud == res.cloud), Resources())
        if any(delta.clamped().as_dict().values()):
            result.append(dataclasses.replace(res, resources=delta.clamped()))
    return result
