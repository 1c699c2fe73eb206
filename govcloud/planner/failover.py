"""Which VMs leave a centre that is down, and where they go: the recovery plan, as data.

Pure (no I/O): the failover runner (``failover/recover.py``) gathers the facts — the VM rows of live
tickets, each ticket's protection, the centres' recorded health, the ledger's per-centre sums and the
compute hosts nova reports up — and this module decides. The same plan is what ``govcloud failover
plan`` prints and what ``failover run`` (or the daemon) executes, so an operator sees beforehand
exactly what will be done.

Rules (the two-sites-three-centres layout: main and secondary are active-active in one city, and
live in one OpenStack region; the DR centre is in another city and region):

* a VM with protection ``ha`` or ``dr`` in the failed centre moves to the *other serving centre of
  the same cloud* (main ↔ secondary) when that centre is not ``down``, is in the same region (nova
  can only evacuate within a region), has hosts nova reports up, and has room;
* VMs are taken in the order of the cloud's recovery plan (``recovery/*.yaml``, ``model/recovery.py``):
  group by group (depends_on first, then priority 1–5; a protected system no group names is in the
  group ``unplanned`` with priority 3, after the named groups of priority 1–3), and inside a group
  ``dr`` before ``ha`` (they paid for a reservation), then by ticket and index;
* room is the target centre's allocatable capacity minus what the ledger holds there (its VMs and
  any DR reservations), less what earlier moves of the plan took — so when room runs out, it is the
  later groups that are held;
* hosts of the target are used in turn, the least used first, so the survivors share the load;
* everything else is *held*, with the reason: ``none`` (no protection asked; it waits for its
  centre), no surviving centre, no room, a VM without a server. Activating the DR centre (another
  region: the VM must be rebuilt there from its replica) needs the e-government office's
  approval and is a command of its own (``govcloud dr activate``, ``failover/activate.py``): such ``dr``
  VMs are held with a reason that says so (an ``ha`` VM has
  no reservation there, and its reason does not mention one).

Each VM keeps ``home``, the centre its ticket's plan chose: a moved VM is "away from home" until it
is brought back (``govcloud failover failback``: ``planner/failback.py``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from govcloud.model.recovery import DEFAULT_PRIORITY, UNPLANNED, Hook, ProtectionGroup, recovery_order
from govcloud.model.resources import Resources
from govcloud.model.topology import Centre, Cloud
from govcloud.planner.quota import fits

PROTECTED = ("ha", "dr")
PRIORITY = {"dr": 0, "ha": 1}
SERVING = ("main", "secondary")


@dataclass(frozen=True)
class Placed:
    """One VM of a live ticket as the store has it now, with the centre its ticket's plan chose."""

    ticket: str
    idx: int
    name: str
    tenant: str
    cloud: str
    centre: str
    zone: str
    protection: str
    size: Resources
    home: str
    """The centre the ticket's plan placed it in (where failback brings it)."""
    server_id: str | None = None
    system: str = ""
    """``tenant/system``: what the recovery plan's groups name."""


@dataclass(frozen=True)
class Step:
    """One protection group of the plan, in recovery order."""

    name: str
    priority: int
    depends_on: tuple[str, ...] = ()
    hook: Hook | None = None

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "priority": self.priority, "depends_on": list(self.depends_on),
                "hook": {"role": self.hook.role, "vars": self.hook.vars} if self.hook else None}


@dataclass(frozen=True)
class Move:
    """Move ``vm`` from its centre to ``target`` (zone ``zone``, compute host ``host``), in group ``group``."""

    vm: Placed
    target: str
    zone: str
    host: str
    group: str = UNPLANNED


@dataclass(frozen=True)
class Held:
    """A VM the plan leaves where it is, and why."""

    vm: Placed
    reason: str
    group: str = UNPLANNED


@dataclass(frozen=True)
class RecoveryPlan:
    """What to do about one failed centre of one cloud (empty when nothing of ours runs there)."""

    cloud: str
    centre: str
    moves: tuple[Move, ...] = ()
    held: tuple[Held, ...] = ()
    steps: tuple[Step, ...] = ()
    """The groups that have VMs here, in recovery order; ``moves`` follow the same order."""

    def moves_of(self, group: str) -> tuple[Move, ...]:
        return tuple(m for m in self.moves if m.group == group)

    def as_dict(self) -> dict[str, object]:
        """JSON for ``--json``, the audit trail and tests."""
        return {
            "cloud": self.cloud, "centre": self.centre,
            "groups": [{**s.as_dict(), "moves": len(self.moves_of(s.name)), "held": sum(1 for h in self.held if h.group == s.name)}
                       for s in self.steps],
            "moves": [{"vm": m.vm.name, "ticket": m.vm.ticket, "system": m.vm.system, "group": m.group, "from": m.vm.centre,
                       "to": m.target, "zone": m.zone, "host": m.host, "protection": m.vm.protection} for m in self.moves],
            "held": [{"vm": h.vm.name, "ticket": h.vm.ticket, "system": h.vm.system, "group": h.group, "centre": h.vm.centre,
                      "protection": h.vm.protection, "reason": h.reason} for h in self.held],
        }


@dataclass(frozen=True)
class Facts:
    """What the planner needs besides the VMs: recorded health, ledger sums, live hosts."""

    health: Mapping[tuple[str, str], str]
    """(cloud, centre) → ``healthy | degraded | down``; a centre never checked counts as healthy."""
    allocated: Mapping[tuple[str, str], Resources]
    """(cloud, centre) → what the ledger holds there (VM lines and DR reservations)."""
    hosts_up: Mapping[tuple[str, str], Sequence[str]]
    """(cloud, centre) → compute hosts nova reports up (and enabled) in the centre's zones."""

    def state(self, cloud: str, centre: str) -> str:
        return self.health.get((cloud, centre), "healthy")


def _partner(cloud: Cloud, failed: Centre) -> Centre | None:
    """The other serving centre of the cloud (main ↔ secondary), if it has one."""
    if failed.role not in SERVING:
        return None
    return next((c for c in cloud.centres if c.role in SERVING and c.id != failed.id), None)


def _why_no_target(cloud: Cloud, failed: Centre, target: Centre | None, facts: Facts) -> str | None:
    """Why nothing can move from ``failed`` to ``target`` at all (None: moves are possible)."""
    if target is None:
        return f"cloud {cloud.id} has no other serving centre to fail over to"
    if cloud.region_of(target) != cloud.region_of(failed):
        return f"{target.id} is in region {cloud.region_of(target)}, not {cloud.region_of(failed)}: evacuation stays within a region"
    if facts.state(cloud.id, target.id) == "down":
        return f"{target.id} is down too"
    if not facts.hosts_up.get((cloud.id, target.id)):
        return f"nova reports no compute host up in {target.id}"
    return None


def steps_of(groups: Sequence[ProtectionGroup]) -> tuple[Step, ...]:
    """The plan's groups in recovery order, with ``unplanned`` (priority 3) after the named groups of priority ≤ 3."""
    ordered = [Step(g.name, g.priority, g.depends_on, g.hook) for g in recovery_order(tuple(groups))]
    at = max((n + 1 for n, s in enumerate(ordered) if s.priority <= DEFAULT_PRIORITY), default=0)
    return (*ordered[:at], Step(UNPLANNED, DEFAULT_PRIORITY), *ordered[at:])


def group_of(groups: Sequence[ProtectionGroup]) -> dict[str, str]:
    """``tenant/system`` → the name of its group."""
    return {system: g.name for g in groups for system in g.systems}


def order_vms(vms: Sequence[Placed], rank: Mapping[str, int], group: Mapping[str, str]) -> list[Placed]:
    """Group by group; inside one, ``dr`` before ``ha`` (a reservation was paid for), then by ticket and index."""
    return sorted(vms, key=lambda v: (rank[group.get(v.system, UNPLANNED)], PRIORITY[v.protection], v.ticket, v.idx))


def _dr_note(cloud: Cloud) -> str:
    dr = next((c for c in cloud.centres if c.role == "dr"), None)
    if dr is None:
        return ""
    return f"; DR activation in {dr.id} (reserved capacity) needs approval: govcloud dr activate"


def plan_recovery(cloud: Cloud, failed_id: str, vms: Sequence[Placed], facts: Facts,
                  groups: Sequence[ProtectionGroup] = ()) -> RecoveryPlan:
    """The recovery plan for the VMs of ``vms`` that run in ``failed_id`` (other VMs are ignored), group by
    group of ``groups`` (the cloud's recovery plan; none: every VM is in ``unplanned``)."""
    failed = cloud.centre(failed_id)
    if failed is None:
        raise ValueError(f"cloud {cloud.id} has no centre {failed_id}")
    here = [v for v in vms if v.cloud == cloud.id and v.centre == failed_id]
    steps = steps_of(groups)
    rank = {s.name: n for n, s in enumerate(steps)}
    group = group_of(groups)
    def gr(v: Placed) -> str:
        return group.get(v.system, UNPLANNED)

    target = _partner(cloud, failed)
    blocked = _why_no_target(cloud, failed, target, facts)
    held = [Held(v, "protection none: no failover was asked for; it waits for its centre", gr(v)) for v in here
            if v.protection not in PROTECTED]
    held += [Held(v, "no server recorded: nothing to move", gr(v)) for v in here if v.protection in PROTECTED and not v.server_id]
    candidates = order_vms([v for v in here if v.protection in PROTECTED and v.server_id], rank, group)
    if blocked is not None or target is None:
        more = [Held(v, (blocked or "no target") + (_dr_note(cloud) if v.protection == "dr" else ""), gr(v)) for v in candidates]
        moves: list[Move] = []
    else:
        moves, more = _assign(cloud, target, candidates, facts, gr)
    used = {m.group for m in moves} | {h.group for h in held + more}
    return RecoveryPlan(cloud.id, failed_id, tuple(moves), tuple(held + more), tuple(s for s in steps if s.name in used))


def _assign(cloud: Cloud, target: Centre, vms: Sequence[Placed], facts: Facts,
            group: Callable[[Placed], str]) -> tuple[list[Move], list[Held]]:
    """Give each VM, in order, a host of ``target`` while the centre has room."""
    free = (target.allocatable() - facts.allocated.get((cloud.id, target.id), Resources())).clamped()
    turn = [(0, n, host) for n, host in enumerate(facts.hosts_up[(cloud.id, target.id)])]  # (moves so far, order, host): a heap
    zone = target.availability_zones[0]
    moves: list[Move] = []
    held: list[Held] = []
    for vm in vms:
        if fits(free, vm.size) < 1:
            dr = _dr_note(cloud) if vm.protection == "dr" else ""
            held.append(Held(vm, f"no room in {target.id} ({_short(free)} free, needs {_short(vm.size)}){dr}", group(vm)))
            continue
        load, order, host = turn[0]
        heapq.heapreplace(turn, (load + 1, order, host))
        free = free - vm.size
        moves.append(Move(vm, target.id, zone, host, group(vm)))
    return moves, held


def _short(r: Resources) -> str:
    return f"{r.vcpus} vCPU, {r.ram_mb} MB RAM, {r.disk_gb} GB disk"

