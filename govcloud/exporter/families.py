"""Metric families as plain data: what one scrape found, before any exposition format.

``metrics.py`` fills these from the store; ``collector.py`` turns them into prometheus_client families
(for the registry and ``generate_latest``) or writes them straight to the text format (the server's
fast path). Keeping them as tuples rather than prometheus_client ``Sample`` objects is what makes a
scrape of 10k tenants affordable: a sample object per series costs more than the SQL that found it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["gauge", "histogram"]


@dataclass(frozen=True)
class Spec:
    """A metric's name, type and help text: the catalogue entry the docs and ``describe()`` use."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()


Row = tuple[tuple[str, ...], float]
"""One series: label values in the order of ``spec.labels``, and the value."""


@dataclass(eq=False, slots=True)
class Chunk:
    """Rows built together from one input (a tenant × cloud's ledger sums, one VM count), never changed
    afterwards. A family made of chunks can take over the previous scrape's chunks whose input did not
    change (``key``), with their formatted text: after one VM changes status, one chunk is new."""

    key: Hashable
    rows: tuple[Row, ...]
    text: bytes | None = None
    """The rows in the text format (UTF-8), once written."""


@dataclass
class Gauge:
    """A gauge family: its series as ``rows``, then those of ``chunks``."""

    spec: Spec
    rows: list[Row] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    text: bytes | None = field(default=None, compare=False, repr=False)
    """The header and ``rows`` in the text format (UTF-8) once written (collector.py): a family is not
    changed after it is built, so one that is served again (the collector's reused families) is not
    formatted again."""

    def add(self, values: tuple[str, ...], value: float) -> None:
        self.rows.append((values, value))

    def every_row(self) -> Iterator[Row]:
        yield from self.rows
        for chunk in self.chunks:
            yield from chunk.rows


@dataclass(frozen=True)
class Series:
    """One histogram series: cumulative counts per upper bound (``+Inf`` is ``count``)."""

    values: tuple[str, ...]
    buckets: tuple[tuple[float, int], ...]
    count: int
    total: float


@dataclass
class Histogram:
    """A histogram family."""

    spec: Spec
    series: list[Series] = field(default_factory=list)


Family = Gauge | Histogram
