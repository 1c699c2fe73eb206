"""The two shapes of the desired state: ``Parsed`` (what could be read, broken parts included) and
``DesiredState`` (checked and cross-referenced). Their own module so that the loader (state.py) and the
checks (validate*.py) both import them and neither imports the other's caller: the loader calls the
checks, the checks never call the loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from govcloud.errors import Problem
from govcloud.model.quotas import QuotaFile, QuotaSet
from govcloud.model.recovery import RecoveryPlanFile, RecoveryPlans
from govcloud.model.tenants import Tenant, Tenants
from govcloud.model.tickets import Ticket
from govcloud.model.topology import Topology
from govcloud.model.users import Users


@dataclass(frozen=True)
class DesiredState:
    """Everything the admins and departments wrote, checked and cross-referenced."""

    topology: Topology
    tenants: dict[str, Tenant]
    quotas: QuotaSet
    tickets: tuple[Ticket, ...] = ()
    users: Users = field(default_factory=lambda: Users(version=1, users=()))
    recovery: RecoveryPlans = field(default_factory=RecoveryPlans)


@dataclass
class Parsed:
    """What could be read, even when some of it was broken: cross-checks run on the readable part."""

    topology: Topology | None = None
    tenants: Tenants | None = None
    quota_files: list[QuotaFile] = field(default_factory=list)
    users: Users | None = None
    tickets: list[Ticket] = field(default_factory=list)
    recovery_files: list[RecoveryPlanFile] = field(default_factory=list)
    roles: frozenset[str] | None = None
    """The role names of ``playbooks/roles`` (None: no such directory; hook roles are not checked)."""
    declared: dict[str, set[str]] = field(default_factory=dict)
    """Ids written in the files, including those of broken entries, so a broken tenant is not also
    reported as 'unknown tenant' by every quota that names it."""
    problems: list[Problem] = field(default_factory=list)

    def known(self, kind: str, value: str) -> bool:
        """Whether ``value`` was written as an id of ``kind`` — or cannot be checked because the file
        declaring that kind was unreadable (its own problem is reported; no knock-on errors)."""
        return kind not in self.declared or value in self.declared[kind]

    def declare(self, kind: str, values: Any) -> None:
        """Remember ids written in the files, whatever else is wrong with their entries."""
        self.declared.setdefault(kind, set()).update(str(v) for v in values)
