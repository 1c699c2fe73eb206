"""The assessment reports (issue 15): read the store for the tenants the acting user may see
(``reads.report_scope``), hand the rows to the planners, return a ``Report`` the CLI prints.

The rates file is read only here and only for the reports that need it: a missing or broken rates.yaml
is a ConfigError naming it (exit 2) for ``usage`` and ``service``, and nothing else in govcloud notices.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from govcloud.drivers.prometheus import PrometheusClient
from govcloud.engine.context import EngineContext
from govcloud.engine.reads import report_scope
from govcloud.model.assessment import VmFacts
from govcloud.model.rates import Rates, load_rates
from govcloud.planner.chargeback import Names, usage_report
from govcloud.planner.idle import idle_report
from govcloud.planner.periods import Period, seconds
from govcloud.planner.reports import Report
from govcloud.planner.service import service_report
from govcloud.store import facts, report_reads, usage_history
from govcloud.store import tickets as rows

CPU_QUERY = ('100 * (1 - sum by (instance) (rate(node_cpu_seconds_total{{mode="idle"}}[{window}]))'
             ' / sum by (instance) (rate(node_cpu_seconds_total[{window}])))')
"""Share of CPU time not idle. Idle time over *all* CPU time, not over wall time: where a series begins (a VM
just booted, a new scrape target) both rates are underestimated alike and their ratio stays right."""
MEMORY_QUERY = "100 * (1 - sum by (instance) (node_memory_MemAvailable_bytes) / sum by (instance) (node_memory_MemTotal_bytes))"


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


def _contact(ctx: EngineContext, tenant: str) -> str:
    found = ctx.state.tenants.get(tenant)
    if found is None or not found.contacts:
        return ""
    first = found.contacts[0]
    return " ".join(part for part in (first.name, first.phone or first.email or "") if part)


def vm_facts(ctx: EngineContext, scope: tuple[str, ...] | None) -> list[VmFacts]:
    """The VMs of ``scope`` with their ticket's requester and activation, and the department's contact."""
    with ctx.store.transaction() as conn:
        vms = [v for v in rows.vms_of(conn) if scope is None or v.tenant in scope]
        owners = {t.id: t for t in rows.listing(conn, tenants=scope)}
    found = []
    for vm in vms:
        ticket = owners.get(vm.ticket)
        found.append(VmFacts(vm.name, vm.ticket, vm.tenant, vm.system, vm.cloud, vm.centre, vm.address, vm.flavor, vm.vcpus, vm.ram_mb,
                             vm.disk_gb, active_at=ticket.active_at if ticket else None, requester=ticket.submitted_by if ticket else "",
                             contact=_contact(ctx, vm.tenant)))
    return found


def _by_address(series: list[Any]) -> dict[str, list[tuple[float, float]]]:
    """Series keyed by the host part of their ``instance`` label (the scrape target, ``address:port``)."""
    found: dict[str, list[tuple[float, float]]] = {}
    for item in series:
        instance = item.labels.get("instance", "")
        host = instance.rsplit(":", 1)[0].strip("[]") if ":" in instance else instance
        found.setdefault(host, []).extend(item.samples)
    return found


def idle(ctx: EngineContext, period: Period, *, tenant: str | None = None, prometheus: str | None = None, step: float = 3600.0,
         cpu_percent: float | None = None, memory_percent: float | None = None, days: int | None = None) -> Report:
    """Idle VMs of ``period`` by their node exporters' CPU and memory use (Prometheus at ``prometheus``,
    default the monitoring role's ``GOVCLOUD_PROMETHEUS_URL``); the thresholds default to rates.yaml's."""
    scope = report_scope(ctx, tenant)
    card = rates(ctx)
    changes: dict[str, Any] = {k: v for k, v in {"cpu_percent": cpu_percent, "memory_percent": memory_percent, "days": days}.items() if v is not None}
    rule = dataclasses.replace(card.idle, **changes)
    vms = vm_facts(ctx, scope)
    now = ctx.clock().timestamp()
    start, end = period.start.timestamp(), min(period.end.timestamp(), now)
    if vms and all(v.active_at for v in vms):  # nothing to ask for before the first of them was running
        start = max(start, min(seconds(v.active_at or "") for v in vms) - step)
    client = PrometheusClient(prometheus or ctx.settings.configure.prometheus_url)
    window = f"{max(step, 15.0):g}s"  # the mean over each step (a 1 s scrape in tests: at least 15 samples)
    cpu = _by_address(client.query_range(CPU_QUERY.format(window=window), start=start, end=end, step=step)) if vms else {}
    memory = _by_address(client.query_range(MEMORY_QUERY, start=start, end=end, step=step)) if vms else {}
    return idle_report(vms, cpu, memory, period=period, now=now, rule=rule, rates=card, names=names(ctx).tenants)
