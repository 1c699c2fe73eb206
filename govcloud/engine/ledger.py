"""From a plan to ledger lines: one per centre the plan uses, plus the DR reservations."""

from __future__ import annotations

from govcloud.model.ledger import LedgerLine
from govcloud.model.resources import Resources
from govcloud.planner.placement import Plan
from govcloud.store.tickets import TicketRow


def ledger_lines(plan: Plan, row: TicketRow) -> list[LedgerLine]:
    """One line per centre the plan uses, plus the DR reservations."""
    _, per_centre = plan.demand()
    dr = {(r.cloud, r.centre): r.resources for r in plan.reservations}
    lines = []
    for (cloud, centre), resources in sorted(per_centre.items()):
        vm_part = resources - dr.get((cloud, centre), Resources())
        if any(vm_part.as_dict().values()):
            lines.append(LedgerLine(row.id, row.tenant, row.system, cloud, centre, vm_part, "reserved", "vm"))
        if (cloud, centre) in dr:
            lines.append(LedgerLine(row.id, row.tenant, row.system, cloud, centre, dr[(cloud, centre)], "reserved", "dr"))
    return lines
