"""The assessment reports (issue 15): read the store for the tenants the acting user may see
(``reads.report_scope``), hand the rows to the planners, return a ``Report`` the CLI prints.

The rates file is read only here and only for the reports that need it: a missing or broken rates.yaml
is a ConfigError naming it (exit 2) for ``usage`` and ``service``, and nothing else in govcloud notices.
"""

from __future__ import annotations

from govcloud.engine.context import EngineContext
from govcloud.engine.reads import report_scope
from govcloud.model.rates import Rates, load_rates
from govcloud.planner.chargeback import Names, usage_report
from govcloud.planner.periods import Period
from govcloud.planner.reports import Report
from govcloud.planner.service import service_report
from govcloud.store import facts, report_reads, usage_history


def rates(ctx: EngineContext) -> Rates:
    data = ctx.settings.data
    return load_rates(data.resolve(data.rates), root=data.root, topology=ctx.state.topology)


def names(ctx: EngineContext) -> Names:
    tenants = ctx.state.tenants
    return Names({t.id: t.name for t in tenants.values()}, {(t.id, s.id): s.name for t in tenants.values() for s in t.systems})


def usage(ctx: EngineContext, period: Period, *, tenant: str | None = None) -> Report:
    """Resource-hours, cost, quota held against used and DR reservations of ``period``."""
    scope = report_scope(ctx, tenant)
    card = rates(ctx)
    with ctx.store.transaction() as conn:
        points = usage_history.points(conn, before=period.end.isoformat(timespec="microseconds"), tenants=scope)
    return usage_report(points, period=period, now=ctx.clock().timestamp(), rates=card, names=names(ctx))


def service(ctx: EngineContext, period: Period, *, tenant: str | None = None) -> Report:
    """Lead times, failed and quarantined tickets (the acting user's tenants), centre availability and
    failover runs (shared infrastructure, shown to every acting user as ``govcloud status`` is)."""
    scope = report_scope(ctx, tenant)
    sla = rates(ctx).sla
    since, until = period.start.isoformat(timespec="microseconds"), period.end.isoformat(timespec="microseconds")
    with ctx.store.transaction() as conn:
        tickets = report_reads.ticket_times(conn, since=since, until=until, tenants=scope)
        health = report_reads.health_changes(conn, until=until)
        runs = report_reads.failover_runs(conn, since=since, until=until)
        current = {(h.cloud, h.centre): (h.state, h.since) for h in facts.health(conn)}
    centres = [(c.id, centre.id) for c in ctx.state.topology.clouds for centre in c.centres]
    return service_report(tickets, health=health, current=current, centres=centres, runs=runs, period=period,
                          now=ctx.clock().timestamp(), sla=sla, names=names(ctx).tenants)
