"""Which ``dr`` VMs ``govcloud dr return`` brings back from the DR centre to Guangzhou, where, in which order.

Pure (no I/O): ``failover/dr_return.py`` gathers the facts — the VM rows of live tickets recorded in the
cloud's DR centre, the zone each ticket's placement chose, the compute hosts nova reports up in each
serving centre — and this module decides. The result is a :class:`RecoveryPlan` like an activation's
(its ``centre`` is the DR centre: the run is the DR centre's, so a cloud has one activation or return
at a time), carried out group by group by the same journalled steps (``failover/steps.py``).

Rules:

* the ``dr`` VMs of the cloud recorded in the DR centre (where a DR activation rebuilt them); a VM
  already back home is not in the plan, so a resumed run only plans what is left;
* each goes to its *home*: the centre and zone its ticket's placement chose (``Placed.home``, the
  stored plan; a DR activation never changes it);
* in the recovery plan's group order (``planner/failover.steps_of``, as the activation went), then by
  ticket and index;
* held, with the reason: a home that is not a serving centre of the cloud, no server recorded in the
  DR centre, no compute host of the home centre that nova reports up and enabled;
* no room check: the ticket's ledger line was moved, not added, by the activation; bringing it back
  gives the DR centre its reservation again and the home centre what it held before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from govcloud.model.recovery import ProtectionGroup
from govcloud.model.topology import Cloud
from govcloud.planner.activation import dr_vms_in_order
from govcloud.planner.failover import SERVING, Held, Move, Placed, RecoveryPlan, steps_of


def plan_return(cloud: Cloud, vms: Sequence[Placed], zones: Mapping[str, str], hosts_up: Mapping[str, Sequence[str]],
                groups: Sequence[ProtectionGroup] = ()) -> RecoveryPlan:
    """The return of ``cloud``'s ``dr`` VMs recorded in its DR centre to their home centres. ``zones``:
    VM name → the zone its ticket's placement chose; ``hosts_up``: serving centre → hosts nova reports up."""
    dr, gr, wanted = dr_vms_in_order(cloud, vms, groups, in_dr=True)
    steps = steps_of(groups)
    serving = {c.id for c in cloud.centres if c.role in SERVING}
    moves: list[Move] = []
    held: list[Held] = []
    turn: dict[str, int] = {}
    for vm in wanted:
        home = cloud.centre(vm.home)
        if home is None or vm.home not in serving:
            held.append(Held(vm, f"its home {vm.home} is not a serving centre of {cloud.id}: nowhere to return it to", gr(vm)))
        elif not vm.server_id:
            held.append(Held(vm, f"no server recorded in {dr.id}: nothing to copy back", gr(vm)))
        elif not hosts_up.get(home.id):
            held.append(Held(vm, f"nova reports no compute host of {home.id} up and enabled", gr(vm)))
        else:
            hosts = hosts_up[home.id]
            n = turn.get(home.id, 0)
            turn[home.id] = n + 1
            moves.append(Move(vm, home.id, zones.get(vm.name) or home.availability_zones[0], hosts[n % len(hosts)], gr(vm)))
    used = {m.group for m in moves} | {h.group for h in held}
    return RecoveryPlan(cloud.id, dr.id, tuple(moves), tuple(held), tuple(s for s in steps if s.name in used))
