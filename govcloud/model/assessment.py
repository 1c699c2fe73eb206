"""Facts the service report reads, as the store hands them to the planner (which may not import the store):
a ticket's timestamps, a centre's health changes, a failover run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TicketTimes:
    """The moments of one ticket's life that lead times are made of."""

    id: str
    tenant: str
    system: str
    kind: str
    state: str
    submitted_at: str
    updated_at: str
    approved_at: str | None = None
    active_at: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class HealthChange:
    """A centre's recorded state changed (the ``centre.health`` audit record the health watch writes)."""

    at: str
    cloud: str
    centre: str
    before: str | None
    after: str


@dataclass(frozen=True)
class FailoverRun:
    """One failover (or drill) of a centre: when it started and ended, what moved. RTO = end − start."""

    cloud: str
    centre: str
    started_at: str
    ended_at: str | None
    moved: int = 0
    failed: int = 0
    kind: str = "failover"
    """The journal's run kind: ``failover``, ``migration``, ``failback``, ``dr-activation`` or ``drill``."""
    state: str = ""
    """How it ended (``finished``, ``failed``, ``cancelled``; a drill ``succeeded`` or ``failed``), or new/running."""
    rto_seconds: float | None = None
    """The recovery time the run measured itself (a drill: from its start until its copies were up and its hook
    had run, without the clean-up after); None: the report takes end − start."""


@dataclass(frozen=True)
class VmFacts:
    """What the idle report needs of one VM: where it is, its size, who owns it."""

    name: str
    ticket: str
    tenant: str
    system: str
    cloud: str
    centre: str
    address: str | None
    flavor: str | None
    vcpus: int
    ram_mb: int
    disk_gb: int
    active_at: str | None = None
    requester: str = ""
    contact: str = ""
