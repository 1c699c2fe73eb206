"""Recovery plans (``recovery/*.yaml``): per cloud, the protection groups a failover recovers in order.

SRM's recovery plan and masakari's segments, as data the operators write beside the inventory: a
group names business systems of tenants.yaml (``tenant/system``), has a priority 1–5 (1 first; a
protected system named by no group is recovered with priority 3, in the group ``unplanned``), may
``depends_on`` other groups (they are recovered first, whatever their priority), and may name a
post-recovery ``hook``: an Ansible role of ``playbooks/roles`` run on the group's recovered VMs (a
smoke check, moving a virtual IP, re-pointing DNS).

``rpo`` and ``drill_every`` are durations (``15m``, ``1h``, ``90d``) that are validated here and
read by the remote-DR work (issue 14): replication lag allowed (``failover/replicate.py``, readiness), and
how often a recovery drill is due (readiness, ``model/readiness.py``). Failover between the Guangzhou
centres does not use them.

Cross-checks (known clouds and systems, one plan per cloud, a system in one group, depends_on known
and acyclic, hook variables plain data) are in ``validate_recovery.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from govcloud.model.schema import NOWHERE, Constraint, NonEmpty, Range, Slug, Where

Id = Annotated[str, Slug()]

DEFAULT_PRIORITY = 3
"""The priority of a protected system no group names."""
UNPLANNED = "unplanned"
"""The name of the implicit group of protected systems no plan names."""

DURATION_RE = re.compile(r"([1-9][0-9]{0,5})(s|m|h|d)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """``90d`` → 7776000. Only for values the ``Duration`` constraint accepted."""
    match = DURATION_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class Duration(Constraint):
    """A whole number and one unit: ``30s``, ``15m``, ``1h``, ``90d``."""

    expected: str = "a duration: a whole number and one unit of s, m, h, d (e.g. 15m, 1h, 90d)"

    def check(self, value: Any) -> str | None:
        return None if DURATION_RE.fullmatch(str(value)) else "not a duration"


@dataclass(frozen=True)
class SystemRef(Constraint):
    """``tenant/system``: system ids are unique within a tenant only (``zwfw`` is in two tenants)."""

    expected: str = "tenant/system, both ids of tenants.yaml (e.g. gd-gat/hukou)"

    def check(self, value: Any) -> str | None:
        parts = str(value).split("/")
        return None if len(parts) == 2 and all(Slug().check(p) is None for p in parts) else "not tenant/system"


@dataclass(frozen=True)
class Hook:
    """An Ansible role run on the group's recovered VMs once they are ACTIVE."""

    role: Annotated[str, NonEmpty()]
    vars: dict[str, Any] = field(default_factory=dict)
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class ProtectionGroup:
    """Business systems recovered together, in one step of the plan."""

    name: Id
    systems: Annotated[tuple[Annotated[str, SystemRef()], ...], NonEmpty()]
    priority: Annotated[int, Range(minimum=1, maximum=5)] = DEFAULT_PRIORITY
    depends_on: tuple[Id, ...] = ()
    hook: Hook | None = None
    rpo: Annotated[str, Duration()] | None = None
    """Replication lag allowed (issue 14); validated, not used by same-city failover."""
    drill_every: Annotated[str, Duration()] | None = None
    """How often a recovery drill is due (issue 14): older than this, the plan is NOT READY (model/readiness.py)."""
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Emergency:
    """The e-government office's standing approval of a DR activation (issue 14), written into the plan
    beforehand by one of its approvers: a run waiting for approval counts as approved once it has waited
    ``auto_approve_after`` and ``when`` holds. ``both-centres-down``: every serving centre of the cloud is
    recorded ``down`` by the health watch (an operator's declaration alone is not enough)."""

    auto_approve_after: Annotated[str, Duration()]
    approver: Id
    """The approver (users.yaml, role approver) who wrote the rule; the run names the rule and this user."""
    when: Literal["both-centres-down"] = "both-centres-down"
    where: Where = field(default=NOWHERE, compare=False, repr=False)

    def describe(self) -> str:
        """How a run names the rule: file, line, what it says and who wrote it."""
        return (f"emergency rule {self.where.file}:{self.where.line} (auto_approve_after {self.auto_approve_after} when {self.when}, "
                f"written by approver {self.approver})")


@dataclass(frozen=True)
class RecoveryPlanFile:
    """One ``recovery/*.yaml`` file: the plan of one cloud."""

    version: Literal[1]
    cloud: Id
    groups: tuple[ProtectionGroup, ...] = ()
    emergency: Emergency | None = None
    """Standing approval of a DR activation in this cloud (none: every activation waits for an approver)."""
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class RecoveryPlans:
    """Every cloud's protection groups, checked; ``ordered`` is the order a failover recovers them in."""

    groups: dict[str, tuple[ProtectionGroup, ...]] = field(default_factory=dict)
    """cloud id → its groups in recovery order (depends_on first, then priority, then name)."""
    emergency: dict[str, Emergency] = field(default_factory=dict)
    """cloud id → the emergency rule of its plan, when it has one (DR activation, issue 14)."""

    def of(self, cloud: str) -> tuple[ProtectionGroup, ...]:
        return self.groups.get(cloud, ())


def recovery_order(groups: tuple[ProtectionGroup, ...]) -> tuple[ProtectionGroup, ...]:
    """Groups in the order they are recovered: a group after all it depends on; among those ready, the
    lowest priority number first, then by name. Groups in a cycle (refused by validation) come last."""
    by_name = {g.name: g for g in groups}
    done: list[ProtectionGroup] = []
    left = dict(by_name)
    while left:
        ready = [g for g in left.values() if all(d in {x.name for x in done} or d not in by_name for d in g.depends_on)]
        if not ready:
            done.extend(sorted(left.values(), key=lambda g: (g.priority, g.name)))
            break
        first = min(ready, key=lambda g: (g.priority, g.name))
        done.append(first)
        del left[first.name]
    return tuple(done)
