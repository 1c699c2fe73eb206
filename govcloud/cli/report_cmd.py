"""``govcloud report sample|usage|service|idle``: the assessment reports (issue 15, docs/reports.md).

The reading, filtering and computing happen below (store/report_reads.py, engine/reports.py,
planner/report.py); these commands parse flags and print.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from govcloud.cli.app import AppContext, pass_app
from govcloud.cli.output import emit, output_option

COMMANDS: list[click.Command] = []
F = TypeVar("F", bound=Callable[..., Any])
REPORT_FORMATS = ("table", "csv", "json", "xlsx", "html")


def report_options(function: F) -> F:
    """``--period``, ``--tenant``, ``--output``, ``--file``, ``--section`` for every report."""
    for option in reversed((
        click.option("--period", metavar="YYYY-MM[..YYYY-MM]", help="Whole months, UTC (default: the last whole month)."),
        click.option("--tenant", metavar="TENANT", help="One tenant only (a requester: one of its own)."),
        click.option("-o", "--output", "fmt", type=click.Choice(REPORT_FORMATS), default="table", show_default=True,
                     help="table, csv, json, xlsx (one sheet per section) or html (one page with charts)."),
        click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write there instead of stdout (needed for xlsx)."),
        click.option("--section", metavar="KEY", help="Only this section (table, csv, json)."),
    )):
        function = option(function)
    return function


def _period(text: str | None) -> Any:
    from govcloud.planner.periods import parse_period, previous_month

    return parse_period(text) if text is not None else previous_month(datetime.datetime.now(datetime.UTC).date())


def _write(report: Any, fmt: str, path: Path | None, section: str | None) -> None:
    """Print or write ``report`` in ``fmt``."""
    if fmt == "xlsx":
        if path is None:
            raise click.UsageError("--output xlsx needs --file PATH (a spreadsheet is not sent to a terminal)")
        from govcloud.cli.report_xlsx import write_xlsx

        write_xlsx(report, path)
        click.echo(f"written: {path}", err=True)
        return
    if fmt == "html":
        from govcloud.cli.report_html import render_html

        page = render_html(report)
        if path is None:
            click.echo(page, nl=False)
        else:
            path.write_text(page, encoding="utf-8")
            click.echo(f"written: {path}", err=True)
        return
    from govcloud.cli.report_output import render

    text = render(report, fmt, section=section)
    if path is None:
        click.echo(text, nl=False)
    else:
        path.write_text(text, encoding="utf-8")
        click.echo(f"written: {path}", err=True)


@click.group()
def report() -> None:
    """Assessment reports: usage and cost, idle VMs, the operator's service (docs/reports.md)."""


@report.command("sample")
@output_option
@pass_app
def report_sample(app: AppContext, fmt: str) -> None:
    """Record the usage history now: every allocation and quota that differs from the history's newest
    point (the daemon does this every history_interval)."""
    from govcloud.engine import history
    from govcloud.engine.context import build

    run = history.sample(build(app.settings))
    emit(run.__dict__, fmt, columns=["at", "groups", "written", "actor"], title="usage history sample")


@report.command("usage")
@report_options
@pass_app
def report_usage(app: AppContext, period: str | None, tenant: str | None, fmt: str, path: Path | None, section: str | None) -> None:
    """Showback: resource-hours and cost per department, business system and cloud; quota held against
    used; DR reservations priced on their own card (rates.yaml)."""
    from govcloud.engine import reports
    from govcloud.engine.context import build

    _write(reports.usage(build(app.settings), _period(period), tenant=tenant), fmt, path, section)


@report.command("service")
@report_options
@pass_app
def report_service(app: AppContext, period: str | None, tenant: str | None, fmt: str, path: Path | None, section: str | None) -> None:
    """The operator's service per month: ticket lead times against the SLA, failed and quarantined tickets,
    centre availability, failover runs and their RTO."""
    from govcloud.engine import reports
    from govcloud.engine.context import build

    _write(reports.service(build(app.settings), _period(period), tenant=tenant), fmt, path, section)


@report.command("idle")
@report_options
@click.option("--prometheus", metavar="URL", help="Prometheus to ask (default: $GOVCLOUD_PROMETHEUS_URL, the monitoring role's).")
@click.option("--step", type=click.FloatRange(min=1), default=3600.0, show_default=True,
              help="Seconds per sample asked of Prometheus (each one the mean over that step).")
@click.option("--cpu", "cpu_percent", type=click.FloatRange(0, 100), help="Idle below this CPU use, percent (default: rates.yaml idle).")
@click.option("--memory", "memory_percent", type=click.FloatRange(0, 100), help="Idle below this memory use, percent (default: rates.yaml).")
@click.option("--days", type=click.IntRange(1, 366), help="Listed when idle on at least this many days (default: rates.yaml).")
@pass_app
def report_idle(app: AppContext, period: str | None, tenant: str | None, fmt: str, path: Path | None, section: str | None,
                prometheus: str | None, step: float, cpu_percent: float | None, memory_percent: float | None, days: int | None) -> None:
    """Idle VMs: CPU and memory use from each VM's node exporter through Prometheus; those below the
    thresholds on enough days, with their cost, ticket, requester and the department's contact."""
    from govcloud.engine import reports
    from govcloud.engine.context import build

    _write(reports.idle(build(app.settings), _period(period), tenant=tenant, prometheus=prometheus, step=step, cpu_percent=cpu_percent,
                        memory_percent=memory_percent, days=days), fmt, path, section)


@report.command("month")
@report_options
@click.option("--prometheus", metavar="URL", help="Prometheus for the idle part (default: $GOVCLOUD_PROMETHEUS_URL).")
@click.option("--no-idle", is_flag=True, help="Leave the idle VMs out (no Prometheus to ask).")
@pass_app
def report_month(app: AppContext, period: str | None, tenant: str | None, fmt: str, path: Path | None, section: str | None,
                 prometheus: str | None, no_idle: bool) -> None:
    """Usage, service and idle VMs in one report: the page (-o html) or workbook the office hands on."""
    from govcloud.engine import reports
    from govcloud.engine.context import build
    from govcloud.planner.reports import merge

    ctx = build(app.settings)
    chosen = _period(period)
    parts = [reports.usage(ctx, chosen, tenant=tenant), reports.service(ctx, chosen, tenant=tenant)]
    if not no_idle:
        parts.append(reports.idle(ctx, chosen, tenant=tenant, prometheus=prometheus))
    _write(merge(f"政务云月度评估 {chosen.label}", parts), fmt, path, section)


COMMANDS.append(report)
