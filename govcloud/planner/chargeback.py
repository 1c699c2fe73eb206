"""Showback / chargeback (issue 15, item 2): resource-hours and cost per department, business system and
cloud over a period, quota held against quota used, DR reservations priced on their own card.

**Pro-rating rule** (docs/reports.md): the history is a series of change points per group (model/history.py);
a point's amount holds from its moment until the group's next point. A period's resource-hours are the
integral of that step function over ``[start, min(end, now))`` — exact to the microsecond where the ledger
wrote the point as it changed (the VMs went ACTIVE, were retired, failed over, resized), exact to the
sample interval for what only a sample saw. An allocation that lived 10 days of a 30-day month counts a
third, because it is integrated, not sampled. Nothing before a group's first point is counted.

Pure: points, rates and names in; a ``Report`` out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from govcloud.model.history import GroupKey, Point
from govcloud.model.rates import Rates, ResourceHours
from govcloud.model.resources import Resources
from govcloud.planner.periods import Period, seconds
from govcloud.planner.reports import Chart, Column, Report, Section, Series

TOP_DEPARTMENTS = 8
"""Departments drawn one by one in the usage chart; the rest are summed as 其他."""


@dataclass(frozen=True)
class Names:
    """Display names: tenant id → department name, (tenant, system) → system name."""

    tenants: Mapping[str, str]
    systems: Mapping[tuple[str, str], str]


def resource_hours(amount: Resources, duration: float) -> ResourceHours:
    h = duration / 3600
    return ResourceHours(amount.instances * h, amount.vcpus * h, amount.ram_mb * h, amount.disk_gb * h)


@dataclass(frozen=True, slots=True)
class Segment:
    """``amount`` held by ``key`` over ``[lo, hi)`` (epoch seconds, clipped to the period)."""

    key: GroupKey
    lo: float
    hi: float
    amount: Resources


@dataclass
class Integrated:
    """Resource-hours per group, and the segments they were summed from (for the charts' day buckets)."""

    totals: dict[GroupKey, ResourceHours]
    segments: list[Segment]


def integrate(points: Iterable[Point], start: float, end: float) -> Integrated:
    """The step function of each group integrated over ``[start, end)`` (epoch seconds). ``points`` oldest
    first, as the store returns them."""
    last: dict[GroupKey, tuple[float, Resources]] = {}
    sums: dict[GroupKey, list[float]] = {}
    segments: list[Segment] = []
    nothing = Resources()

    def segment(key: GroupKey, lo: float, hi: float, amount: Resources) -> None:
        lo, hi = max(lo, start), min(hi, end)
        if hi > lo and amount != nothing:
            h = (hi - lo) / 3600
            acc = sums.get(key)
            if acc is None:
                acc = sums[key] = [0.0, 0.0, 0.0, 0.0]
            acc[0] += amount.instances * h
            acc[1] += amount.vcpus * h
            acc[2] += amount.ram_mb * h
            acc[3] += amount.disk_gb * h
            segments.append(Segment(key, lo, hi, amount))

    for point in points:
        at = seconds(point.at)
        if at >= end:
            continue
        before = last.get(point.key)
        if before is not None:
            segment(point.key, before[0], at, before[1])
        last[point.key] = (at, point.amount)
    for key, (at, amount) in last.items():
        segment(key, at, end, amount)
    return Integrated({k: ResourceHours(*v) for k, v in sums.items()}, segments)


def spread(segments: Iterable[tuple[str, float, float, float]], start: float, days: int) -> dict[str, list[float]]:
    """Per line, ``rate × hours`` of each day from ``start``: each ``(line, lo, hi, rate)`` adds its partial
    first and last days directly and its whole days through a difference array — constant work per segment
    however long it is (29k groups × a month: a few hundred ms instead of seconds)."""
    partial: dict[str, list[float]] = {}
    whole: dict[str, list[float]] = {}
    for line, lo, hi, rate in segments:
        values = partial.setdefault(line, [0.0] * days)
        diff = whole.setdefault(line, [0.0] * (days + 1))
        first, final = int((lo - start) // 86400), min(days - 1, int((hi - start - 1e-9) // 86400))
        if first == final:
            values[first] += rate * (hi - lo) / 3600
            continue
        values[first] += rate * (start + (first + 1) * 86400 - lo) / 3600
        values[final] += rate * (hi - (start + final * 86400)) / 3600
        diff[first + 1] += rate * 24
        diff[final] -= rate * 24
    found = {}
    for line, values in partial.items():
        running, diff = 0.0, whole[line]
        for day in range(days):
            running += diff[day]
            values[day] += running
        found[line] = values
    return found


USAGE_COLUMNS = (
    Column("department", "部门"), Column("tenant", "租户"), Column("system", "业务系统"), Column("cloud", "云"),
    Column("instance_hours", "实例·小时", "number"), Column("vcpu_hours", "vCPU·小时", "number"),
    Column("ram_gb_hours", "内存GiB·小时", "number"), Column("disk_gb_hours", "磁盘GiB·小时", "number"), Column("cost", "费用", "money"),
)
QUOTA_COLUMNS = (
    Column("department", "部门"), Column("tenant", "租户"), Column("cloud", "云"),
    Column("quota_vcpus", "配额vCPU(期间平均)", "number"), Column("used_vcpus", "已用vCPU(期间平均)", "number"),
    Column("used_share", "配额使用率", "percent"), Column("quota_value", "配额价值", "money"), Column("used_value", "已用价值", "money"),
    Column("unused_value", "闲置配额价值", "money"),
)
SUMMARY_COLUMNS = (
    Column("department", "部门"), Column("tenant", "租户"), Column("cost", "资源费用", "money"), Column("dr_cost", "灾备预留费用", "money"),
    Column("total", "合计", "money"), Column("unused_value", "闲置配额价值", "money"),
)


def _row(names: Names, key: tuple[str, str, str], hours: ResourceHours, cost: float) -> dict[str, object]:
    tenant, system, cloud = key
    return {"department": names.tenants.get(tenant, tenant), "tenant": tenant, "system": names.systems.get((tenant, system), system),
            "cloud": cloud, "instance_hours": round(hours.instances, 3), "vcpu_hours": round(hours.vcpus, 3),
            "ram_gb_hours": round(hours.ram_mb / 1024, 3), "disk_gb_hours": round(hours.disk_gb, 3), "cost": round(cost, 2)}


def _by_system(integrated: Integrated, rates: Rates, kind: str) -> dict[tuple[str, str, str], tuple[ResourceHours, float]]:
    found: dict[tuple[str, str, str], tuple[ResourceHours, float]] = {}
    for key, hours in integrated.totals.items():
        if key.kind != kind:
            continue
        short = (key.tenant, key.system, key.cloud)
        before_hours, before_cost = found.get(short, (ResourceHours(), 0.0))
        found[short] = (before_hours + hours, before_cost + rates.card(key.cloud, kind).cost(hours))
    return found


def _quota_rows(integrated: Integrated, rates: Rates, names: Names, span_hours: float) -> list[dict[str, object]]:
    used: dict[tuple[str, str], ResourceHours] = defaultdict(ResourceHours)
    quota: dict[tuple[str, str], ResourceHours] = {}
    for key, hours in integrated.totals.items():
        if key.kind == "vm":
            used[(key.tenant, key.cloud)] = used[(key.tenant, key.cloud)] + hours
        elif key.kind == "quota":
            quota[(key.tenant, key.cloud)] = hours
    rows = []
    for (tenant, cloud), held in sorted(quota.items()):
        card, spent = rates.card(cloud), used.get((tenant, cloud), ResourceHours())
        value, used_value = card.cost(held), card.cost(spent)
        rows.append({"department": names.tenants.get(tenant, tenant), "tenant": tenant, "cloud": cloud,
                     "quota_vcpus": round(held.vcpus / span_hours, 2) if span_hours else 0.0,
                     "used_vcpus": round(spent.vcpus / span_hours, 2) if span_hours else 0.0,
                     "used_share": round(spent.vcpus / held.vcpus, 4) if held.vcpus else 0.0,
                     "quota_value": round(value, 2), "used_value": round(used_value, 2), "unused_value": round(max(0.0, value - used_value), 2)})
    return rows


def _summary(usage: list[dict[str, object]], dr: list[dict[str, object]], quota: list[dict[str, object]]) -> list[dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for rows, column in ((usage, "cost"), (dr, "dr_cost"), (quota, "unused_value")):
        for row in rows:
            tenant = str(row["tenant"])
            entry = found.setdefault(tenant, {"department": row["department"], "tenant": tenant, "cost": 0.0, "dr_cost": 0.0,
                                              "total": 0.0, "unused_value": 0.0})
            entry[column] = float(entry[column]) + float(row["unused_value" if column == "unused_value" else "cost"])  # type: ignore[arg-type]
    for entry in found.values():
        entry.update({k: round(float(entry[k]), 2) for k in ("cost", "dr_cost", "unused_value")})  # type: ignore[arg-type]
        entry["total"] = round(float(entry["cost"]) + float(entry["dr_cost"]), 2)  # type: ignore[arg-type]
    return sorted(found.values(), key=lambda e: (-float(e["total"]), str(e["tenant"])))  # type: ignore[arg-type]


def _usage_chart(integrated: Integrated, rates: Rates, names: Names, period: Period, summary: list[dict[str, object]]) -> Chart:
    """Cost per day of the biggest departments (the rest as 其他)."""
    top = {str(e["tenant"]) for e in summary[:TOP_DEPARTMENTS]}
    days = period.days()
    costs: dict[tuple[str, str, Resources], float] = {}  # many segments share a size: price each size once

    def rate(seg: Segment) -> float:
        key = (seg.key.cloud, seg.key.kind, seg.amount)
        if key not in costs:
            costs[key] = rates.card(seg.key.cloud, seg.key.kind).cost(seg.amount)
        return costs[key]

    lines = spread(((s.key.tenant if s.key.tenant in top else "其他", s.lo, s.hi, rate(s)) for s in integrated.segments
                    if s.key.kind != "quota"), period.start.timestamp(), len(days))
    order = [str(e["tenant"]) for e in summary[:TOP_DEPARTMENTS]] + ["其他"]
    series = [Series(names.tenants.get(t, t), [round(v, 2) for v in lines[t]]) for t in order if t in lines and any(lines[t])]
    return Chart("usage_by_department", "各部门每日资源费用", "lines", [d.strftime("%m-%d") for d in days], series, rates.currency)


def usage_report(points: Iterable[Point], *, period: Period, now: float, rates: Rates, names: Names) -> Report:
    """The showback report of ``period`` (counted up to ``now`` when the period is still running)."""
    start, end = period.start.timestamp(), min(period.end.timestamp(), now)
    integrated = integrate(points, start, end)
    span = max(0.0, end - start) / 3600
    usage = [_row(names, k, h, c) for k, (h, c) in sorted(_by_system(integrated, rates, "vm").items())]
    dr = [_row(names, k, h, c) for k, (h, c) in sorted(_by_system(integrated, rates, "dr").items())]
    quota = _quota_rows(integrated, rates, names, span)
    summary = _summary(usage, dr, quota)
    notes = [f"按资源小时计价（{rates.currency}）；期间 {period.label}，计至 "
             f"{'期末' if end >= period.end.timestamp() else '当前时刻'}；分配按变更时刻精确折算（docs/reports.md）。"]
    return Report(kind="usage", title=f"资源使用与费用 {period.label}", period=period.label, currency=rates.currency, notes=notes,
                  sections=[Section("summary", "部门汇总", SUMMARY_COLUMNS, summary), Section("usage", "资源使用", USAGE_COLUMNS, usage),
                            Section("dr", "灾备预留", USAGE_COLUMNS, dr), Section("quota", "配额占用", QUOTA_COLUMNS, quota)],
                  charts=[_usage_chart(integrated, rates, names, period, summary)])
