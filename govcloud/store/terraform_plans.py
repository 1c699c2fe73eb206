"""Saved Terraform plans in store terms: one row per ticket x Terraform cloud (the newest plan).

``govcloud plan`` writes the row (a re-plan replaces it and clears its approvals); approval fills
``approved_by`` (and ``second_approved_by`` when the plan replaces or destroys anything); the apply that
consumed the plan fills ``applied_run``. ``members`` gives the other tickets of a workspace with the
instances their plans rendered, so a workspace is rendered the same way by whoever renders it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from govcloud.store.tables import terraform_plans, tickets


@dataclass(frozen=True)
class TfPlanRow:
    """A saved plan of one ticket in one Terraform cloud, and who signed it off."""

    ticket: str
    cloud: str
    tenant: str
    workspace: str
    run: str
    planfile: str
    sha256: str
    inputs_sha256: str
    ticket_hash: str
    state_lineage: str
    state_serial: int
    instances: tuple[dict[str, Any], ...]
    add: int
    change: int
    destroy: int
    flagged: tuple[str, ...]
    planned_by: str
    planned_at: str
    approved_by: str | None = None
    approved_at: str | None = None
    second_approved_by: str | None = None
    second_approved_at: str | None = None
    applied_run: str | None = None
    applied_at: str | None = None

    @property
    def needs_second_approver(self) -> bool:
        return bool(self.flagged)

    @property
    def signed_off(self) -> bool:
        """Approved, and approved twice when it replaces or destroys anything."""
        return self.approved_by is not None and (not self.flagged or self.second_approved_by is not None)


def _row(r: Any) -> TfPlanRow:
    data = dict(r._mapping)
    data["instances"] = tuple(json.loads(data["instances"]))
    data["flagged"] = tuple(json.loads(data["flagged"]))
    return TfPlanRow(**data)


def save(conn: sa.Connection, plan: TfPlanRow) -> None:
    """Store a new plan for ticket x cloud, replacing (and un-approving) the previous one."""
    values = dataclasses.asdict(plan)
    values["instances"] = json.dumps(list(plan.instances), ensure_ascii=False, sort_keys=True)
    values["flagged"] = json.dumps(list(plan.flagged))
    conn.execute(terraform_plans.delete().where(terraform_plans.c.ticket == plan.ticket, terraform_plans.c.cloud == plan.cloud))
    conn.execute(terraform_plans.insert().values(**values))


def of_ticket(conn: sa.Connection, ticket_id: str) -> list[TfPlanRow]:
    query = sa.select(terraform_plans).where(terraform_plans.c.ticket == ticket_id).order_by(terraform_plans.c.cloud)
    return [_row(r) for r in conn.execute(query)]


def update(conn: sa.Connection, ticket_id: str, cloud: str, **fields: Any) -> None:
    conn.execute(terraform_plans.update().where(terraform_plans.c.ticket == ticket_id, terraform_plans.c.cloud == cloud).values(**fields))


def delete(conn: sa.Connection, ticket_id: str) -> None:
    conn.execute(terraform_plans.delete().where(terraform_plans.c.ticket == ticket_id))


def members(conn: sa.Connection, tenant: str | None, cloud: str, states: Sequence[str]) -> list[TfPlanRow]:
    """Plans in ``cloud`` whose ticket is in one of ``states``: of one tenant (a workspace's members), or of all."""
    query = (sa.select(terraform_plans).join(tickets, tickets.c.id == terraform_plans.c.ticket)
             .where(terraform_plans.c.cloud == cloud, tickets.c.state.in_(list(states)))
             .order_by(terraform_plans.c.ticket))
    if tenant is not None:
        query = query.where(terraform_plans.c.tenant == tenant)
    return [_row(r) for r in conn.execute(query)]
