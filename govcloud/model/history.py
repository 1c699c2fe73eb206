"""Usage history as change points: what the store records and the report planner integrates.

A ``Point`` says "from ``at`` on, this group holds ``amount``" — until the group's next point. A group is
one tenant × business system × cloud × centre × kind, where kind is ``vm`` (committed allocation),
``dr`` (committed failover room) or ``quota`` (the tenant's limit in a cloud; system and centre are
empty). A group that ends gets a point of zero. Shared by store (which writes and reads points) and
planner (which turns them into resource-hours): docs/reports.md, "Usage history".
"""

from __future__ import annotations

from dataclasses import dataclass

from govcloud.model.resources import Resources

KINDS = ("vm", "dr", "quota")


@dataclass(frozen=True, order=True)
class GroupKey:
    """What one series of points is about."""

    tenant: str
    system: str
    cloud: str
    centre: str
    kind: str


@dataclass(frozen=True)
class Point:
    """From ``at`` (ISO 8601, UTC) on, ``key`` holds ``amount``."""

    at: str
    key: GroupKey
    amount: Resources
