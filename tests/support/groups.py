"""The check shared by the SQLite and PostgreSQL tests of the exporter's groups (migrations 0013, 0014):
random writes between scrapes, and after each round the scrape that followed only the changed groups
(``StoreReads.follow``) and built only the changed blocks (``blocks.Blocked``) equals GROUP BYs over the
tables themselves and a build from scratch."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from govcloud.exporter import metrics
from govcloud.exporter.families import Family, Gauge
from govcloud.exporter.metrics import ScrapeCache, StoreReads, read_facts
from govcloud.settings import ExporterSettings
from govcloud.store import Store, aggregates
from tests.support.exporter import NOW, random_write, sample_state

TODAY = NOW.date()
GROUP_BY = (aggregates.vm_counts, aggregates.tenant_usage, aggregates.centre_allocation)
"""The readers themselves (the tests count the scrape's calls through the module)."""
PLACE_WRITES = [
    ("UPDATE vms SET status = 'ERROR', address = '10.9.9.9', updated_at = 'now', fault = 'x'", False),
    ("UPDATE vms SET server_id = 'srv-1' WHERE ticket = 't-a'", False),
    ("UPDATE vms SET centre = 'sg-dr' WHERE ticket = 't-a' AND idx = 1", True),
    ("UPDATE vms SET vcpus = vcpus + 1, status = 'BUILD' WHERE ticket = 't-b'", True),
    ("UPDATE vms SET idx = idx + 10 WHERE ticket = 't-a'", True),
    ("DELETE FROM vms WHERE ticket = 't-b'", True),
    ("INSERT INTO vms (ticket, idx, name, tenant, system, cloud, region, centre, zone, vcpus, ram_mb, disk_gb, status, updated_at)"
     " VALUES ('t-n', 1, 'n-1', 'gd-a', 's', 'gd-prov', 'gd-gz', 'gz-main', 'gz-main', 1, 1, 1, 'ACTIVE', 'x')", True),
]
"""Writes to ``vms`` over the populated store, and whether each moves what the DR-VM and away-from-home reads
read (``vm_places``): the same cases on SQLite (unit) and PostgreSQL (integration)."""


def full(store: Store) -> tuple[list[Any], list[Any], list[Any]]:
    """VM counts, tenant usage and centre allocation by GROUP BY over ``vms`` and ``ledger`` themselves."""
    vm_counts, tenant_usage, centre_allocation = GROUP_BY
    with aggregates.snapshot(store) as conn:
        return (list(vm_counts(conn)), list(tenant_usage(conn)), centre_allocation(conn))


def counting(monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...]) -> Counter[str]:
    """How often the scrape calls each of the aggregate readers ``names`` from now on."""
    counts: Counter[str] = Counter()
    for name in names:
        real = getattr(aggregates, name)

        def count(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(metrics.aggregates, name, count)
    return counts


def series(families: list[Family], name: str) -> list[Any]:
    found = [f for f in families if f.spec.name == name]
    assert len(found) == 1 and isinstance(found[0], Gauge)
    return list(found[0].every_row())


def follow_random_writes(store: Store, seed: int, *, rounds: int = 25) -> None:
    """``rounds`` transactions of 0–5 random writes, each followed by a scrape compared with the GROUP BYs
    and with families built from scratch."""
    rng = random.Random(seed)
    reads, cache, state = StoreReads(), ScrapeCache(block=2), sample_state()
    for round_ in range(rounds):
        with store.transaction() as conn:
            for n in range(rng.choice([0, 1, 1, 2, 5])):
                random_write(conn, rng, round_ * 10 + n)
        found = read_facts(store, today=TODAY, warning_days=14, reads=reads)
        vms, usage, allocation = full(store)
        assert (list(found.vms), list(found.usage), found.allocation) == (vms, usage, allocation), round_
        built = cache.build(found, state, now=NOW, settings=ExporterSettings(), warning_days=14)
        scratch = metrics.vm_families(vms) + metrics.usage_families(usage)
        for name in ("govcloud_vms", "govcloud_quota_used", "govcloud_quota_reserved"):
            assert series(built, name) == series(scratch, name), (round_, name)
