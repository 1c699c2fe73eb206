"""Leases: every create ticket ends on its ``expires`` date. The daemon warns ``warn_days`` before
(audit record, and the exporter's expiring-lease gauge) and retires the ticket the day after — the
same retirement as ``govcloud ticket retire``, recorded with the reason ``lease expired``.

Adopted (observe-only) tickets are warned about but never retired: govcloud does not own their
servers. Tickets stored before the lease column existed get it from their source on first look.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field

from govcloud.engine.context import EngineContext
from govcloud.engine.provision import retire_row
from govcloud.engine.ticket_base import Outcome, ticket_of
from govcloud.errors import GovcloudError
from govcloud.store import tickets as rows
from govcloud.store.tickets import TicketRow

HOLDING = ("active", "config-failed")
"""States in which a ticket holds servers that a lease end retires."""


@dataclass(frozen=True)
class LeaseReport:
    warned: tuple[str, ...] = ()
    retired: tuple[Outcome, ...] = ()
    errors: tuple[str, ...] = field(default_factory=tuple)


def lease_end(ctx: EngineContext, row: TicketRow) -> datetime.date | None:
    """The ticket's last day, filling the column from the source when it is missing."""
    if row.expires:
        return datetime.date.fromisoformat(row.expires)
    expires = ticket_of(row).expires
    if expires is not None:
        with ctx.store.transaction() as conn:
            rows.set_fields(conn, row.id, expires=expires.isoformat())
    return expires


def check(ctx: EngineContext, *, warn_days: int, actor: str = "system", stop: Callable[[], bool] = lambda: False) -> LeaseReport:
    """Warn about leases ending within ``warn_days`` and retire those that ended before today."""
    today = ctx.today()
    with ctx.store.transaction() as conn:
        candidates = [r for r in rows.listing(conn, states=HOLDING) if r.kind == "create"]
    warned, retired, errors = [], [], []
    for row in candidates:
        if stop():
            break
        end = lease_end(ctx, row)
        if end is None:
            continue
        if end < today and row.mode == "managed":
            try:
                retired.append(retire_row(ctx, row, actor, reason=f"lease expired on {end.isoformat()}"))
            except GovcloudError as exc:
                errors.append(f"{row.id}: {exc}")
        elif (end - today).days <= warn_days and row.lease_warned_at is None:
            _warn(ctx, row, end, actor)
            warned.append(row.id)
    return LeaseReport(tuple(warned), tuple(retired), tuple(errors))


def _warn(ctx: EngineContext, row: TicketRow, end: datetime.date, actor: str) -> None:
    with ctx.store.transaction() as conn:
        rows.set_fields(conn, row.id, lease_warned_at=ctx.now())
        ctx.store.audit.append(actor, "ticket.lease-expiring", f"ticket:{row.id}",
                               {"expires": end.isoformat(), "days_left": (end - ctx.today()).days, "tenant": row.tenant,
                                "action": "the daemon retires it the day after"}, connection=conn)
