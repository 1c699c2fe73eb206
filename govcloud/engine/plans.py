"""Approved plans as stored with their ticket (JSON) and back."""

from __future__ import annotations

from typing import Any

from govcloud.model.resources import Resources
from govcloud.planner.placement import Reservation, VmPlacement
from govcloud.store.tickets import TicketRow


def _vm(data: dict[str, Any]) -> VmPlacement:
    return VmPlacement(**{**data, "size": Resources(**data["size"])})


def placements(row: TicketRow) -> list[VmPlacement]:
    """The VMs of the approved plan, as the planner produced them."""
    return [_vm(vm) for vm in (row.plan or {}).get("vms", [])]


def replaced(row: TicketRow) -> list[VmPlacement]:
    """For a resize: the VMs as they were before."""
    return [_vm(vm) for vm in (row.plan or {}).get("replaces", [])]


def reservations(row: TicketRow) -> list[Reservation]:
    """The DR reservations of the approved plan."""
    return [Reservation(**{**r, "resources": Resources(**r["resources"])}) for r in (row.plan or {}).get("reservations", [])]
