"""Output formatting: tables (rich, wide-character aware), JSON and YAML. The only importer of rich.

Every listing command builds plain rows (lists of dicts) and calls ``emit``; the format is the
user's choice through ``--output``. Tables align Chinese text because rich measures cell width
(East Asian wide characters count two columns), which ``str.ljust`` does not.

A table fits the terminal, as ``openstack server list`` does: a listing names the columns it shows only
with ``--wide``; the widest columns give up width first and their cells end in an ellipsis, never wrap
mid-word. The width is the terminal's, or ``$COLUMNS`` when set; a pipe without ``$COLUMNS`` gets the
whole table. An empty listing says so in one line (``no VMs``) instead of printing an empty table.
"""

from __future__ import annotations

import datetime
import json
import os
import re
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


def wide_option(function: F) -> F:
    """``--wide``: every column of a table, however wide (JSON and YAML always have every field)."""
    return click.option("--wide", is_flag=True, help="Show every column, wider than the terminal if need be.")(function)


def fit_width(stream: Any = None) -> int | None:
    """The width tables must fit: ``$COLUMNS`` when set, else the terminal's; None for a pipe (no limit)."""
    value = os.environ.get("COLUMNS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    stream = stream or sys.stdout
    if stream.isatty():
        from rich.console import Console

        return Console(file=stream).width
    return None


def console(stderr: bool = False) -> Console:
    """A console that does not wrap or colour when the output is not a terminal (pipes, tests)."""
    from rich.console import Console  # rich (a tenth of a second) only when something is printed with it

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(file=stream, width=fit_width(stream) or 250, no_color=True, highlight=False, soft_wrap=True)


def emit(data: Any, fmt: str, *, columns: Sequence[str] = (), title: str | None = None, narrow: Sequence[str] = (),
         wide: bool = False, empty: str | None = None) -> None:
    """Print ``data`` (a list of row dicts, or one dict) in the requested format.

    Tables only: ``narrow`` names the columns shown without ``wide`` (default: all); ``empty`` is the line
    printed for no rows (default: ``<title>: none``)."""
    if fmt == "json":
        click.echo(json.dumps(_plain(data), ensure_ascii=False, indent=2))
        return
    if fmt == "yaml":
        from govcloud.model.loading import dump

        click.echo(dump(_plain(data)), nl=False)
        return
    rows = data if isinstance(data, list) else [data]
    if not rows:
        click.echo(empty or (f"{title}: none" if title else "none"))
        return
    cols = list(columns) or list(rows[0])
    if narrow and not wide:
        cols = [col for col in cols if col in narrow]
    cells = [[_cell(row.get(col)) for col in cols] for row in rows]
    limit = None if wide else fit_width()
    cols, widths = layout(cols, cells, limit)
    terminal = sys.stdout.isatty()
    if not terminal or len(rows) > FAST_ROWS:
        text = plain_table(title, cols, widths, cells, terminal=terminal, styled=terminal and os.environ.get("TERM") != "dumb",
                           limit=limit)
        if text is not None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
    rich_table(title, cols, widths, cells, out=console(), limit=limit)


def layout(cols: list[str], cells: Sequence[Sequence[str]], limit: int | None) -> tuple[list[str], list[int]]:
    """The columns shown and their widths: each as wide as its widest cell, then ``fitted`` to ``limit``."""
    lengths = [sorted(cell_len(line[i]) for line in cells) for i in range(len(cols))]
    widths = [max(cell_len(col), column[-1]) for col, column in zip(cols, lengths, strict=True)]
    if limit is not None:
        typical = [max(cell_len(col), column[(len(column) - 1) * 9 // 10]) for col, column in zip(cols, lengths, strict=True)]
        cols, widths = fitted(cols, widths, limit, typical=typical)
    return cols, widths


def rich_table(title: str | None, cols: Sequence[str], widths: Sequence[int], cells: Sequence[Sequence[str]], *, out: Console,
               limit: int | None) -> None:
    """The table printed by rich on ``out`` (``limit`` None: as wide as it needs)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_lines=False, header_style="bold")
    for col, size in zip(cols, widths, strict=True):
        table.add_column(col, width=size, no_wrap=True, overflow="ellipsis")
    for line in cells:
        table.add_row(*(Text(cell) for cell in line[:len(cols)]))  # the data as it is: no [markup] or :emoji: codes
    if limit is None:  # --wide, or a pipe: the whole table, however wide
        out.width = max(out.width, sum(widths) + 3 * len(widths) + 1)
    out.print(table)


FAST_ROWS = 200
"""Tables longer than this are written by ``plain_table`` at a terminal too (rich's layout of 5,000 rows
takes seconds); shorter ones at a terminal by rich. A pipe always gets ``plain_table``."""

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_BOLD, _ITALIC, _RESET = "\x1b[1m", "\x1b[3m", "\x1b[0m"


def plain_table(title: str | None, cols: Sequence[str], widths: Sequence[int], cells: Sequence[Sequence[str]], *, styled: bool,
                limit: int | None, terminal: bool | None = None, right: Sequence[bool] = ()) -> str | None:
    """The table rich prints for these columns and widths (the same characters: heavy head box, one space
    of padding, cells cut to their width with an ellipsis, wide characters counted twice by rich's own
    ``cell_len`` and cut by its ``set_cell_size``; ``terminal`` (default: ``styled``): the title centred
    over the table; ``styled``: a bold header and an italic title, as at a terminal that is not ``dumb``),
    computed in one pass over the cells instead of rich's layout. ``right``: the columns whose cells are
    right-justified (a report's numbers; the header too, as rich does).

    None when rich would lay it out otherwise: a cell, header or title with a control character (a line
    break makes a row taller), a title wider than the table, a table wider than ``limit``."""
    from rich.cells import cell_len, set_cell_size

    count = len(cols)
    total = sum(widths) + 3 * count + 1
    if (limit is not None and total > limit) or (title and (_CONTROL.search(title) or cell_len(title) > total)):
        return None
    if any(_CONTROL.search("".join(line[:count])) for line in cells) or _CONTROL.search("".join(cols)):
        return None

    def fit(text: str, width: int, at_right: bool = False) -> str:
        size = cell_len(text)
        if size > width:
            return set_cell_size(text, width - 1) + "…"
        return " " * (width - size) + text if at_right else text + " " * (width - size)

    out: list[str] = []
    if title:
        if styled or terminal:
            left = (total - cell_len(title)) // 2
            centred = f"{' ' * left}{title}{' ' * (total - cell_len(title) - left)}"
            out.append(f"{_ITALIC}{centred}{_RESET}" if styled else centred)
        else:
            out.append(title)
    out.append("┏" + "┳".join("━" * (w + 2) for w in widths) + "┓")
    rights = [bool(r) for r in right] + [False] * (count - len(right))
    heads = [fit(col, w, r) for col, w, r in zip(cols, widths, rights, strict=True)]
    if styled:
        pad = f"{_BOLD} {_RESET}"
        out.append("┃" + "┃".join(f"{pad}{_BOLD}{head}{_RESET}{pad}" for head in heads) + "┃")
    else:
        out.append("┃" + "┃".join(f" {head} " for head in heads) + "┃")
    out.append("┡" + "╇".join("━" * (w + 2) for w in widths) + "┩")
    triples = list(zip(range(count), widths, rights, strict=True))
    out.extend("│ " + " │ ".join([fit(line[i], w, r) for i, w, r in triples]) + " │" for line in cells)
    out.append("└" + "┴".join("─" * (w + 2) for w in widths) + "┘")
    return "\n".join(out) + "\n"


def cell_len(text: str) -> int:
    """Display columns of ``text`` (a Chinese character takes two); rich is imported only when a table is printed."""
    from rich.cells import cell_len as measure

    return measure(text)


MIN_COLUMN = 6
"""Columns narrower than this are not shrunk (``status``, ``zone``): a cut there says nothing."""


def fitted(cols: list[str], widths: list[int], limit: int, *, typical: list[int] | None = None) -> tuple[list[str], list[int]]:
    """Column widths for a table at most ``limit`` columns wide (each column costs 3 more for its border and
    padding, the table 1). First the columns wider than their ``typical`` cell (the 90th percentile: one
    long name should not cost every row its last characters) give up what only their few long cells use;
    then the widest column gives up one column at a time down to ``MIN_COLUMN`` (or its header); when that
    is not enough, the rightmost columns are left out."""
    floors = [min(size, max(MIN_COLUMN, cell_len(col))) for col, size in zip(cols, widths, strict=True)]
    count = len(cols)
    while count > 1 and sum(floors[:count]) > limit - 3 * count - 1:
        count -= 1
    cols, widths, floors = cols[:count], list(widths[:count]), floors[:count]
    room = limit - 3 * count - 1
    for bounds in ([max(f, t) for f, t in zip(floors, (typical or widths)[:count], strict=True)], floors):
        while sum(widths) > room and any(w > b for w, b in zip(widths, bounds, strict=True)):
            widest = max(range(count), key=lambda i: (widths[i] > bounds[i], widths[i] - bounds[i] if bounds is not floors else widths[i]))
            widths[widest] -= 1
    return cols, widths


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
