"""Idle VMs (issue 15, item 3): from real utilisation, not guesses. Prometheus' node exporter on each VM
gives CPU and memory use; a VM is idle on a day when that day's mean CPU use and mean memory use are both
below the rule's thresholds (rates.yaml ``idle``), and listed when it was idle on at least ``days`` days of
the period — with what it cost over the period, its ticket, requester and the department's contact.
VMs Prometheus has no data for are listed apart: their use is unknown, not low.

Pure: VM facts, per-address samples and the rule in; a ``Report`` out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from govcloud.model.assessment import VmFacts
from govcloud.model.rates import IdleRule, Rates
from govcloud.model.resources import Resources
from govcloud.planner.chargeback import resource_hours
from govcloud.planner.periods import Period, seconds
from govcloud.planner.reports import Chart, Column, Report, Section, Series

Samples = Sequence[tuple[float, float]]
TOP_SPENDERS = 15

IDLE_COLUMNS = (
    Column("vm", "虚拟机"), Column("department", "部门"), Column("system", "业务系统"), Column("ticket", "工单"),
    Column("requester", "申请人"), Column("contact", "部门联系人"), Column("cloud", "云"), Column("centre", "中心"), Column("flavor", "规格"),
    Column("cpu_percent", "CPU平均使用率(%)", "number"), Column("memory_percent", "内存平均使用率(%)", "number"),
    Column("idle_days", "闲置天数", "int"), Column("measured_days", "有数据天数", "int"), Column("cost", "期间费用", "money"),
)
UNKNOWN_COLUMNS = (Column("vm", "虚拟机"), Column("department", "部门"), Column("ticket", "工单"), Column("cloud", "云"),
                   Column("address", "地址"), Column("cost", "期间费用", "money"))


def daily_means(samples: Samples, start: float, days: int) -> list[float | None]:
    """Mean of the samples of each day from ``start`` (None: no sample that day)."""
    sums, counts = [0.0] * days, [0] * days
    for at, value in samples:
        day = int((at - start) // 86400)
        if 0 <= day < days:
            sums[day] += value
            counts[day] += 1
    return [s / c if c else None for s, c in zip(sums, counts, strict=True)]


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _cost(vm: VmFacts, rates: Rates, period: Period, now: float) -> float:
    start = max(period.start.timestamp(), seconds(vm.active_at) if vm.active_at else period.start.timestamp())
    end = min(period.end.timestamp(), now)
    size = Resources(1, vm.vcpus, vm.ram_mb, vm.disk_gb)
    return round(rates.card(vm.cloud).cost(resource_hours(size, max(0.0, end - start))), 2)


def idle_report(vms: Sequence[VmFacts], cpu: Mapping[str, Samples], memory: Mapping[str, Samples], *, period: Period, now: float,
                rule: IdleRule, rates: Rates, names: Mapping[str, str]) -> Report:
    """``cpu`` and ``memory``: percent samples by VM address (the node exporter's scrape target host)."""
    start, days = period.start.timestamp(), len(period.days())
    idle, unknown = [], []
    for vm in vms:
        cpu_days = daily_means(cpu.get(vm.address or "", ()), start, days)
        memory_days = daily_means(memory.get(vm.address or "", ()), start, days)
        measured = [(c, m) for c, m in zip(cpu_days, memory_days, strict=True) if c is not None and m is not None]
        base = {"vm": vm.name, "department": names.get(vm.tenant, vm.tenant), "tenant": vm.tenant, "ticket": vm.ticket, "cloud": vm.cloud,
                "cost": _cost(vm, rates, period, now)}
        if not measured:
            unknown.append({**base, "address": vm.address or ""})
            continue
        idle_days = sum(1 for c, m in measured if c < rule.cpu_percent and m < rule.memory_percent)
        if idle_days >= rule.days:
            idle.append({**base, "system": vm.system, "requester": vm.requester, "contact": vm.contact, "centre": vm.centre,
                         "flavor": vm.flavor or "", "cpu_percent": round(_mean([c for c, _ in measured]) or 0.0, 2),
                         "memory_percent": round(_mean([m for _, m in measured]) or 0.0, 2), "idle_days": idle_days,
                         "measured_days": len(measured)})
    idle.sort(key=lambda r: (-float(r["cost"]), str(r["vm"])))  # type: ignore[arg-type]
    top = idle[:TOP_SPENDERS]
    chart = Chart("idle_spenders", "闲置虚拟机期间费用（前 15）", "bars", [str(r["vm"]) for r in top],
                  [Series("期间费用", [float(r["cost"]) for r in top])], rates.currency)  # type: ignore[arg-type]
    notes = [f"闲置：某日 CPU 平均使用率 < {rule.cpu_percent:g}% 且内存平均使用率 < {rule.memory_percent:g}%，"
             f"期间闲置 ≥ {rule.days} 天（数据来自各虚拟机的 node exporter，经 Prometheus）。"]
    return Report(kind="idle", title=f"闲置虚拟机 {period.label}", period=period.label, currency=rates.currency, notes=notes,
                  sections=[Section("idle", "闲置虚拟机", IDLE_COLUMNS, idle), Section("unmonitored", "无监控数据", UNKNOWN_COLUMNS, unknown)],
                  charts=[chart])
