"""Progress display for long work (``apply``, ``retire``, ``tenants sync``): a rich progress bar on a
terminal, one line per event otherwise (logs, CI, tests). The engine only calls ``progress(event, data)``.

Progress goes to stderr, always: stdout carries the command's result alone, so that
``govcloud apply -o json | jq`` reads JSON and nothing else (as ``openstack`` and ``terraform -json`` do)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from govcloud.cli.output import console

DONE = {"ACTIVE", "DELETED"}


def _line(event: str, data: dict[str, Any]) -> str | None:
    if event == "vm":
        where = f"{data.get('region', '')}/{data.get('zone', '') or data.get('centre', '')}".strip("/")
        address = f" {data['address']}" if data.get("address") else ""
        return f"  {data['name']:<44} {data['status']:<8} {where}{address}"
    if event == "ticket":
        reason = f": {data['reason']}" if data.get("reason") else ""
        return f"ticket {data['ticket']}: {data['state']}{reason}"
    if event == "retry":
        return f"  retry {data['attempt']}: {data['doing']}: {data['error']}"
    if event in ("planned_change", "apply_complete", "apply_errored", "change_summary", "diagnostic"):
        return f"  terraform {data.get('workspace', '')}: {data.get('@message', '')}"
    if event == "ansible":  # configuration: each task once, and every host that fails or vanishes
        if data.get("event") == "playbook_on_task_start" and data.get("task"):
            return f"  task {data['task']}"
        if data.get("event") in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignored"):
            state = "unreachable" if data["event"] == "runner_on_unreachable" else "failed"
            return f"  {data.get('host', '?'):<44} {state}" + (f": {data['reason']}" if data.get("reason") else "")
        return None
    if event == "onboard" and data.get("changed"):
        return f"  onboarded {data['tenant']} in {data['region']}: {', '.join(data['changed'])}"
    return None


@contextmanager
def progress_sink() -> Iterator[Any]:
    """Yield a ``progress(event, data)`` callable for the engine."""
    out = console(stderr=True)
    if not out.is_terminal:
        def plain(event: str, data: dict[str, Any]) -> None:
            text = _line(event, data)
            if text is not None and not (event == "vm" and data["status"] not in DONE | {"ERROR", "DUPLICATE-DELETED"}):
                click.echo(text, err=True)
        yield plain
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # a terminal only

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=out) as bars:
        tasks: dict[str, Any] = {}

        def rich_sink(event: str, data: dict[str, Any]) -> None:
            if event == "ticket" and "total" in data:
                tasks[data["ticket"]] = bars.add_task(f"{data['ticket']} {data['state']}", total=data["total"])
            elif event == "vm" and data["status"] in DONE and data["ticket"] in tasks:
                bars.advance(tasks[data["ticket"]])
            text = _line(event, data)
            if text is not None and (event != "vm" or data["status"] in DONE | {"ERROR"}):
                bars.console.print(text, highlight=False)
        yield rich_sink
