"""The operator's service (issue 15, item 4): ticket lead times against the SLA of rates.yaml, failed and
quarantined tickets, centre availability from the health record, failover runs and DR drills with their
RTO — per month.

Lead times count tickets that became ``active`` in the month: submitted → approved (the office's
approvers), approved → active (the operator), submitted → active (what the department waited). A
centre's availability is the share of the month it was not recorded ``down`` (``degraded`` is shown but
counts as available: some of its hosts still serve). Pure: records in, a ``Report`` out.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence

from govcloud.model.assessment import FailoverRun, HealthChange, TicketTimes
from govcloud.model.rates import Sla
from govcloud.planner.periods import Period, seconds
from govcloud.planner.reports import Chart, Column, Report, Section, Series

LEAD_BUCKETS = ((1, "<1h"), (4, "1–4h"), (8, "4–8h"), (24, "8–24h"), (48, "1–2天"), (72, "2–3天"), (float("inf"), ">3天"))
TROUBLE = ("failed", "quarantined")

MONTH_COLUMNS = (
    Column("month", "月份"), Column("delivered", "交付工单", "int"), Column("median_hours", "提交→交付中位数(小时)", "hours"),
    Column("p90_hours", "提交→交付P90(小时)", "hours"), Column("sla_met", "时效达标率", "percent"),
    Column("approve_late", "审批超时", "int"), Column("provision_late", "交付超时", "int"), Column("failed", "失败", "int"),
    Column("quarantined", "隔离", "int"), Column("min_availability", "最低中心可用率", "percent"), Column("failovers", "故障切换次数", "int"),
    Column("drills", "演练次数", "int"), Column("drills_passed", "演练通过", "int"), Column("drill_rto_max", "演练最长RTO(秒)", "number"),
)
LEAD_COLUMNS = (
    Column("ticket", "工单"), Column("department", "部门"), Column("system", "业务系统"), Column("kind", "类型"),
    Column("submitted_at", "提交时间"), Column("approve_hours", "提交→审批(小时)", "hours"),
    Column("provision_hours", "审批→交付(小时)", "hours"), Column("total_hours", "提交→交付(小时)", "hours"), Column("late", "超时环节"),
)
TROUBLE_COLUMNS = (Column("ticket", "工单"), Column("department", "部门"), Column("system", "业务系统"), Column("state", "状态"),
                   Column("at", "时间"), Column("reason", "原因"))
AVAILABILITY_COLUMNS = (Column("cloud", "云"), Column("centre", "中心"), Column("down_hours", "中断(小时)", "hours"),
                        Column("degraded_hours", "降级(小时)", "hours"), Column("availability", "可用率", "percent"),
                        Column("met", "达标"))
FAILOVER_COLUMNS = (Column("cloud", "云"), Column("centre", "中心"), Column("kind", "类型"), Column("started_at", "开始"),
                    Column("ended_at", "结束"), Column("rto_seconds", "RTO(秒)", "number"), Column("moved", "迁移VM", "int"),
                    Column("failed", "失败VM", "int"), Column("result", "结果"))


def _hours(a: str | None, b: str | None) -> float | None:
    return None if a is None or b is None else round((seconds(b) - seconds(a)) / 3600, 2)


def _lead(ticket: TicketTimes, sla: Sla, names: Mapping[str, str]) -> dict[str, object]:
    approve, provision, total = (_hours(ticket.submitted_at, ticket.approved_at), _hours(ticket.approved_at, ticket.active_at),
                                 _hours(ticket.submitted_at, ticket.active_at))
    late = [label for value, limit, label in ((approve, sla.approve_hours, "审批"), (provision, sla.provision_hours, "交付"),
                                              (total, sla.total_hours, "总时长")) if value is not None and value > limit]
    return {"ticket": ticket.id, "department": names.get(ticket.tenant, ticket.tenant), "tenant": ticket.tenant, "system": ticket.system,
            "kind": ticket.kind, "submitted_at": ticket.submitted_at[:19], "approve_hours": approve, "provision_hours": provision,
            "total_hours": total, "late": "、".join(late)}


def _within(at: str | None, period: Period) -> bool:
    return at is not None and period.start.timestamp() <= seconds(at) < period.end.timestamp()


def _state_at(start: float, changes: Sequence[HealthChange]) -> str:
    """A centre's state at ``start``: the last change before it; else the state the first later change
    left; else healthy."""
    before = [c for c in changes if seconds(c.at) < start]
    if before:
        return before[-1].after
    return (changes[0].before or "healthy") if changes else "healthy"


def availability(centre: tuple[str, str], changes: Sequence[HealthChange], current: tuple[str, str] | None,
                 start: float, end: float) -> tuple[float, float]:
    """Seconds recorded ``down`` and ``degraded`` in ``[start, end)``. A centre with no audited change
    (a store older than the audit of health changes) has its current record taken as one: in that state
    since ``since``, healthy before."""
    if not changes and current is not None and current[0] != "healthy":
        changes = [HealthChange(current[1], centre[0], centre[1], "healthy", current[0])]
    state, at = _state_at(start, changes), start
    spent = {"down": 0.0, "degraded": 0.0}
    for change in changes:
        moment = seconds(change.at)
        if moment < start:
            continue
        if moment >= end:
            break
        spent[state] = spent.get(state, 0.0) + moment - at
        state, at = change.after, moment
    spent[state] = spent.get(state, 0.0) + max(0.0, end - at)
    return spent["down"], spent["degraded"]


def _availability_rows(centres: Sequence[tuple[str, str]], changes: Sequence[HealthChange], current: Mapping[tuple[str, str], tuple[str, str]],
                       period: Period, now: float, sla: Sla) -> list[dict[str, object]]:
    start, end = period.start.timestamp(), min(period.end.timestamp(), now)
    by_centre: dict[tuple[str, str], list[HealthChange]] = {}
    for change in changes:
        by_centre.setdefault((change.cloud, change.centre), []).append(change)
    rows = []
    for key in centres:
        down, degraded = availability(key, by_centre.get(key, []), current.get(key), start, end)
        share = 1 - down / (end - start) if end > start else 1.0
        rows.append({"cloud": key[0], "centre": key[1], "down_hours": round(down / 3600, 2), "degraded_hours": round(degraded / 3600, 2),
                     "availability": round(share, 6), "met": "是" if share * 100 >= sla.availability_percent else "否"})
    return rows


KIND_NAMES = {"failover": "故障切换", "migration": "计划迁移", "failback": "回切", "drill": "演练"}
"""The journal's run kinds as the office's report names them."""


RESULT_NAMES = {"finished": "完成", "succeeded": "通过", "failed": "失败", "cancelled": "取消", "new": "待批准", "running": "进行中"}
"""How a run ended, as the report names it (a drill ``succeeded``: every copy up and its hook passed)."""


def _rto(run: FailoverRun) -> float | None:
    """The RTO the run measured (a drill), else end − start; None while it runs."""
    if run.rto_seconds is not None:
        return round(run.rto_seconds, 1)
    return None if run.ended_at is None else round(seconds(run.ended_at) - seconds(run.started_at), 1)


def _failover_row(run: FailoverRun) -> dict[str, object]:
    return {"cloud": run.cloud, "centre": run.centre, "kind": KIND_NAMES.get(run.kind, run.kind), "started_at": run.started_at[:19],
            "ended_at": (run.ended_at or "")[:19], "rto_seconds": _rto(run), "moved": run.moved, "failed": run.failed,
            "result": RESULT_NAMES.get(run.state, run.state)}


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)


def _month_row(month: Period, leads: list[dict[str, object]], trouble: list[TicketTimes], centres: list[dict[str, object]],
               runs: list[FailoverRun]) -> dict[str, object]:
    totals = [float(r["total_hours"]) for r in leads if r["total_hours"] is not None]  # type: ignore[arg-type]
    return {"month": month.label, "delivered": len(leads), "median_hours": round(statistics.median(totals), 2) if totals else None,
            "p90_hours": _percentile(totals, 0.9), "sla_met": round(sum(1 for r in leads if not r["late"]) / len(leads), 4) if leads else None,
            "approve_late": sum(1 for r in leads if "审批" in str(r["late"])), "provision_late": sum(1 for r in leads if "交付" in str(r["late"])),
            "failed": sum(1 for t in trouble if t.state == "failed"), "quarantined": sum(1 for t in trouble if t.state == "quarantined"),
            "min_availability": min((float(r["availability"]) for r in centres), default=None),  # type: ignore[arg-type]
            **_drill_counts(runs)}


def _drill_counts(runs: list[FailoverRun]) -> dict[str, object]:
    """A month's failovers (every run that is not a drill) and drills: how many, how many passed, the longest RTO."""
    drills = [r for r in runs if r.kind == "drill"]
    rtos = [rto for r in drills if (rto := _rto(r)) is not None]
    return {"failovers": len(runs) - len(drills), "drills": len(drills), "drills_passed": sum(1 for r in drills if r.state == "succeeded"),
            "drill_rto_max": max(rtos) if rtos else None}


def _lead_chart(leads: list[dict[str, object]]) -> Chart:
    counts = [0] * len(LEAD_BUCKETS)
    for row in leads:
        value = row["total_hours"]
        if value is not None:
            counts[next(i for i, (limit, _) in enumerate(LEAD_BUCKETS) if float(value) < limit)] += 1  # type: ignore[arg-type]
    return Chart("lead_times", "工单提交→交付时长分布", "histogram", [label for _, label in LEAD_BUCKETS],
                 [Series("工单数", [float(c) for c in counts])], "张")


def service_report(tickets: Iterable[TicketTimes], *, health: Sequence[HealthChange], current: Mapping[tuple[str, str], tuple[str, str]],
                   centres: Sequence[tuple[str, str]], runs: Sequence[FailoverRun], period: Period, now: float, sla: Sla,
                   names: Mapping[str, str]) -> Report:
    """The service report of ``period``, one summary row per month. ``current``: each centre's recorded
    (state, since), for a centre whose history holds no change."""
    tickets = list(tickets)
    months, leads, trouble, availability_rows = [], [], [], []
    for month in period.months():
        if month.start.timestamp() > now:
            break
        these = [_lead(t, sla, names) for t in tickets if _within(t.active_at, month)]
        bad = [t for t in tickets if t.state in TROUBLE and _within(t.updated_at, month)]
        centre_rows = _availability_rows(centres, health, current, month, now, sla)
        month_runs = [r for r in runs if _within(r.started_at, month)]
        months.append(_month_row(month, these, bad, centre_rows, month_runs))
        leads += these
        trouble += bad
        availability_rows += [{"month": month.label, **row} for row in centre_rows]
    trouble_rows = [{"ticket": t.id, "department": names.get(t.tenant, t.tenant), "tenant": t.tenant, "system": t.system, "state": t.state,
                     "at": t.updated_at[:19], "reason": t.reason or ""} for t in trouble]
    notes = [f"服务水平：审批 ≤ {sla.approve_hours:g} 小时，交付 ≤ {sla.provision_hours:g} 小时，总时长 ≤ {sla.total_hours:g} 小时，"
             f"中心可用率 ≥ {sla.availability_percent:g}%（rates.yaml）。"]
    return Report(kind="service", title=f"运维服务水平 {period.label}", period=period.label, notes=notes, sections=[
        Section("months", "月度服务概况", MONTH_COLUMNS, months), Section("lead_times", "工单时效", LEAD_COLUMNS, leads),
        Section("trouble", "失败与隔离工单", TROUBLE_COLUMNS, trouble_rows),
        Section("availability", "中心可用率", (Column("month", "月份"), *AVAILABILITY_COLUMNS), availability_rows),
        Section("failovers", "故障切换与演练", FAILOVER_COLUMNS, [_failover_row(r) for r in runs])], charts=[_lead_chart(leads)])
