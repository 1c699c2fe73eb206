"""Which ``dr`` VMs a DR activation rebuilds in the cloud's DR centre, from which replica, in which order.

Pure (no I/O): ``failover/activate.py`` gathers the facts — the VM rows of live tickets with their
protection, each VM's newest ready replica in the DR region (``store/replicas.py``), the DR centre's
compute hosts nova reports up — and this module decides. The result is a :class:`RecoveryPlan` like a
same-city failover's, so the same journalled steps (``failover/steps.py``) carry it out group by group.

Rules:

* only ``dr`` VMs of the cloud that are not already in the DR centre (a resumed run finds those it
  rebuilt recorded there) — an ``ha`` VM has no reservation in the DR centre, a ``none`` VM no promise;
* in the cloud's recovery plan order (``planner/failover.steps_of``: depends_on, then priority; the
  ``unplanned`` group at priority 3), then by ticket and index;
* a VM without a ready replica in the DR region is *held*: there is nothing to rebuild it from;
* no room check: the ledger's ``dr`` line of the ticket in the DR centre is the room, reserved for
  these VMs at placement (the activation turns it into the VMs' allocation);
* the DR centre's hosts nova reports up are used in turn, only to bound the rebuilds in flight per
  host (``parallel_per_host``): nova's scheduler picks the host within the DR zone. No host up: every
  VM is held.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from govcloud.model.recovery import UNPLANNED, ProtectionGroup
from govcloud.model.topology import Centre, Cloud
from govcloud.planner.failover import Held, Move, Placed, RecoveryPlan, group_of, steps_of


@dataclass(frozen=True)
class Source:
    """The replica a VM is rebuilt from: its row id, its image in the DR region, when it was taken."""

    replica: str
    image: str
    taken_at: str


def dr_centre(cloud: Cloud) -> Centre | None:
    return next((c for c in cloud.centres if c.role == "dr"), None)


def dr_vms_in_order(cloud: Cloud, vms: Sequence[Placed], groups: Sequence[ProtectionGroup], *, in_dr: bool
                    ) -> tuple[Centre, Callable[[Placed], str], list[Placed]]:
    """What a DR activation (``in_dr=False``: the ``dr`` VMs outside the DR centre) or a return
    (``in_dr=True``: those in it) works on: the DR centre, each VM's group, and the VMs in the plan's
    group order, then by ticket and index. ValueError for a cloud without a DR centre."""
    dr = dr_centre(cloud)
    if dr is None:
        raise ValueError(f"cloud {cloud.id} has no DR centre")
    rank = {s.name: n for n, s in enumerate(steps_of(groups))}
    group = group_of(groups)

    def gr(vm: Placed) -> str:
        return group.get(vm.system, UNPLANNED)

    wanted = sorted((v for v in vms if v.cloud == cloud.id and v.protection == "dr" and (v.centre == dr.id) == in_dr),
                    key=lambda v: (rank[gr(v)], v.ticket, v.idx))
    return dr, gr, wanted


def plan_activation(cloud: Cloud, vms: Sequence[Placed], sources: Mapping[str, Source], hosts_up: Sequence[str],
                    groups: Sequence[ProtectionGroup] = ()) -> RecoveryPlan:
    """The DR activation of ``cloud``: each of its ``dr`` VMs outside the DR centre rebuilt there from
    ``sources[vm.name]``, group by group of ``groups``."""
    dr, gr, wanted = dr_vms_in_order(cloud, vms, groups, in_dr=False)
    steps = steps_of(groups)
    region = cloud.region_of(dr)
    moves: list[Move] = []
    held: list[Held] = []
    for vm in wanted:
        if vm.name not in sources:
            held.append(Held(vm, f"no ready replica in {region}: nothing to rebuild it from (govcloud dr replicate)", gr(vm)))
        elif not hosts_up:
            held.append(Held(vm, f"nova reports no compute host up in {dr.id}", gr(vm)))
        else:
            moves.append(Move(vm, dr.id, dr.availability_zones[0], hosts_up[len(moves) % len(hosts_up)], gr(vm)))
    used = {m.group for m in moves} | {h.group for h in held}
    return RecoveryPlan(cloud.id, dr.id, tuple(moves), tuple(held), tuple(s for s in steps if s.name in used))
