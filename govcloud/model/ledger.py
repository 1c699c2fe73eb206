"""A line of the quota ledger: what one ticket holds in one centre. Shared by store and planner."""

from __future__ import annotations

from dataclasses import dataclass

from govcloud.model.resources import Resources


@dataclass(frozen=True)
class LedgerLine:
    """One ledger entry: resources a ticket holds in one centre (``dr`` lines are failover room)."""

    ticket: str
    tenant: str
    system: str
    cloud: str
    centre: str
    resources: Resources
    state: str  # reserved | committed
    kind: str = "vm"  # vm | dr
