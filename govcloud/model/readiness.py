"""Readiness of recovery plans (issue 14, item 4): is each protection group ready for a DR activation?

Pure (no I/O, no clock: ``now`` is an argument). ``failover/reads.py`` (``govcloud failover status``) and
the exporter (``govcloud_recovery_plan_ready``) gather the facts from the store and call
:func:`plan_readiness`. It lives in ``model/`` rather than ``planner/`` because the exporter computes it at
every scrape and the layers contract keeps the exporter and the planner apart (siblings); both may use
``model/``.

A plan — one protection group of a cloud's ``recovery/*.yaml``, plus ``unplanned`` for ``dr`` VMs no group
names — is NOT READY, with every reason, when:

* **drill**: it has no successful drill, or its last one finished more than ``drill_every`` ago (the
  group's, else ``settings.dr.drill_every``, 90 days). A drill is a ``recovery_runs`` row of kind
  ``drill``, state ``succeeded``, whose detail names the group (``store/runs.py``, ``last_drills``);
* **replica**: one of its ``dr`` VMs has no ready replica in the DR region, or its newest is older than
  the group's RPO (``rpo``, else ``settings.dr.rpo``) — the data an activation now would lose is more
  than the plan promised;
* **reservation**: a ``dr`` VM's ticket has no ``dr`` ledger line in the cloud's DR centre, or that line
  holds fewer vCPUs or less RAM than the ticket's ``dr`` VMs outside the DR centre (a resize grew them
  after placement, or the line was released);
* **capacity**: the DR centre's allocatable capacity (topology.yaml: capacity × overcommit) no longer
  covers the vCPUs or RAM the ledger holds there (reservations and VMs; e.g. the topology shrank the
  centre after the reservations were made). Quota is not checked: ``dr`` lines never count against a
  tenant's quota, they count against the centre.

``dr`` VMs already in the DR centre (rebuilt there by an activation) are not checked: they run there.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from govcloud.model.recovery import UNPLANNED, ProtectionGroup, RecoveryPlans, duration_seconds
from govcloud.model.resources import Resources
from govcloud.model.topology import Centre, Topology

REASON_KINDS = ("drill", "replica", "reservation", "capacity")


class DrVmFact(NamedTuple):
    """A ``dr`` VM of a live, managed ticket, as the store records it. A tuple of plain values: the exporter
    reads thousands and compares them with the previous scrape's (equal: the verdicts are reused)."""

    ticket: str
    idx: int
    name: str
    tenant: str
    system: str
    cloud: str
    centre: str
    vcpus: int
    ram_mb: int
    disk_gb: int

    @property
    def size(self) -> Resources:
        return Resources(1, self.vcpus, self.ram_mb, self.disk_gb)


@dataclass(frozen=True)
class Reason:
    """Why a plan is not ready. ``tenant``: the tenant whose VM it is about (None: the whole plan)."""

    kind: str
    text: str
    tenant: str | None = None


@dataclass(frozen=True)
class Readiness:
    """One plan's verdict."""

    cloud: str
    group: str
    reasons: tuple[Reason, ...]
    drill_every: float
    """Seconds: how often the plan must be drilled."""
    rpo: float
    """Seconds: the replication lag its ``dr`` VMs may have."""
    last_drill: datetime.datetime | None = None
    vms: tuple[str, ...] = ()
    """Its ``dr`` VMs outside the DR centre (the ones an activation would rebuild)."""
    tenants: frozenset[str] = field(default_factory=frozenset)
    """Tenants whose systems the group names, or whose ``dr`` VMs it holds (a requester sees these plans)."""
    until: datetime.datetime | None = None
    """A ready plan stays ready, while the facts do not change, until this moment: the first of its last
    drill + ``drill_every`` and each VM's newest replica + the RPO (the exporter reuses a verdict until then)."""

    @property
    def ready(self) -> bool:
        return not self.reasons

    def ready_at(self, moment: datetime.datetime) -> bool:
        """The verdict at a later ``moment`` on the same facts: time only ages drills and replicas."""
        return self.ready and self.until is not None and moment <= self.until

    def as_dict(self) -> dict[str, Any]:
        return {"cloud": self.cloud, "plan": self.group, "ready": self.ready, "state": "READY" if self.ready else "NOT READY",
                "why": "; ".join(r.text for r in self.reasons), "reasons": [{"kind": r.kind, "text": r.text} for r in self.reasons],
                "last_drill": self.last_drill.isoformat() if self.last_drill else None, "drill_every_s": self.drill_every,
                "rpo_s": self.rpo, "dr_vms": len(self.vms)}


@dataclass(frozen=True)
class ReplicaAge:
    """Per business system: the oldest of its ``dr`` VMs' newest replicas (inf: a VM has none), and its RPO."""

    cloud: str
    tenant: str
    system: str
    age: float
    rpo: float
    oldest: datetime.datetime | None = None
    """That replica's ``taken_at`` (None: a VM has none): the age at another moment is that moment minus it."""

    def age_at(self, moment: datetime.datetime) -> float:
        return float("inf") if self.oldest is None else (moment - self.oldest).total_seconds()


def _dr_centre(topology: Topology, cloud: str) -> Centre | None:
    found = topology.cloud(cloud)
    return next((c for c in found.centres if c.role == "dr"), None) if found is not None else None


def _age(now: datetime.datetime, moment: datetime.datetime) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    days, rest = divmod(seconds, 86400)
    return f"{days}d{rest // 3600}h" if days else f"{rest // 3600}h{rest % 3600 // 60}m" if rest >= 3600 else f"{rest // 60}m{rest % 60}s"


def _span(seconds: float) -> str:
    """7776000 → ``90d``, 900 → ``15m``: a duration as recovery plans write them."""
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def _limit(text: str | None, default: float) -> float:
    return float(duration_seconds(text)) if text else default


def _drill_reason(group: ProtectionGroup | None, last: datetime.datetime | None, now: datetime.datetime, every: float) -> Reason | None:
    written = group.drill_every if group is not None and group.drill_every else f"{_span(every)} (settings.dr.drill_every)"
    if last is None:
        return Reason("drill", f"never drilled successfully (drill_every {written}): govcloud drill run")
    if (now - last).total_seconds() > every:
        return Reason("drill", f"last successful drill {_age(now, last)} ago, at {last.isoformat(timespec='seconds')}, "
                               f"is older than drill_every {written}")
    return None


def _replica_reasons(vms: Sequence[DrVmFact], newest: Mapping[tuple[str, int], datetime.datetime], now: datetime.datetime,
                     rpo: float) -> list[Reason]:
    reasons = []
    for vm in vms:
        taken = newest.get((vm.ticket, vm.idx))
        if taken is None:
            reasons.append(Reason("replica", f"{vm.name} has no ready replica in the DR region (govcloud dr replicate)", vm.tenant))
        elif (now - taken).total_seconds() > rpo:
            reasons.append(Reason("replica", f"{vm.name}'s newest replica is {_age(now, taken)} old, older than its RPO "
                                             f"{_span(rpo)}", vm.tenant))
    return reasons


def _reservation_reasons(vms: Sequence[DrVmFact], need: Mapping[str, Resources], reserved: Mapping[tuple[str, str, str], Resources],
                         dr: Centre) -> list[Reason]:
    """A ticket's ``dr`` line must hold the vCPUs and RAM of all its ``dr`` VMs outside the DR centre (``need``)."""
    mine: dict[str, list[DrVmFact]] = {}
    for vm in vms:
        mine.setdefault(vm.ticket, []).append(vm)
    reasons = []
    for ticket, its in sorted(mine.items()):
        line, size = reserved.get((ticket, its[0].cloud, dr.id)), need[ticket]
        names = ", ".join(v.name for v in its)
        if line is None:
            reasons.append(Reason("reservation", f"{names}: ticket {ticket} has no reservation in {dr.id} (ledger)", its[0].tenant))
        elif line.vcpus < size.vcpus or line.ram_mb < size.ram_mb:
            reasons.append(Reason("reservation", f"{names}: ticket {ticket}'s reservation in {dr.id} ({line.vcpus} vCPU, "
                                                 f"{line.ram_mb} MiB) no longer covers its dr VMs ({size.vcpus} vCPU, {size.ram_mb} MiB)",
                                  its[0].tenant))
    return reasons


def _capacity_reason(dr: Centre, held: Resources | None) -> Reason | None:
    room = dr.allocatable()
    if held is None or (held.vcpus <= room.vcpus and held.ram_mb <= room.ram_mb):
        return None
    return Reason("capacity", f"{dr.id} holds {held.vcpus} vCPU, {held.ram_mb} MiB of reservations and VMs (ledger) but can hand "
                              f"out only {room.vcpus} vCPU, {room.ram_mb} MiB (topology: capacity x overcommit)")


def _until(last: datetime.datetime | None, every: float, vms: Sequence[DrVmFact], newest: Mapping[tuple[str, int], datetime.datetime],
           rpo: float) -> datetime.datetime | None:
    """When a ready plan's drill or first replica grows too old, the facts staying as they are."""
    if last is None:
        return None
    moments = [last + datetime.timedelta(seconds=every)]
    moments += [taken + datetime.timedelta(seconds=rpo) for v in vms if (taken := newest.get((v.ticket, v.idx))) is not None]
    return min(moments)


def capacity_verdicts(topology: Topology, held: Mapping[tuple[str, str], Resources]) -> tuple[tuple[str, bool], ...]:
    """(cloud, its DR centre covers what the ledger holds there) for every cloud with a DR centre: all of
    ``held`` that the verdicts depend on (the exporter reuses them while these stay the same)."""
    result = []
    for cloud in topology.clouds:
        dr = _dr_centre(topology, cloud.id)
        if dr is not None:
            result.append((cloud.id, _capacity_reason(dr, held.get((cloud.id, dr.id))) is None))
    return tuple(result)


def plan_readiness(*, plans: RecoveryPlans, topology: Topology, vms: Sequence[DrVmFact],
                   newest: Mapping[tuple[str, int], datetime.datetime], drills: Mapping[tuple[str, str], datetime.datetime],
                   reserved: Mapping[tuple[str, str, str], Resources], held: Mapping[tuple[str, str], Resources],
                   now: datetime.datetime, drill_every: float, rpo: float) -> list[Readiness]:
    """Every plan's readiness, by cloud then recovery order.

    ``vms``: the ``dr`` VMs of live managed tickets; ``newest``: (ticket, idx) → taken_at of its newest ready
    replica; ``drills``: (cloud, group) → finished_at of its last successful drill; ``reserved``: (ticket,
    cloud, centre) → its ``dr`` ledger line(s); ``held``: (cloud, centre) → everything the ledger holds
    there; ``drill_every``, ``rpo``: seconds, the defaults of groups that give none."""
    result = []
    by_cloud: dict[str, list[DrVmFact]] = {}
    for vm in vms:
        by_cloud.setdefault(vm.cloud, []).append(vm)
    clouds = sorted(set(plans.groups) | set(by_cloud))
    for cloud in clouds:
        dr = _dr_centre(topology, cloud)
        groups = plans.of(cloud)
        named = {ref: g.name for g in groups for ref in g.systems}
        outside = [v for v in by_cloud.get(cloud, []) if dr is not None and v.centre != dr.id]
        by_group: dict[str, list[DrVmFact]] = {}
        need: dict[str, Resources] = {}
        for vm in outside:
            by_group.setdefault(named.get(f"{vm.tenant}/{vm.system}", UNPLANNED), []).append(vm)
            need[vm.ticket] = need.get(vm.ticket, Resources()) + vm.size
        capacity = _capacity_reason(dr, held.get((cloud, dr.id))) if dr is not None else None
        entries: list[tuple[str, ProtectionGroup | None]] = [(g.name, g) for g in groups]
        if UNPLANNED in by_group and UNPLANNED not in named.values():
            entries.append((UNPLANNED, None))
        for name, group in entries:
            mine = by_group.get(name, [])
            every = _limit(group.drill_every if group else None, drill_every)
            limit = _limit(group.rpo if group else None, rpo)
            last = drills.get((cloud, name))
            reasons = [r for r in [_drill_reason(group, last, now, every)] if r is not None]
            reasons += _replica_reasons(mine, newest, now, limit)
            if dr is not None and mine:
                reasons += _reservation_reasons(mine, need, reserved, dr)
                if capacity is not None:
                    reasons.append(capacity)
            tenants = frozenset({ref.split("/")[0] for ref in (group.systems if group else ())} | {v.tenant for v in mine})
            result.append(Readiness(cloud, name, tuple(reasons), every, limit, last, tuple(v.name for v in mine), tenants,
                                    _until(last, every, mine, newest, limit) if not reasons else None))
    return result


def replica_ages(*, plans: RecoveryPlans, topology: Topology, vms: Sequence[DrVmFact],
                 newest: Mapping[tuple[str, int], datetime.datetime], now: datetime.datetime, rpo: float) -> list[ReplicaAge]:
    """Per (cloud, tenant, system) with ``dr`` VMs outside the DR centre: the age of the oldest newest replica
    (``inf`` when a VM has none) and the system's RPO."""
    limits = {(cloud, ref): _limit(g.rpo, rpo) for cloud, groups in plans.groups.items() for g in groups for ref in g.systems}
    centres = {cloud: _dr_centre(topology, cloud) for cloud in {v.cloud for v in vms}}
    oldest: dict[tuple[str, str, str], datetime.datetime | None] = {}
    for vm in vms:
        dr = centres[vm.cloud]
        if dr is None or vm.centre == dr.id:
            continue
        taken = newest.get((vm.ticket, vm.idx))
        key = (vm.cloud, vm.tenant, vm.system)
        if key not in oldest:
            oldest[key] = taken
        elif taken is None or (seen := oldest[key]) is None:
            oldest[key] = None
        else:
            oldest[key] = min(seen, taken)
    return [ReplicaAge(c, t, s, float("inf") if at is None else (now - at).total_seconds(), limits.get((c, f"{t}/{s}"), rpo), at)
            for (c, t, s), at in sorted(oldest.items())]
