"""Users, their roles, and the auto-approval rules (``users.yaml`` next to tenants.yaml).

Management and operation are separate: a *requester* (a department's staff) submits and sees only
its own tenants' tickets; an *approver* (the e-government office) approves or rejects; an
*operator* (the operating company) plans, applies and retires; an *admin* may do everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from govcloud.model.schema import NOWHERE, NonEmpty, Range, Slug, Where

Id = Annotated[str, Slug()]

SYSTEM_ACTOR = "system"
"""Reserved: the actor govcloud records for its own automatic decisions (auto-approval); no user may be called so."""
Role = Literal["requester", "approver", "operator", "admin"]


@dataclass(frozen=True)
class User:
    """A person who acts through the CLI (``--as``) or whose name a ticket carries (``requester``)."""

    id: Id
    name: Annotated[str, NonEmpty()]
    role: Role
    tenants: tuple[Id, ...] = ()
    email: str | None = None
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class AutoApprovalRule:
    """A ticket at or below every bound is approved by ``system``, recording this rule's name."""

    name: Id
    max_vms: Annotated[int, Range(minimum=0)]
    max_vcpus: Annotated[int, Range(minimum=0)]
    max_ram_mb: Annotated[int, Range(minimum=0)]
    max_lease_days: Annotated[int, Range(minimum=1)]
    protection: tuple[Literal["none", "ha", "dr"], ...] = ("none", "ha", "dr")
    tenants: tuple[Id, ...] = ()
    """Empty means every tenant."""
    where: Where = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True)
class Users:
    """``users.yaml``."""

    version: Literal[1]
    users: tuple[User, ...]
    auto_approval: tuple[AutoApprovalRule, ...] = ()
    where: Where = field(default=NOWHERE, compare=False, repr=False)

    def get(self, user_id: str) -> User | None:
        return next((u for u in self.users if u.id == user_id), None)
