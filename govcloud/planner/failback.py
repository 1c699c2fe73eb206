"""Which VMs go back to their home centre, and onto which of its hosts: the failback plan, as data.

Pure (no I/O), like ``planner/failover.py``, whose plan type it returns so that the same journal,
steps and commands carry it out (``failover/planned.py``). A VM's *home* is the centre its ticket's
plan placed it in (``Placed.home``, from the stored plan: a failover, a planned migration or a failback
never changes it). Failback of a centre takes the VMs of live tickets whose home it is and that are
recorded in another centre of the same cloud and region:

* in the recovery plan's group order, and inside a group ``dr`` before ``ha``, then by ticket and index
  (``planner/failover.py``'s order: what was recovered first comes back first);
* while the home centre has room (its allocatable capacity minus what the ledger holds there);
* each onto the home host with the fewest members of its ticket's server group already there (those
  nova lists on the host, plus those this plan sends), then the least used — so the members of one
  soft-anti-affinity group land on different hosts again, which a forced move (no scheduler) would not
  do by itself;
* everything else is *held* with the reason: another region (a DR activation is not undone here), no
  server, no room, no host of the home centre nova reports up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from govcloud.model.recovery import UNPLANNED, ProtectionGroup
from govcloud.model.resources import Resources
from govcloud.model.topology import Centre, Cloud
from govcloud.planner.failover import PROTECTED, Facts, Held, Move, Placed, RecoveryPlan, group_of, order_vms, steps_of
from govcloud.planner.quota import fits


def plan_failback(cloud: Cloud, home_id: str, vms: Sequence[Placed], facts: Facts, groups: Sequence[ProtectionGroup] = (),
                  members: Mapping[tuple[str, str], int] | None = None) -> RecoveryPlan:
    """The failback plan of ``home_id``: its VMs recorded elsewhere, back onto its hosts (``facts.hosts_up``).
    ``members``: (ticket, host) → servers of that ticket nova already runs on that host of the home centre."""
    home = cloud.centre(home_id)
    if home is None:
        raise ValueError(f"cloud {cloud.id} has no centre {home_id}")
    away = [v for v in vms if v.cloud == cloud.id and v.home == home_id and v.centre != home_id]
    steps = steps_of(groups)
    rank = {s.name: n for n, s in enumerate(steps)}
    group = group_of(groups)

    def gr(v: Placed) -> str:
        return group.get(v.system, UNPLANNED)

    region = cloud.region_of(home)
    held: list[Held] = []
    movable: list[Placed] = []
    for vm in away:
        where = cloud.centre(vm.centre)
        if where is None or cloud.region_of(where) != region:
            held.append(Held(vm, f"it runs in {vm.centre}, another region: failback stays within region {region}", gr(vm)))
        elif vm.protection not in PROTECTED:
            held.append(Held(vm, f"protection {vm.protection}: govcloud does not move it", gr(vm)))
        elif not vm.server_id:
            held.append(Held(vm, "no server recorded: nothing to move", gr(vm)))
        else:
            movable.append(vm)
    moves, more = _assign(cloud, home, order_vms(movable, rank, group), facts, dict(members or {}), gr)
    used = {m.group for m in moves} | {h.group for h in held + more}
    return RecoveryPlan(cloud.id, home_id, tuple(moves), tuple(held + more), tuple(s for s in steps if s.name in used))


def _assign(cloud: Cloud, home: Centre, vms: Sequence[Placed], facts: Facts, members: dict[tuple[str, str], int],
            group: Callable[[Placed], str]) -> tuple[list[Move], list[Held]]:
    """Give each VM, in order, the home host with the fewest of its ticket's members, while there is room."""
    hosts = list(facts.hosts_up.get((cloud.id, home.id), ()))
    free = (home.allocatable() - facts.allocated.get((cloud.id, home.id), Resources())).clamped()
    load = dict.fromkeys(hosts, 0)
    zone = home.availability_zones[0]
    moves: list[Move] = []
    held: list[Held] = []
    for vm in vms:
        if not hosts:
            held.append(Held(vm, f"nova reports no compute host of {home.id} up and enabled", group(vm)))
            continue
        if fits(free, vm.size) < 1:
            held.append(Held(vm, f"no room in {home.id} ({free.vcpus} vCPU, {free.ram_mb} MB RAM free)", group(vm)))
            continue
        host = min(hosts, key=lambda h: (members.get((vm.ticket, h), 0), load[h], hosts.index(h)))
        members[(vm.ticket, host)] = members.get((vm.ticket, host), 0) + 1
        load[host] += 1
        free = free - vm.size
        moves.append(Move(vm, home.id, zone, host, group(vm)))
    return moves, held
