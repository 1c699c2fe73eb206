"""The ticket state machine: every state, the moves allowed between them, and the named sets of states
that the store, engine, daemon, planner and exporter ask about. Written once here so that they agree.

``store/tickets.py``'s ``move`` refuses a move not in ``TRANSITIONS``; the sets below are what the rest
of govcloud means by "open", "live", "movable" and "to work on".
"""

from __future__ import annotations

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "submitted": ("approved", "rejected", "quarantined"),
    "approved": ("provisioning", "failed", "quarantined", "retiring"),
    # → approved: terraform refused a saved plan as stale before changing anything (re-plan, approve again)
    "provisioning": ("active", "configuring", "failed", "quarantined", "provisioning", "approved"),
    "configuring": ("active", "config-failed", "failed", "configuring"),
    "config-failed": ("configuring", "retiring"),
    "active": ("retiring", "configuring"),
    "failed": ("approved", "retiring", "retired"),
    "quarantined": ("submitted", "retired"),
    "retiring": ("retired", "retiring"),
    "rejected": (),
    "retired": (),
}
"""state → the states it may move to (a state listed in its own tuple may be re-entered: a retry)."""

STATES = tuple(TRANSITIONS)
FINAL = tuple(s for s, moves in TRANSITIONS.items() if not moves)
"""``rejected`` and ``retired``: nothing moves a ticket out of them."""

OPEN = ("submitted", "approved", "provisioning", "configuring", "config-failed", "active", "retiring", "failed", "quarantined")
"""States in which a ticket still holds its id and its content (an identical one is refused)."""

UNSETTLED = tuple(s for s in OPEN if s != "active")
"""Open states a ticket should not stay in for long (``active`` is where tickets live): the exporter
reports the oldest change per state of these. Deliberately ``OPEN`` without ``active``."""

TO_WORK_ON = ("approved", "provisioning", "configuring", "retiring")
"""States the engine is working on: ``apply`` and the daemon pick these up; reconcile counts their
servers neither as drift nor as orphans."""

HOLDING = ("approved", "provisioning", "configuring", "config-failed", "active")
"""States whose ticket holds (or is about to hold) its resources: its VMs belong in its Terraform
workspace and its lease counts."""

LIVE = ("active", "config-failed")
"""States whose VMs must exist: reconcile compares them with what the cloud has."""

MOVABLE = ("active", "configuring", "config-failed")
"""States whose VMs exist and are govcloud's to fail over (with ``mode`` managed: adopted,
observe-only tickets are never moved)."""


def allowed(current: str, new: str) -> bool:
    """Whether a ticket in ``current`` may move to ``new``."""
    return new in TRANSITIONS.get(current, ())
