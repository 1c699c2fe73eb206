"""Output formatting: tables (rich, wide-character aware), JSON and YAML. The only importer of rich.

Every listing command builds plain rows (lists of dicts) and calls ``emit``; the format is the
user's choice through ``--output``. Tables align Chinese text because rich measures cell width
(East Asian wide characters count two columns), which ``str.ljust`` does not.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from govcloud.errors import AuditChainBroken, ConfigError, GovcloudError

if TYPE_CHECKING:
    from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])
FORMATS = ("table", "json", "yaml")


def output_option(function: F) -> F:
    """``--output table|json|yaml`` (``-o``) for every listing."""
    return click.option("-o", "--output", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                        help="Output format.")(function)


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def console(stderr: bool = False) -> Console:
    """A console that does not wrap or colour when the output is not a terminal (pipes, tests)."""
    from rich.console import Console  # rich (a tenth of a second) only when something is printed with it

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(file=stream, width=250, no_color=True, highlight=False, soft_wrap=True)


def emit(data: Any, fmt: str, *, columns: Sequence[str] = (), title: str | None = None) -> None:
    """Print ``data`` (a list of row dicts, or one dict) in the requested format."""
    if fmt == "json":
        click.echo(json.dumps(_plain(data), ensure_ascii=False, indent=2))
        return
    if fmt == "yaml":
        from govcloud.model.loading import dump

        click.echo(dump(_plain(data)), nl=False)
        return
    from rich.table import Table

    rows = data if isinstance(data, list) else [data]
    cols = list(columns) or (list(rows[0]) if rows else [])
    table = Table(title=title, show_lines=False, header_style="bold")
    for col in cols:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(col)) for col in cols))
    console().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(_plain(value), ensure_ascii=False, sort_keys=True)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def print_error(exc: GovcloudError) -> None:
    """Print an error to stderr: every problem of a ConfigError on its own line, then a count."""
    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            click.echo(f"error: {problem.render()}", err=True)
        click.echo(f"{len(exc.problems)} problem(s) found; nothing was changed", err=True)
        return
    if isinstance(exc, AuditChainBroken):
        for line in exc.problems:
            click.echo(f"error: audit chain broken: {line}", err=True)
        return
    click.echo(f"error: {exc}", err=True)
