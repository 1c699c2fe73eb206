"""``govcloud report sample|usage|service|idle``: the assessment reports (issue 15, docs/reports.md).

The reading, filtering and computing happen below (store/report_reads.py, engine/reports.py,
planner/report.py); these commands parse flags and print.
"""

from __future__ import annotations

import click

from govcloud.cli.app import AppContext, pass_app
from govcloud.cli.output import emit, output_option

COMMANDS: list[click.Command] = []


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


COMMANDS.append(report)
