"""Where each VM of a ticket goes: cloud, centre, availability zone, server group; DR reservations.

Rules (issue 4):
- protection ``none``: every VM of a group in one centre with room (the named one, else the main or
  secondary centre with the most free vCPUs);
- ``ha``: VMs alternate between the main and the same-city secondary centre, each centre's share
  in a soft-anti-affinity server group so that hosts inside a centre differ too; a cloud with a
  single centre keeps host anti-affinity only and the plan says so;
- ``dr``: as ``ha``, plus a reservation of the same resources in the cloud's DR centre so that a
  failover has room (it counts against the centre's capacity, not the tenant's quota).
A cloud ``any`` means the first of the tenant's clouds (in tenants.yaml order) where every level fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from govcloud.model.parsed import DesiredState
from govcloud.model.resources import Resources
from govcloud.model.tickets import ANY, Ticket, VmRequest, vm_size
from govcloud.model.topology import Centre, Cloud
from govcloud.planner.quota import LevelCheck, check_levels, fits
from govcloud.planner.usage import Usage


@dataclass(frozen=True)
class VmPlacement:
    """One VM: its deterministic name (``<tenant>-<system>-<ticket>-<n>``) and where it lands."""

    index: int
    group: str
    name: str
    cloud: str
    region: str
    centre: str
    zone: str
    size: Resources
    flavor: str | None
    image: str
    network: str
    server_group: str | None = None


@dataclass(frozen=True)
class Reservation:
    """Capacity held in a DR centre for the ticket's VMs to fail over into."""

    cloud: str
    region: str
    centre: str
    resources: Resources


@dataclass(frozen=True)
class Plan:
    """The placement and the quota picture of one ticket. ``ok`` when every level fits."""

    ticket: str
    tenant: str
    system: str
    protection: str
    vms: tuple[VmPlacement, ...]
    reservations: tuple[Reservation, ...] = ()
    checks: tuple[LevelCheck, ...] = ()
    notes: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = field(default=())
    replaces: tuple[VmPlacement, ...] = ()
    """For a resize: the VMs as they are now. Demand is then the growth only (never negative)."""

    @property
    def denials(self) -> list[LevelCheck]:
        return [c for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.denials

    def demand(self) -> tuple[dict[str, Resources], dict[tuple[str, str], Resources]]:
        """Resources per cloud (quota levels) and per centre (capacity, DR reservations included)."""
        per_cloud: dict[str, Resources] = {}
        per_centre: dict[tuple[str, str], Resources] = {}
        for vm in self.vms:
            per_cloud[vm.cloud] = per_cloud.get(vm.cloud, Resources()) + vm.size
            per_centre[(vm.cloud, vm.centre)] = per_centre.get((vm.cloud, vm.centre), Resources()) + vm.size
        for old in self.replaces:
            per_cloud[old.cloud] = per_cloud.get(old.cloud, Resources()) - old.size
            per_centre[(old.cloud, old.centre)] = per_centre.get((old.cloud, old.centre), Resources()) - old.size
        for res in self.reservations:
            key = (res.cloud, res.centre)
            per_centre[key] = per_centre.get(key, Resources()) + res.resources
        if self.replaces:  # a shrinking resource frees quota only once the resize is done: count growth alone
            per_cloud = {k: v.clamped() for k, v in per_cloud.items()}
            per_centre = {k: v.clamped() for k, v in per_centre.items()}
        return per_cloud, per_centre


class PlacementError(ValueError):
    """A ticket that cannot be placed at all (unknown flavor, no allowed cloud); validation
    normally catches these first."""


def vm_name(ticket: Ticket, index: int) -> str:
    """Deterministic, so a re-run finds the VM it created before a crash."""
    return f"{ticket.tenant}-{ticket.system}-{ticket.id}-{index}"


def protection_of(ticket: Ticket, state: DesiredState) -> str:
    if ticket.protection is not None:
        return ticket.protection
    system = state.tenants[ticket.tenant].system(ticket.system)
    return system.protection if system else "none"


def _serving_centres(cloud: Cloud) -> list[Centre]:
    """Centres that run workloads: main first, then secondary; DR centres only hold reservations."""
    order = {"main": 0, "secondary": 1}
    return sorted((c for c in cloud.centres if c.role in order), key=lambda c: order[c.role])


def _free_vcpus(cloud: Cloud, centre: Centre, usage: Usage, planned: dict[tuple[str, str], Resources]) -> int:
    used = usage.of_centre(cloud.id, centre.id) + planned.get((cloud.id, centre.id), Resources())
    return centre.allocatable().vcpus - used.vcpus


def _centres_for(request: VmRequest, cloud: Cloud, protection: str, usage: Usage,
                 planned: dict[tuple[str, str], Resources]) -> tuple[list[Centre], list[str]]:
    """The centres a group's VMs cycle through, and notes for the plan."""
    if request.centre != ANY:
        centre = cloud.centre(request.centre)
        if centre is None:
            raise PlacementError(f"cloud {cloud.id} has no centre {request.centre}")
        notes = [f"{request.name}: pinned to centre {centre.id}; protection {protection} not spread"] if protection != "none" else []
        return [centre], notes
    serving = _serving_centres(cloud) or list(cloud.centres)
    if protection == "none":
        return [max(serving, key=lambda c: _free_vcpus(cloud, c, usage, planned))], []
    if len(serving) < 2:
        return serving[:1], [f"{request.name}: cloud {cloud.id} has one serving centre; {protection} keeps host anti-affinity only"]
    return serving[:2], []


def _place_group(ticket: Ticket, request: VmRequest, cloud: Cloud, protection: str, size: Resources, first_index: int,
                 usage: Usage, planned: dict[tuple[str, str], Resources]) -> tuple[list[VmPlacement], list[str]]:
    centres, notes = _centres_for(request, cloud, protection, usage, planned)
    placed = []
    for offset in range(request.count):
        centre = centres[offset % len(centres)]
        group = f"{ticket.id}-{request.name}-{centre.id}" if protection != "none" and request.count > 1 else None
        index = first_index + offset
        placed.append(VmPlacement(index=index, group=request.name, name=vm_name(ticket, index), cloud=cloud.id,
                                  region=cloud.region_of(centre), centre=centre.id,
                                  zone=centre.availability_zones[offset // len(centres) % len(centre.availability_zones)],
                                  size=size, flavor=request.flavor, image=request.image, network=request.network,
                                  server_group=group))
        key = (cloud.id, centre.id)
        planned[key] = planned.get(key, Resources()) + size
    return placed, notes


def _dr_reservations(vms: Sequence[VmPlacement], state: DesiredState) -> list[Reservation]:
    per_cloud: dict[str, Resources] = {}
    for vm in vms:
        per_cloud[vm.cloud] = per_cloud.get(vm.cloud, Resources()) + vm.size
    result = []
    for cloud_id, resources in sorted(per_cloud.items()):
        cloud = state.topology.cloud(cloud_id)
        dr = next((c for c in cloud.centres if c.role == "dr"), None) if cloud else None
        if cloud is not None and dr is not None:
            result.append(Reservation(cloud=cloud_id, region=cloud.region_of(dr), centre=dr.id, resources=resources))
    return result


def _candidate_clouds(request: VmRequest, ticket: Ticket, state: DesiredState) -> list[Cloud]:
    ids = [request.cloud] if request.cloud != ANY else list(state.tenants[ticket.tenant].clouds)
    clouds = [c for c in (state.topology.cloud(i) for i in ids) if c is not None and state.quotas.of(ticket.tenant, c.id)]
    if not clouds:
        raise PlacementError(f"tenant {ticket.tenant} has no quota in " + ", ".join(ids))
    return clouds


def place(ticket: Ticket, state: DesiredState, usage: Usage) -> Plan:
    """Place every VM of a create ticket and check every quota level (``Plan.ok`` tells the verdict)."""
    protection = protection_of(ticket, state)
    flavors = {f.name: f.resources() for f in state.topology.flavors}
    planned: dict[tuple[str, str], Resources] = {}
    vms: list[VmPlacement] = []
    notes: list[str] = []
    for request in ticket.vms:
        size = vm_size(request, flavors)
        if size is None:
            raise PlacementError(f"VM group {request.name}: unknown size (flavor {request.flavor})")
        group, group_notes = _place_in_first_fitting_cloud(ticket, request, protection, size, len(vms) + 1, state, usage, planned)
        vms.extend(group)
        notes.extend(group_notes)
    return _finish(ticket, state, usage, protection, vms, notes)


def _place_in_first_fitting_cloud(ticket: Ticket, request: VmRequest, protection: str, size: Resources, first_index: int,
                                  state: DesiredState, usage: Usage,
                                  planned: dict[tuple[str, str], Resources]) -> tuple[list[VmPlacement], list[str]]:
    """Try the candidate clouds in order; the first where this group fits wins, else the first one."""
    candidates = _candidate_clouds(request, ticket, state)
    if protection == "dr":
        candidates = [c for c in candidates if any(x.role == "dr" for x in c.centres)] or candidates
    fallback: tuple[list[VmPlacement], list[str], dict[tuple[str, str], Resources]] | None = None
    for cloud in candidates:
        trial = dict(planned)
        group, notes = _place_group(ticket, request, cloud, protection, size, first_index, usage, trial)
        per_cloud, per_centre = Plan(ticket.id, ticket.tenant, ticket.system, protection, tuple(group),
                                     tuple(_dr_reservations(group, state) if protection == "dr" else ())).demand()
        checks = check_levels(state, usage, tenant=ticket.tenant, system=ticket.system, per_cloud=per_cloud, per_centre=per_centre)
        if all(c.ok for c in checks) or len(candidates) == 1:
            planned.clear()
            planned.update(trial)
            return group, notes
        fallback = fallback or (group, notes, trial)
    assert fallback is not None
    planned.clear()
    planned.update(fallback[2])
    return fallback[0], fallback[1]


def _finish(ticket: Ticket, state: DesiredState, usage: Usage, protection: str, vms: list[VmPlacement], notes: list[str]) -> Plan:
    reservations = _dr_reservations(vms, state) if protection == "dr" else []
    draft = Plan(ticket.id, ticket.tenant, ticket.system, protection, tuple(vms), tuple(reservations))
    per_cloud, per_centre = draft.demand()
    checks = check_levels(state, usage, tenant=ticket.tenant, system=ticket.system, per_cloud=per_cloud, per_centre=per_centre)
    suggestions = _suggest(ticket, vms, checks)
    return Plan(ticket.id, ticket.tenant, ticket.system, protection, tuple(vms), tuple(reservations), tuple(checks),
                tuple(notes), tuple(suggestions))


def _suggest(ticket: Ticket, vms: Sequence[VmPlacement], checks: Sequence[LevelCheck]) -> list[str]:
    """For each denial: how many VMs of each group would still fit under that limit."""
    result = []
    for check in (c for c in checks if not c.ok):
        free = check.free()
        for request in ticket.vms:
            sizes = [vm.size for vm in vms if vm.group == request.name and check.cloud in (vm.cloud, "*")]
            if sizes:
                result.append(f"{check.level} limit of {check.scope}: at most {fits(free, sizes[0])} × {request.flavor or 'custom size'}"
                              f" ({request.name}) would fit; requested {request.count}")
    return result
