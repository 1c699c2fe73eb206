"""Families built block by block from a sorted aggregate, so that a change rebuilds one block, not all.

At 10k tenants and 100k VMs the per-tenant families (quota usage, VM counts) are tens of thousands of
series. Between two scrapes few of them change (a ledger or VM change, not a heartbeat), and building
and formatting them all again costs more than reading what changed. ``Blocked`` cuts the sorted rows of
one aggregate into blocks of about ``size`` rows, builds each block's series once (``Chunk``, which keeps
its formatted text) and, at the next scrape, cuts the new rows at the same keys: a block whose rows are
the same (a C comparison, fast when the store reader kept the unchanged row objects) keeps its chunks.
A block is never cut inside a group of ``width`` leading fields (a tenant × cloud's reserved and
committed rows build together).

The result is the same series in the same order as building everything at once (tested); families,
chunks and their text are never changed once built, so handing them out again is safe.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from govcloud.exporter.families import Chunk, Family, Gauge, Row, Spec

BuildBlock = Callable[[Sequence[Any]], Sequence[tuple[Row, ...]]]
"""The rows of each family (in ``Blocked.specs`` order) for one block of input rows."""


@dataclass(frozen=True, slots=True)
class Block:
    start: tuple[Any, ...]
    """The first ``width`` fields of its first row when it was cut (() for the first block)."""
    rows: Sequence[Any]
    chunks: tuple[Chunk, ...]
    """One per family, in ``Blocked.specs`` order."""


class Blocked:
    """Families of ``specs`` built by ``build`` from sorted rows, block by block, reusing the blocks whose
    rows did not change since the previous ``get``."""

    def __init__(self, specs: Sequence[Spec], build: BuildBlock, *, width: int, size: int = 256) -> None:
        self.specs = tuple(specs)
        self._build = build
        self._width = width
        self._size = size
        self._input: Sequence[Any] | None = None
        self._blocks: list[Block] = []
        self._families: list[Family] = []

    def get(self, rows: Sequence[Any]) -> list[Family]:
        if self._input is not None and (rows is self._input or rows == self._input):
            return self._families
        blocks = self._recut(rows) if self._blocks else None
        if blocks is None:
            blocks = [self._block(start, part) for start, part in self._cut(rows)]
        self._blocks, self._input = blocks, rows
        self._families = [Gauge(spec, chunks=[block.chunks[i] for block in blocks if block.chunks[i].rows])
                          for i, spec in enumerate(self.specs)]
        return self._families

    def _block(self, start: tuple[Any, ...], rows: Sequence[Any]) -> Block:
        built = self._build(rows)
        return Block(start, rows, tuple(Chunk((start, i), part) for i, part in enumerate(built)))

    def _cut(self, rows: Sequence[Any]) -> list[tuple[tuple[Any, ...], Sequence[Any]]]:
        """Fresh blocks of about ``size`` rows, each starting at a new group."""
        width, starts = self._width, [0]
        at = self._size
        while at < len(rows):
            while at < len(rows) and rows[at][:width] == rows[at - 1][:width]:
                at += 1
            if at < len(rows):
                starts.append(at)
            at += self._size
        ends = [*starts[1:], len(rows)]
        return [(tuple(rows[a][:width]) if a else (), rows[a:b]) for a, b in zip(starts, ends, strict=True)]

    def _recut(self, rows: Sequence[Any]) -> list[Block] | None:
        """The new rows cut at the previous blocks' start keys, reusing unchanged blocks; None when the
        blocks have grown or shrunk so much that a fresh cut is better."""
        previous = self._blocks
        at = [0] + [bisect_left(rows, block.start) for block in previous[1:]]
        ends = [*at[1:], len(rows)]
        if any(b - a > 4 * self._size for a, b in zip(at, ends, strict=True)) or len(previous) > 4 * (len(rows) // self._size + 1):
            return None
        blocks = []
        for block, a, b in zip(previous, at, ends, strict=True):
            part = rows[a:b]
            blocks.append(block if part == block.rows else self._block(block.start, part))
        return blocks
