"""Metric families as plain data: what one scrape found, before any exposition format.

``metrics.py`` fills these from the store; ``collector.py`` turns them into prometheus_client families
(for the registry and ``generate_latest``) or writes them straight to the text format (the server's
fast path). Keeping them as tuples rather than prometheus_client ``Sample`` objects is what makes a
scrape of 10k tenants affordable: a sample object per series costs more than the SQL that found it.
"""

from __future__ import annotations

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


@dataclass
class Gauge:
    """A gauge family: one row per series, label values in the order of ``spec.labels``."""

    spec: Spec
    rows: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    def add(self, values: tuple[str, ...], value: float) -> None:
        self.rows.append((values, value))


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
