"""Large tables are written without rich's layout (issue 16: 5,000 rows took ~2 s), and the fast writer
gives the very characters rich prints: the same columns, widths, borders, ellipses and CJK alignment, at
a terminal (bold header, italic centred title) and in a pipe."""

from __future__ import annotations

import io
import random

import pytest
from rich.cells import cell_len
from rich.console import Console

from govcloud.cli import output
from govcloud.cli.output import emit, layout, plain_table, rich_table

NAMES = ("广东省公安厅", "广州市人民政府办公厅政务服务数据管理局", "佛山市顺德区", "ab", "", "汕头市 Shantou 数据中心", "x" * 40, "东莞")


def rows(count: int, seed: int = 1) -> list[dict[str, object]]:
    rng = random.Random(seed)
    return [{"tenant": f"gd-t{i:04d}", "name": rng.choice(NAMES), "cloud": rng.choice(["gd-prov", "city-foshan"]),
             "vcpus": f"{rng.randint(0, 400)}/{rng.choice([80, 400, 1600])}", "note": rng.choice(["", None, "告警 warn", 3.5])}
            for i in range(count)]


def cells_of(data: list[dict[str, object]]) -> tuple[list[str], list[list[str]]]:
    cols = list(data[0])
    return cols, [[output._cell(row.get(col)) for col in cols] for row in data]


def by_rich(title: str | None, cols: list[str], widths: list[int], cells: list[list[str]], *, terminal: bool, limit: int | None,
            dumb: bool = False) -> str:
    buffer = io.StringIO()
    if terminal:  # a dumb terminal: no styles, the title still centred
        out = Console(file=buffer, force_terminal=True, color_system=None if dumb else "standard", width=limit or 80)
    else:  # what output.console() gives a pipe
        out = Console(file=buffer, width=limit or 250, no_color=True, highlight=False, soft_wrap=True)
    rich_table(title, cols, widths, cells, out=out, limit=limit)
    return buffer.getvalue()


@pytest.mark.parametrize("where", ["pipe", "terminal", "dumb terminal"])
@pytest.mark.parametrize("limit", [None, 120, 61, 44, 30])
@pytest.mark.parametrize("title", [None, "quota: used+reserved/limit", "租户 tenants"])
def test_the_fast_table_is_what_rich_prints(where: str, limit: int | None, title: str | None) -> None:
    cols, cells = cells_of(rows(60, seed=limit or 0))
    cols, widths = layout(cols, cells, limit)
    fast = plain_table(title, cols, widths, cells, styled=where == "terminal", terminal=where != "pipe", limit=limit)
    assert fast is not None
    assert fast == by_rich(title, cols, widths, cells, terminal=where != "pipe", dumb=where == "dumb terminal", limit=limit)


def test_every_odd_cut_of_a_wide_character_matches() -> None:
    """A column cut through a two-column character: rich pads the half character with a space."""
    cells = [["广东省公安厅A" * 2, "1"]]
    for width in range(1, 16):
        fast = plain_table(None, ["名", "n"], [width, 1], cells, styled=False, limit=None)
        assert fast == by_rich(None, ["名", "n"], [width, 1], cells, terminal=False, limit=None), width


@pytest.mark.parametrize("cell", ["two\nlines", "tab\there", "\x1b[31mred"])
def test_control_characters_are_left_to_rich(cell: str) -> None:
    assert plain_table(None, ["a"], [12], [[cell]], styled=False, limit=None) is None


def test_a_title_wider_than_the_table_is_left_to_rich() -> None:
    assert plain_table("a very long title indeed", ["a"], [3], [["x"]], styled=False, limit=None) is None


def test_emit_writes_large_tables_fast_and_the_same(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Through ``emit``: a pipe takes the fast writer; what it prints is what the rich path prints."""
    data = rows(500)
    monkeypatch.setenv("COLUMNS", "50")
    called: list[int] = []
    real = output.plain_table

    def counting(*args: object, **kwargs: object) -> str | None:
        called.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(output, "plain_table", counting)
    emit(data, "table", title="quota", narrow=("tenant", "name", "vcpus"))
    fast = capsys.readouterr().out
    monkeypatch.setattr(output, "plain_table", lambda *args, **kwargs: None)  # rich for everything
    emit(data, "table", title="quota", narrow=("tenant", "name", "vcpus"))
    slow = capsys.readouterr().out
    assert called and fast == slow
    assert len(fast.splitlines()) == 500 + 5 and "…" in fast and "广东省公安厅" in fast
    assert max(cell_len(line) for line in fast.splitlines()) == 50


def test_rich_prints_cells_literally() -> None:
    """Cells are data: rich must not read ``[bold]`` or ``:thumbs_up:`` in them as markup (the fast
    writer does not either)."""
    cells = [["[bold]x[/bold]", ":thumbs_up:"]]
    cols, widths = layout(["a", "b"], cells, None)
    assert by_rich(None, cols, widths, cells, terminal=False, limit=None) == plain_table(None, cols, widths, cells, styled=False, limit=None)
    assert "[bold]x[/bold]" in by_rich(None, cols, widths, cells, terminal=True, limit=None)
