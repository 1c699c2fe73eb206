"""Scrapes reuse the big aggregates while their tables are unchanged (issue 16), and never serve stale ones.

SQLite keeps a version per table (``vms``, ``ledger``, ``tickets``; migration 0009) that triggers change in
every writing transaction; ``read_facts`` reads them in its snapshot and re-runs a GROUP BY only when its
table's version moved. Each test counts the GROUP BYs actually run.
"""

from __future__ import annotations

import datetime
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from govcloud.exporter import metrics
from govcloud.exporter.metrics import StoreReads, read_facts
from govcloud.store import Store, aggregates
from tests.support.exporter import populate

TODAY = datetime.date(2026, 12, 2)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}")
    populate(store)
    return store


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each big aggregate ran."""
    counts: Counter[str] = Counter()
    for name in ("tenant_usage", "centre_allocation", "vm_counts", "ticket_counts", "oldest_change", "leases"):
        real = getattr(aggregates, name)

        def counting(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(metrics.aggregates, name, counting)
    return counts


def _write(store: Store, sql: str) -> None:
    with store.transaction() as conn:
        conn.execute(sa.text(sql))


def test_an_unchanged_store_runs_no_group_by_again(store: Store, ran: Counter[str]) -> None:
    reads = StoreReads()
    first = read_facts(store, today=TODAY, warning_days=14, reads=reads)
    again = read_facts(store, today=TODAY, warning_days=14, reads=reads)
    assert again == first
    assert set(ran.values()) == {1}


def test_a_vm_change_rereads_the_vm_counts_only(store: Store, ran: Counter[str]) -> None:
    reads = StoreReads()
    before = read_facts(store, today=TODAY, warning_days=14, reads=reads)
    _write(store, "UPDATE vms SET status = 'SHUTOFF' WHERE idx = 1")
    after = read_facts(store, today=TODAY, warning_days=14, reads=reads)
    assert after.vms != before.vms
    assert after.vms == read_facts(store, today=TODAY, warning_days=14).vms  # what a fresh read gives
    assert ran["vm_counts"] == 3 and ran["tenant_usage"] == 2  # (the fresh read ran everything once)


@pytest.mark.parametrize(("sql", "table"), [
    ("UPDATE ledger SET vcpus = vcpus + 1 WHERE id = (SELECT min(id) FROM ledger)", "tenant_usage"),
    ("DELETE FROM ledger WHERE id = (SELECT min(id) FROM ledger)", "tenant_usage"),
    ("DELETE FROM vms WHERE idx = 1", "vm_counts"),
    ("UPDATE tickets SET state = 'failed' WHERE id = (SELECT min(id) FROM tickets)", "ticket_counts"),
])
def test_every_kind_of_write_is_seen(sql: str, table: str, store: Store, ran: Counter[str]) -> None:
    reads = StoreReads()
    read_facts(store, today=TODAY, warning_days=14, reads=reads)
    _write(store, sql)
    read_facts(store, today=TODAY, warning_days=14, reads=reads)
    assert ran[table] == 2


def test_another_day_rereads_the_leases(store: Store, ran: Counter[str]) -> None:
    reads = StoreReads()
    read_facts(store, today=TODAY, warning_days=14, reads=reads)
    read_facts(store, today=TODAY + datetime.timedelta(days=1), warning_days=14, reads=reads)
    assert ran["leases"] == 2 and ran["vm_counts"] == 1


def test_without_its_triggers_a_table_is_always_read(store: Store, ran: Counter[str]) -> None:
    """A later migration that rebuilds ``vms`` drops its triggers: versions are then not trusted at all."""
    _write(store, "DROP TRIGGER vms_version_update")
    reads = StoreReads()
    read_facts(store, today=TODAY, warning_days=14, reads=reads)
    _write(store, "UPDATE vms SET status = 'SHUTOFF' WHERE idx = 1")
    read_facts(store, today=TODAY, warning_days=14, reads=reads)
    assert ran["vm_counts"] == 2 and ran["tenant_usage"] == 2
