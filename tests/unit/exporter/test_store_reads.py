"""Scrapes reuse the big aggregates while their tables are unchanged (issue 16), and never serve stale ones.

SQLite keeps a version per table (``vms``, ``ledger``, ``tickets``; migration 0009) that triggers change in
every write; ``read_facts`` reads them in its snapshot and re-runs a GROUP BY only when its table's version
moved — and for ``vms`` and ``ledger``, whose triggers also keep the groups (0013), reads only the groups
changed since, when the store's history went through what it read before. Each test counts the reads
actually run.
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
from tests.support.groups import PLACE_WRITES

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
    for name in ("tenant_usage", "centre_allocation", "vm_counts", "ticket_counts", "oldest_change", "leases", "vm_count_changes",
                 "usage_changes"):
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


def fresh(store: Store) -> metrics.Facts:
    return read_facts(store, today=TODAY, warning_days=14)


def test_a_vm_change_reads_the_changed_vm_groups_only(store: Store, ran: Counter[str]) -> None:
    reads = StoreReads()
    before = read_facts(store, today=TODAY, warning_days=14, reads=reads)
    _write(store, "UPDATE vms SET status = 'SHUTOFF' WHERE idx = 1")
    after = read_facts(store, today=TODAY, warning_days=14, reads=reads)
    assert after.vms != before.vms
    assert after == fresh(store)  # what a fresh read gives
    assert ran["vm_count_changes"] == 1 and ran["usage_changes"] == 0
    assert ran["vm_counts"] == 2 and ran["tenant_usage"] == 2  # the first read and the fresh one


@pytest.mark.parametrize(("sql", "read"), [
    ("UPDATE ledger SET vcpus = vcpus + 1 WHERE id = (SELECT min(id) FROM ledger)", "usage_changes"),
    ("UPDATE ledger SET state = 'committed' WHERE state = 'reserved'", "usage_changes"),
    ("DELETE FROM ledger WHERE id = (SELECT min(id) FROM ledger)", "usage_changes"),
    ("DELETE FROM vms WHERE idx = 1", "vm_count_changes"),
    ("UPDATE vms SET centre = 'sg-dr' WHERE idx = 2", "vm_count_changes"),
    ("UPDATE tickets SET state = 'failed' WHERE id = (SELECT min(id) FROM tickets)", "ticket_counts"),
])
def test_every_kind_of_write_is_seen(sql: str, read: str, store: Store, ran: Counter[str]) -> None:
    reads = StoreReads()
    read_facts(store, today=TODAY, warning_days=14, reads=reads)
    _write(store, sql)
    assert read_facts(store, today=TODAY, warning_days=14, reads=reads) == fresh(store)
    assert ran[read] == (3 if read == "ticket_counts" else 1)  # tickets: read again (and by the fresh read)


def test_another_history_is_read_in_full(store: Store, tmp_path: Path, ran: Counter[str]) -> None:
    """A store restored from a backup (here: a copy taken earlier) may count more writes than the one read
    before along another history: the changed groups after the count read before are not all it changed."""
    store.close()
    (tmp_path / "backup.db").write_bytes((tmp_path / "state.db").read_bytes())
    reads = StoreReads()
    _write(store, "UPDATE vms SET status = 'SHUTOFF' WHERE idx = 1")
    read_facts(store, today=TODAY, warning_days=14, reads=reads)
    restored = Store.open(f"sqlite:///{tmp_path / 'backup.db'}")
    _write(restored, "UPDATE vms SET status = 'ERROR' WHERE idx = 2")
    _write(restored, "UPDATE vms SET status = 'BUILD'")  # more writes than the first history made
    with aggregates.snapshot(store) as conn, aggregates.snapshot(restored) as other:
        assert aggregates.table_versions(conn)["vms"].seq < aggregates.table_versions(other)["vms"].seq  # type: ignore[index]
    assert read_facts(restored, today=TODAY, warning_days=14, reads=reads) == fresh(restored)
    assert ran["vm_count_changes"] == 0 and ran["vm_counts"] == 3


def test_a_reader_too_many_writes_behind_reads_in_full(store: Store, ran: Counter[str]) -> None:
    reads = StoreReads()
    read_facts(store, today=TODAY, warning_days=14, reads=reads)
    _write(store, "INSERT INTO vms (ticket, idx, name, tenant, system, cloud, region, centre, zone, vcpus, ram_mb, disk_gb, status,"
                  " updated_at) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1100)"
                  " SELECT 'bulk', i, 'bulk-' || i, 'gd-gat', 's', 'gd-prov', 'gd-gz', 'gz-main', 'gz-main', 1, 1, 1, 'ACTIVE', 'x' FROM n")
    assert read_facts(store, today=TODAY, warning_days=14, reads=reads) == fresh(store)
    assert ran["vm_count_changes"] == 0 and ran["vm_counts"] == 3


def test_a_trigger_that_no_longer_keeps_the_groups_makes_them_untrusted(store: Store, ran: Counter[str]) -> None:
    """A later migration that recreates a trigger as 0009 wrote it leaves the groups stale: they are not read."""
    _write(store, "DROP TRIGGER vms_version_update")
    _write(store, "CREATE TRIGGER vms_version_update AFTER UPDATE ON vms BEGIN UPDATE table_versions SET version = random()"
                  " WHERE name = 'vms'; END")
    reads = StoreReads()
    read_facts(store, today=TODAY, warning_days=14, reads=reads)
    _write(store, "UPDATE vms SET status = 'SHUTOFF' WHERE idx = 1")
    found = read_facts(store, today=TODAY, warning_days=14, reads=reads)
    with aggregates.snapshot(store) as conn:
        assert list(found.vms) == list(aggregates.vm_counts(conn))
    assert ran["vm_count_changes"] == 0 and ran["vm_counts"] == 3


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


@pytest.mark.parametrize(("sql", "moved"), PLACE_WRITES)
def test_vm_rows_read_for_their_places_are_read_again_only_when_those_moved(sql: str, moved: bool, store: Store,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The DR VMs and the VMs away from home read the VM rows' names, places and sizes, never their status:
    they are read again after a write that changed those (``vm_places``, migration 0014), not after the
    reconciler's (the same on PostgreSQL: tests/integration/test_store_groups_postgresql.py)."""
    counts: Counter[str] = Counter()
    for module, name in ((metrics.readiness, "dr_vm_rows"), (metrics.runs, "away_from_home")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **k: counts.update([_name]) or _real(*a, **k))
    reads = StoreReads()
    read_facts(store, today=TODAY, warning_days=14, reads=reads)
    _write(store, sql)
    found = read_facts(store, today=TODAY, warning_days=14, reads=reads)
    assert counts == ({"dr_vm_rows": 2, "away_from_home": 2} if moved else {"dr_vm_rows": 1, "away_from_home": 1})
    assert found == fresh(store)
