"""Periods and pro-rating on a synthetic history (issue 15's first test): an allocation that lived 10 of
November's 30 days counts a third; one from before the month counts whole; one after it not at all; a
running month is counted up to now; the day buckets add up to the totals; costs follow the rate card."""

from __future__ import annotations

import datetime

import pytest

from govcloud.errors import ConfigError
from govcloud.model.history import GroupKey, Point
from govcloud.model.rates import DrRates, RateCard, Rates, ResourceHours
from govcloud.model.resources import Resources
from govcloud.planner.chargeback import Names, integrate, spread, usage_report
from govcloud.planner.periods import parse_period

NOV = parse_period("2026-11")
A = GroupKey("gd-mzt", "mzoa", "gd-prov", "gz-main", "vm")
B = GroupKey("gd-gat", "oa", "gd-prov", "gz-backup", "vm")
C = GroupKey("gd-gat", "oa", "gd-prov", "gz-main", "vm")
DR = GroupKey("gd-gat", "oa", "gd-prov", "sg-dr", "dr")
QUOTA = GroupKey("gd-mzt", "", "gd-prov", "", "quota")
SIZE = Resources(1, 2, 4096, 40)


def at(day: int, month: int = 11, hour: int = 0) -> str:
    return datetime.datetime(2026, month, day, hour, tzinfo=datetime.UTC).isoformat(timespec="microseconds")


HISTORY = [
    Point(at(1, 10), QUOTA, Resources(10, 20, 40960, 400)),
    Point(at(15, 10), B, SIZE), Point(at(15, 10), DR, SIZE),
    Point(at(11), A, SIZE), Point(at(21), A, Resources()),
    Point(at(2, 12), C, SIZE),
]
RATES = Rates(version=1, default=RateCard(instance_hour=0.1, vcpu_hour=1.0), dr=DrRates(default=RateCard(vcpu_hour=0.25)))
NAMES = Names({"gd-mzt": "民政厅", "gd-gat": "公安厅"}, {("gd-mzt", "mzoa"): "民政办公"})


def test_a_third_of_the_month_counts_a_third() -> None:
    got = integrate(HISTORY, NOV.start.timestamp(), NOV.end.timestamp())
    assert got.totals[A] == ResourceHours(240, 480, 4096 * 240, 40 * 240)
    assert got.totals[B] == ResourceHours(720, 1440, 4096 * 720, 40 * 720)
    assert C not in got.totals
    daily = spread(((s.key.tenant + s.key.kind, s.lo, s.hi, float(s.amount.vcpus)) for s in got.segments), NOV.start.timestamp(), 30)
    assert daily["gd-mztvm"][9:12] == [0, 48, 48] and daily["gd-mztvm"][20] == 0 and sum(daily["gd-mztvm"]) == 480
    assert daily["gd-gatvm"] == [48.0] * 30


def test_spreading_a_segment_over_partial_and_whole_days() -> None:
    start = NOV.start.timestamp()
    got = spread([("x", start + 86400 * 1.5, start + 86400 * 4.25, 2.0), ("x", start + 3600, start + 7200, 1.0)], start, 6)
    assert got["x"] == pytest.approx([1.0, 24.0, 48.0, 48.0, 12.0, 0.0])


def test_a_running_month_counts_up_to_now() -> None:
    half = datetime.datetime(2026, 11, 16, tzinfo=datetime.UTC).timestamp()
    report = usage_report(HISTORY, period=NOV, now=half, rates=RATES, names=NAMES)
    (row,) = [r for r in report.section("usage").rows if r["tenant"] == "gd-gat"]
    assert row["vcpu_hours"] == 720 and row["cost"] == pytest.approx(720 * 1.0 + 360 * 0.1)


def test_the_report_prices_usage_dr_and_unused_quota() -> None:
    report = usage_report(HISTORY, period=NOV, now=2e9, rates=RATES, names=NAMES)
    usage = {r["tenant"]: r for r in report.section("usage").rows}
    assert usage["gd-mzt"]["department"] == "民政厅" and usage["gd-mzt"]["system"] == "民政办公"
    assert usage["gd-mzt"]["cost"] == pytest.approx(480 + 24) and usage["gd-gat"]["cost"] == pytest.approx(1440 + 72)
    (dr,) = report.section("dr").rows
    assert dr["cost"] == pytest.approx(1440 * 0.25)
    (quota,) = report.section("quota").rows
    assert quota["quota_vcpus"] == 20 and quota["used_vcpus"] == pytest.approx(480 / 720, abs=0.01)
    assert quota["unused_value"] == pytest.approx((20 * 720 + 10 * 720 * 0.1) - (480 + 24))
    summary = {r["tenant"]: r for r in report.section("summary").rows}
    assert summary["gd-gat"]["total"] == pytest.approx(1512 + 360) and summary["gd-gat"]["dr_cost"] == pytest.approx(360)
    (chart,) = report.charts
    assert len(chart.x) == 30 and {s.name for s in chart.series} == {"民政厅", "公安厅"}


@pytest.mark.parametrize("text", ["2026-13", "26-11", "2026-11..2026-09", "november", "2026-1", "2026-01..2029-01"])
def test_bad_periods_name_the_flag(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_period(text)
    (problem,) = caught.value.problems
    assert problem.key == "--period" and problem.found == repr(text)


def test_a_range_of_months() -> None:
    period = parse_period("2026-11..2027-01")
    assert [m.label for m in period.months()] == ["2026-11", "2026-12", "2027-01"] and period.hours == 92 * 24
