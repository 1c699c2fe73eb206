"""The service report's arithmetic on synthetic records (issue 15, item 4): lead times and SLA misses,
failed and quarantined tickets of the month, a centre down 3 of November's 720 hours, a state carried in
from before the month, failover runs with their RTO, one row per month of a range."""

from __future__ import annotations

import datetime

import pytest

from govcloud.model.assessment import FailoverRun, HealthChange, TicketTimes
from govcloud.model.rates import Sla
from govcloud.planner.periods import parse_period
from govcloud.planner.service import service_report


def at(day: int, hour: float = 0, month: int = 11) -> str:
    return (datetime.datetime(2026, month, day, tzinfo=datetime.UTC) + datetime.timedelta(hours=hour)).isoformat()


TICKETS = [
    TicketTimes("t-fast", "gd-mzt", "mzoa", "create", "active", at(2), at(2, 3), approved_at=at(2, 1), active_at=at(2, 3)),
    TicketTimes("t-slow", "gd-gat", "oa", "create", "active", at(3), at(6), approved_at=at(4, 6), active_at=at(6)),
    TicketTimes("t-oct", "gd-gat", "oa", "create", "active", at(30, month=10), at(31, month=10), approved_at=at(30, 1, 10),
                active_at=at(31, month=10)),
    TicketTimes("t-bad", "gd-gat", "oa", "create", "failed", at(7), at(8), approved_at=at(7, 1), reason="no host"),
    TicketTimes("t-q", "gd-gat", "oa", "create", "quarantined", at(9), at(9, 1), reason="crashed twice"),
]
HEALTH = [
    HealthChange(at(20, 0, 10), "gd-prov", "sg-dr", "healthy", "down"),  # down since October
    HealthChange(at(1, 2), "gd-prov", "sg-dr", "down", "healthy"),
    HealthChange(at(10), "gd-prov", "gz-main", "healthy", "degraded"),
    HealthChange(at(10, 1), "gd-prov", "gz-main", "degraded", "down"),
    HealthChange(at(10, 4), "gd-prov", "gz-main", "down", "healthy"),
]
RUNS = [FailoverRun("gd-prov", "gz-main", at(10, 1), at(10, 1.5), moved=12, failed=1)]
SLA = Sla(approve_hours=24, provision_hours=8, total_hours=48, availability_percent=99.9)
CENTRES = [("gd-prov", "gz-main"), ("gd-prov", "gz-backup"), ("gd-prov", "sg-dr")]


def test_a_month() -> None:
    report = service_report(TICKETS, health=HEALTH, current={}, centres=CENTRES, runs=RUNS, period=parse_period("2026-11"),
                            now=2e9, sla=SLA, names={"gd-mzt": "民政厅"})
    leads = {r["ticket"]: r for r in report.section("lead_times").rows}
    assert set(leads) == {"t-fast", "t-slow"}
    assert (leads["t-fast"]["approve_hours"], leads["t-fast"]["provision_hours"], leads["t-fast"]["total_hours"]) == (1, 2, 3)
    assert leads["t-fast"]["late"] == "" and leads["t-fast"]["department"] == "民政厅"
    assert leads["t-slow"]["late"] == "审批、交付、总时长" and leads["t-slow"]["total_hours"] == 72
    assert [(r["ticket"], r["state"]) for r in report.section("trouble").rows] == [("t-bad", "failed"), ("t-q", "quarantined")]
    centres = {r["centre"]: r for r in report.section("availability").rows}
    assert centres["gz-main"]["down_hours"] == 3 and centres["gz-main"]["degraded_hours"] == 1
    assert centres["gz-main"]["availability"] == pytest.approx(1 - 3 / 720, abs=1e-6) and centres["gz-main"]["met"] == "否"
    assert centres["sg-dr"]["down_hours"] == 2 and centres["gz-backup"]["availability"] == 1 and centres["gz-backup"]["met"] == "是"
    (run,) = report.section("failovers").rows
    assert run["rto_seconds"] == 1800 and run["moved"] == 12
    (month,) = report.section("months").rows
    assert (month["delivered"], month["sla_met"], month["approve_late"], month["provision_late"], month["failed"], month["quarantined"],
            month["failovers"]) == (2, 0.5, 1, 1, 1, 1, 1)
    assert month["min_availability"] == centres["gz-main"]["availability"]
    (chart,) = report.charts
    assert sum(chart.series[0].values) == 2 and chart.series[0].values[1] == 1  # 3 h in "1–4h"


def test_a_range_has_a_row_per_month_and_stops_at_now() -> None:
    now = datetime.datetime(2026, 11, 15, tzinfo=datetime.UTC).timestamp()
    report = service_report(TICKETS, health=HEALTH, current={("gd-prov", "gz-backup"): ("down", at(14))}, centres=CENTRES, runs=RUNS,
                            period=parse_period("2026-10..2026-12"), now=now, sla=SLA, names={})
    assert [r["month"] for r in report.section("months").rows] == ["2026-10", "2026-11"]
    october = [r for r in report.section("availability").rows if r["month"] == "2026-10"]
    assert {r["centre"]: r["down_hours"] for r in october}["sg-dr"] == 12 * 24
    november = {r["centre"]: r for r in report.section("availability").rows if r["month"] == "2026-11"}
    assert november["gz-backup"]["down_hours"] == 24  # recorded down since the 14th (no change audited): counted from then to now


def test_drills_are_counted_per_month_with_how_many_passed_and_their_measured_rto() -> None:
    """Issue 15: the operator's drills per month — count, passed, RTO (the drill's own, not its clean-up)."""
    runs = [*RUNS,
            FailoverRun("gd-prov", "sg-dr", at(12), at(12, 0.5), moved=2, kind="drill", state="succeeded", rto_seconds=95.5),
            FailoverRun("gd-prov", "gz-backup", at(20), at(20, 0.1), moved=1, failed=1, kind="drill", state="failed", rto_seconds=40.0),
            FailoverRun("gd-prov", "sg-dr", at(3, month=12), at(3, 1, 12), moved=2, kind="drill", state="succeeded", rto_seconds=61.0)]
    report = service_report(TICKETS, health=HEALTH, current={}, centres=CENTRES, runs=runs, period=parse_period("2026-11..2026-12"),
                            now=2e9, sla=SLA, names={})
    months = {r["month"]: r for r in report.section("months").rows}
    assert (months["2026-11"]["failovers"], months["2026-11"]["drills"], months["2026-11"]["drills_passed"],
            months["2026-11"]["drill_rto_max"]) == (1, 2, 1, 95.5)
    assert (months["2026-12"]["failovers"], months["2026-12"]["drills"], months["2026-12"]["drills_passed"],
            months["2026-12"]["drill_rto_max"]) == (0, 1, 1, 61.0)
    rows = report.section("failovers").rows
    drills = [r for r in rows if r["kind"] == "演练"]
    assert [(r["centre"], r["rto_seconds"], r["result"]) for r in drills] == [("sg-dr", 95.5, "通过"), ("gz-backup", 40.0, "失败"),
                                                                           ("sg-dr", 61.0, "通过")]
    assert next(r for r in rows if r["kind"] == "故障切换")["rto_seconds"] == 1800  # a failover's RTO is still end − start
