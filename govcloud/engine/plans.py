"""A ticket row's approved plan, typed: thin accessors over the one codec (``planner/stored.py``)."""

from __future__ import annotations

from govcloud.planner.placement import Reservation, VmPlacement
from govcloud.planner.stored import decode
from govcloud.store.tickets import TicketRow


def placements(row: TicketRow) -> list[VmPlacement]:
    """The VMs of the approved plan, as the planner produced them."""
    return list(decode(row.plan).vms)


def replaced(row: TicketRow) -> list[VmPlacement]:
    """For a resize: the VMs as they were before."""
    return list(decode(row.plan).replaces)


def reservations(row: TicketRow) -> list[Reservation]:
    """The DR reservations of the approved plan."""
    return list(decode(row.plan).reservations)
